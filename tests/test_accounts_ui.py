"""Accounts where people manage them: 설정 → 사용자 (owner), the sidebar (everyone), the operator CLI,
and the login page's demo label."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import cli
from core.accounts.auth import LOGIN_REFUSED, Client, login, resolve_session
from core.db import make_engine, upgrade
from core.models import AuditLog, LoginThrottle, StaffUser
from tests.browser import streamlit_server
from tests.ui_helpers import open_app, texts

PASSWORD = "password-123"  # tests/conftest.make_actors


def _user_id(engine: Engine, username: str) -> int:
    with Session(engine) as session:
        return session.exec(select(StaffUser.id).where(StaffUser.username == username)).one()


def test_owner_resets_a_password_and_deactivates_then_reactivates(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    staff_token, _ = login(sqlite_engine, "staff1", PASSWORD)
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    staff_id = _user_id(sqlite_engine, "staff1")

    at.selectbox(key="set_reset_user").select(staff_id)
    at.text_input(key="set_reset_password").input("fresh-password-9")
    next(b for b in at.button if b.label == "재설정").click().run()
    assert not at.exception and "모든 로그인이 끝났습니다" in texts(at)
    assert resolve_session(sqlite_engine, staff_token) is None
    staff_token, _ = login(sqlite_engine, "staff1", "fresh-password-9")

    at.selectbox(key="set_active_user").select(staff_id)
    at.radio(key="set_active_action").set_value("정지")
    next(b for b in at.button if b.label == "적용").click().run()
    assert "계정을 정지했습니다" in texts(at)
    assert resolve_session(sqlite_engine, staff_token) is None
    with pytest.raises(Exception, match=LOGIN_REFUSED):
        login(sqlite_engine, "staff1", "fresh-password-9")

    at.selectbox(key="set_active_user").select(staff_id)
    at.radio(key="set_active_action").set_value("다시 사용")
    next(b for b in at.button if b.label == "적용").click().run()
    assert login(sqlite_engine, "staff1", "fresh-password-9", Client(ip="192.0.2.1"))

    owner_id = _user_id(sqlite_engine, "owner1")
    at.selectbox(key="set_active_user").select(owner_id)
    at.radio(key="set_active_action").set_value("정지")
    next(b for b in at.button if b.label == "적용").click().run()
    assert "마지막 사장님 계정은 정지할 수 없습니다" in [e.value for e in at.error]
    with Session(sqlite_engine) as session:
        actions = session.exec(select(AuditLog.action).where(AuditLog.actor_id == sqlite_actors["owner"].id)).all()
    assert {"user.password_reset", "user.disable", "user.enable"} <= set(actions)


def test_a_staff_member_changes_their_own_password_in_the_sidebar(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["cs"])

    def change(current: str, new: str, again: str) -> None:
        at.text_input(key="app_pw_current").input(current)
        at.text_input(key="app_pw_new").input(new)
        at.text_input(key="app_pw_again").input(again)
        next(b for b in at.button if b.label == "바꾸기").click().run()

    change("not-mine-1", "brand-new-pass", "brand-new-pass")
    assert "지금 비밀번호가 올바르지 않습니다" in [e.value for e in at.error]
    change(PASSWORD, "brand-new-pass", "brand-new-pasz")
    assert "새 비밀번호 두 칸이 다릅니다" in [e.value for e in at.error]
    change(PASSWORD, "brand-new-pass", "brand-new-pass")
    assert not at.exception
    assert "새 비밀번호로 다시 로그인하세요" in texts(at)  # this session ended with the change
    assert "actor" not in at.session_state
    assert login(sqlite_engine, "cs1", "brand-new-pass")[1].id == sqlite_actors["cs"].id


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("OWNER_PASSWORD", raising=False)
    return url


def _run(argv: list[str], stdin: str = "") -> int:
    return cli.main(argv, stdin=io.StringIO(stdin))


def test_cli_passwd_disable_enable_unlock(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["user", "add", "--username", "boss", "--role", "owner", "--password-stdin"], "first-pass-1\n") == 0
    assert _run(["user", "add", "--username", "mina", "--role", "cs", "--password-stdin"], "first-pass-1\n") == 0
    engine = make_engine(cli_db)
    token, _ = login(engine, "mina", "first-pass-1")
    assert _run(["user", "passwd", "mina", "--password-stdin"], "second-pass-2\n") == 0
    assert resolve_session(engine, token) is None
    assert login(engine, "mina", "second-pass-2")
    assert _run(["user", "disable", "mina"]) == 0
    with pytest.raises(Exception, match=LOGIN_REFUSED):
        login(engine, "mina", "second-pass-2")
    assert _run(["user", "enable", "mina"]) == 0
    assert _run(["user", "disable", "boss"]) == 2  # the last owner
    assert "마지막 사장님" in capsys.readouterr().err
    for _ in range(8):
        with pytest.raises(Exception, match=LOGIN_REFUSED):
            login(engine, "boss", "wrong-password", Client(ip=f"192.0.2.{_}"))
    assert _run(["user", "unlock", "boss"]) == 0
    with Session(engine) as session:
        assert session.get(LoginThrottle, "user:boss") is None
    assert login(engine, "boss", "first-pass-1", Client(ip="192.0.2.99"))
    assert _run(["user", "passwd", "nobody", "--password-stdin"], "x-password-1\n") == 2
    engine.dispose()


def test_first_owner_only_on_an_empty_store_and_never_a_default_password(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no OWNER_PASSWORD: refused
    assert _run(["user", "first-owner"]) == 2
    assert "터미널" in capsys.readouterr().err
    monkeypatch.setenv("OWNER_PASSWORD", "short")
    assert _run(["user", "first-owner"]) == 2
    monkeypatch.setenv("OWNER_PASSWORD", "chosen-owner-pass")
    assert _run(["user", "first-owner"]) == 0
    engine = make_engine(cli_db)
    assert login(engine, "owner", "chosen-owner-pass")[1].role.value == "owner"
    with pytest.raises(Exception, match=LOGIN_REFUSED):
        login(engine, "owner", "channeldesk", Client(ip="192.0.2.7"))  # the old demo default
    monkeypatch.setenv("OWNER_PASSWORD", "another-pass-1")
    assert _run(["user", "first-owner"]) == 0  # users exist: nothing changes
    assert login(engine, "owner", "chosen-owner-pass")
    engine.dispose()


def test_the_login_page_names_demo_accounts_only_on_a_demo_store(tmp_path: Path) -> None:
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    demo = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(make_engine(plain))
    assert _run(["--database-url", demo, "seed", "--demo", "--customers", "20", "--orders", "30", "--quiet"]) == 0
    with streamlit_server(plain) as base:
        page = httpx.get(f"{base}/auth/login", timeout=30).text
        assert "데모" not in page and "channeldesk" not in page
    with streamlit_server(demo) as base:
        page = httpx.get(f"{base}/auth/login", timeout=30).text
        assert "데모 매장입니다" in page and "owner" in page


LIVE_SCRIPT = """
import streamlit as st
import ui
st.write("live" if ui.still_logged_in() else "ended")
"""


def test_live_fragments_stop_at_the_idle_limit_and_do_not_extend_it(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """The fragments on 문의 / 메시지 / 설정 call ui.live_guard, which asks this: refreshing by
    themselves they never count as activity, so an unattended screen stops showing customer data."""
    from datetime import timedelta

    from streamlit.testing.v1 import AppTest

    from core import clock
    from tests.ui_helpers import point_app_at, session_token_for

    point_app_at(sqlite_engine)
    start = clock.now()
    at = AppTest.from_string(LIVE_SCRIPT, default_timeout=30)
    at.session_state["session_token"] = session_token_for(sqlite_engine, sqlite_actors["cs"])
    at.session_state["actor"] = sqlite_actors["cs"]
    seen = []
    for minutes in (1, 30, 59, 61):
        with clock.frozen(start + timedelta(minutes=minutes)):
            at.run()
        seen.append(at.markdown[0].value)
    assert seen == ["live", "live", "live", "ended"]
    assert "actor" not in at.session_state


def test_every_live_fragment_checks_the_session() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("pages/*.py"), *root.glob("ui/*.py")]:
        source = path.read_text()
        for chunk in source.split("@st.fragment(run_every")[1:]:
            body = chunk.split("\n", 8)[:8]  # the decorator, the def, a docstring, then the guard
            assert any("ui.live_guard()" in line for line in body), f"{path.name}: a live fragment without ui.live_guard()"
