"""Render rows of dicts as a Korean table: amounts as 39,000원, instants in KST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from core import clock
from core.money import format_krw

AMOUNT_COLUMNS = {"금액", "순매출", "매출", "환불", "결제 금액"}
# The changed row after an action (ui.feedback): a light amber that reads on both themes.
HIGHLIGHT_CSS = "background-color: rgba(255, 193, 7, 0.28); font-weight: 600"


def show_rows(
    rows: list[dict[str, Any]],
    *,
    empty: str = "표시할 내용이 없습니다.",
    key: str | None = None,
    highlight: Callable[[int], bool] | None = None,
) -> None:
    """`highlight(i)` marks row i (the item the last action changed) so the eye finds it."""
    if not rows:
        st.info(empty)
        return
    shown = [
        {
            name: format_krw(value) if name in AMOUNT_COLUMNS and isinstance(value, int)
            else clock.format_kst(value) if isinstance(value, datetime)
            else "-" if value is None  # st.dataframe draws a missing value as the word "None"
            else value
            for name, value in row.items()
        }
        for row in rows
    ]
    marked = [i for i in range(len(shown)) if highlight is not None and highlight(i)]
    if not marked:
        st.dataframe(shown, hide_index=True, width="stretch", key=key)
        return
    frame = pd.DataFrame(shown)
    styler = frame.style.apply(
        lambda row: [HIGHLIGHT_CSS if row.name in marked else ""] * len(row), axis=1
    )
    st.dataframe(styler, hide_index=True, width="stretch", key=key)
