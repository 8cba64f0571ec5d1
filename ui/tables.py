"""Render rows of dicts as a Korean table: amounts as 39,000원, instants in KST."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from core import clock
from core.money import format_krw

AMOUNT_COLUMNS = {"금액", "순매출", "매출", "환불", "결제 금액"}


def show_rows(rows: list[dict[str, Any]], *, empty: str = "표시할 내용이 없습니다.", key: str | None = None) -> None:
    if not rows:
        st.info(empty)
        return
    shown = [
        {
            name: format_krw(value) if name in AMOUNT_COLUMNS and isinstance(value, int)
            else clock.format_kst(value) if isinstance(value, datetime) else value
            for name, value in row.items()
        }
        for row in rows
    ]
    st.dataframe(shown, hide_index=True, width="stretch", key=key)
