"""One feedback pattern for every action on every page.

A result drawn at the top of a long page is invisible to someone who clicked 2,000 px further down,
and a panel drawn before the action ran shows the state from before it. So every action:

1. runs one core service (`run` / `done` / `failed`) and stores its outcome for the page;
2. reruns the script, so every panel re-reads what the action changed (no stale 환불 panel, the new
   link is in the list);
3. on that rerun `show` raises an `st.toast` (fixed on screen, always inside the viewport) and, for
   an error, also keeps an `st.error` with a 닫기 button at the top of the page until the person
   dismisses it; the toast of an error stays until closed too;
4. the page asks `highlighted` which item changed and marks it (`ui.tables.show_rows(highlight=...)`),
   until the next action on that page.

Outcomes are kept per page (`page` is the page's widget-key prefix, e.g. "ord"), so a result from
주문 never appears on 문의.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import streamlit as st

from core.db import session_scope
from core.errors import ChannelDeskError

OK_ICON = ":material/check_circle:"
ERROR_ICON = ":material/error:"
INFO_ICON = ":material/info:"


def _flash_key(page: str) -> str:
    return f"{page}__feedback"


def _error_key(page: str) -> str:
    return f"{page}__feedback_error"


def _highlight_key(page: str) -> str:
    return f"{page}__highlight"


def done(page: str, message: str, *, highlight: object = None, info: bool = False, rerun: bool = True) -> None:
    """Record a success (or, with info=True, a neutral outcome such as "확인 중") and rerun the page."""
    st.session_state[_flash_key(page)] = ("info" if info else "ok", message)
    st.session_state[_highlight_key(page)] = highlight
    st.session_state.pop(_error_key(page), None)
    if rerun:
        st.rerun()


def failed(page: str, message: str, *, rerun: bool = True) -> None:
    """Record an error that stays on the page until dismissed, then rerun so panels re-read."""
    st.session_state[_flash_key(page)] = ("error", message)
    st.session_state[_error_key(page)] = message
    if rerun:
        st.rerun()


def run(
    page: str,
    action: Callable[[Any], Any],
    success: str | Callable[[Any], str],
    *,
    highlight: Callable[[Any], object] | None = None,
) -> NoReturn:
    """Call one core service in its own transaction, record the outcome, rerun the page.

    `success` may read the service's result (e.g. the refund it made); `highlight` names the item
    the page should mark afterwards (e.g. the new link's id).
    """
    from ui import engine

    try:
        with session_scope(engine()) as session:
            result = action(session)
            message = success(result) if callable(success) else success
            mark = highlight(result) if highlight else None
    except ChannelDeskError as exc:
        failed(page, str(exc))
    else:
        done(page, message, highlight=mark)
    raise AssertionError("unreachable: st.rerun ends the run")  # pragma: no cover


def highlighted(page: str) -> object:
    """The item the last action on this page changed (None when nothing to mark)."""
    return st.session_state.get(_highlight_key(page))


def show(page: str) -> None:
    """Draw this page's pending outcome: a toast always in view; an error stays until 닫기."""
    flash = st.session_state.pop(_flash_key(page), None)
    if flash:
        kind, message = flash
        if kind == "error":
            st.toast(message, icon=ERROR_ICON, duration="infinite")
        else:
            st.toast(message, icon=INFO_ICON if kind == "info" else OK_ICON, duration="long")
    error = st.session_state.get(_error_key(page))
    if error:
        cols = st.columns([8, 1], vertical_alignment="center")
        cols[0].error(error, icon=ERROR_ICON)
        if cols[1].button("닫기", key=f"{page}__feedback_dismiss"):
            st.session_state.pop(_error_key(page), None)
            st.rerun()
