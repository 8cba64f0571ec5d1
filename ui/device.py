"""Which layout a staff browser gets: the 문의 queue draws a table on a computer, cards on a phone.

Why on the server and not by CSS alone: the live queue is redrawn every second for every open desk.
Drawing both layouts and letting CSS hide one cost 32 ms of server CPU a tick (30 cards of four
elements each, drawn and hidden on every computer); one layout costs about 10 ms, and that CPU is
what the customers' /pay answers wait behind (bench/README.md, issue 21). The browser's User-Agent
tells the device: "Mobi" is in every phone browser's (MDN's advice for phone detection), a
computer's names its system. A narrowed window on a computer keeps the table (it scrolls sideways);
an agent we cannot place (a tablet, a test) gets both layouts and the width decides, as before.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

Layout = Literal["phone", "computer", "both"]
COMPUTER_SYSTEMS = ("Windows NT", "Macintosh", "X11", "CrOS")  # iPadOS Safari says Macintosh: a table fits


def layout_for(user_agent: str | None) -> Layout:
    agent = user_agent or ""
    if "Mobi" in agent:
        return "phone"
    if any(system in agent for system in COMPUTER_SYSTEMS):
        return "computer"
    return "both"


def current_layout() -> Layout:
    """The layout for this session's browser (the websocket's User-Agent header)."""
    try:
        agent = st.context.headers.get("User-Agent")
    except (AttributeError, RuntimeError):  # no browser behind the run (a bare script)
        agent = None
    return layout_for(agent)
