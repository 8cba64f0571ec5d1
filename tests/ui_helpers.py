"""Run the real app.py in Streamlit's AppTest, logged in as a given actor, on a given store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest, app_test

from core.accounts.actor import Actor
from core.accounts.auth import open_session
from core.config import get_settings
from core.db import session_scope
from core.models import StaffUser

ROOT = Path(__file__).resolve().parent.parent


class _ProductionPagesManager(app_test.PagesManager):  # type: ignore[misc, name-defined]
    """AppTest resets Streamlit's legacy `pages/` folder flag before every run, so each run would
    execute a page script directly, without app.py (no login, idle logout or role navigation). The
    served app leaves that mode on its first run (ui/__init__.py); this makes AppTest do the same."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        app_test.PagesManager.uses_pages_directory = False


app_test.PagesManager = _ProductionPagesManager


def point_app_at(engine: Engine) -> None:
    os.environ["DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()


def session_token_for(engine: Engine, actor: Actor) -> str:
    """A real session row for `actor` (the store's user of that id; for an id-less test actor, a user
    of that name and role made on first use): app.py resolves it like a browser's cookie."""
    with session_scope(engine) as session:
        user = session.get(StaffUser, actor.id) if actor.id is not None else None
        if user is None:
            username = f"t-{actor.role.value}-{hashlib.sha256(actor.name.encode()).hexdigest()[:8]}"
            user = session.exec(select(StaffUser).where(StaffUser.username == username)).first()
            if user is None:
                user = StaffUser(username=username, display_name=actor.name, role=actor.role.value,
                                 password_hash=_TEST_HASH)
                session.add(user)
                session.flush()
        return open_session(session, user.id)  # type: ignore[arg-type]


_TEST_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$not-a-usable-hash"


def open_app(engine: Engine, actor: Actor | None = None, page: str | None = None, timeout: float = 30) -> AppTest:
    """app.py as `actor` (None: not logged in), then `page` (e.g. "pages/orders.py") if given."""
    point_app_at(engine)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if actor is not None:
        at.session_state["session_token"] = session_token_for(engine, actor)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def texts(at: AppTest) -> str:
    """All visible text of the run, for asserting on what a person would read."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error", "toast"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    return "\n".join(parts)
