"""Run the real app.py in Streamlit's AppTest, logged in as a given actor, on a given store."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.auth import Actor
from core.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def point_app_at(engine: Engine) -> None:
    os.environ["DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()


def open_app(engine: Engine, actor: Actor | None = None, page: str | None = None, timeout: float = 30) -> AppTest:
    """app.py as `actor` (None: not logged in), then `page` (e.g. "screens/orders.py") if given."""
    point_app_at(engine)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if actor is not None:
        at.session_state["actor"] = actor
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def texts(at: AppTest) -> str:
    """All visible text of the run, for asserting on what a person would read."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    return "\n".join(parts)
