"""Every role logs in, sees exactly its menu, and every screen it may open renders without error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.accounts.screens import SCREENS, screens_for
from core.models import Role
from tests.ui_helpers import open_app, texts

EXPECTED_MENU = {
    Role.OWNER: ["문의", "리뷰", "주문", "정기결제", "매출", "캠페인", "메시지", "설정"],
    Role.CS: ["문의", "리뷰", "주문", "정기결제", "메시지"],
    Role.STAFF: ["주문", "캠페인", "메시지"],
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_only_its_screens(role: Role) -> None:
    assert [s.title for s in screens_for(role)] == EXPECTED_MENU[role]


def test_visitor_sees_only_the_login_page(sqlite_engine: Engine) -> None:
    """No session: the script shows no data and no password field (only /auth/login takes passwords,
    tests/test_sessions_live.py), just the way to it."""
    at = open_app(sqlite_engine)
    assert not at.exception
    assert "ChannelDesk 로그인" in texts(at)
    assert len(at.text_input) == 0
    assert [b.proto.url for b in at.get("link_button")] == ["/auth/login?next=%2F"]


@pytest.mark.parametrize(
    ("role", "screen"),
    [(role, screen) for role in Role for screen in SCREENS if role in screen.roles],
    ids=lambda value: value.value if isinstance(value, Role) else getattr(value, "url_path", str(value)),
)
def test_every_screen_opens_for_each_role_that_may(sqlite_engine: Engine, sqlite_actors, role: Role, screen) -> None:  # type: ignore[no-untyped-def]
    actor: Actor = sqlite_actors[role.value]
    at = open_app(sqlite_engine, actor, screen.path)
    assert not at.exception, at.exception
    assert screen.title in [t.value for t in at.title]


@pytest.mark.parametrize(("role", "screen"), [(Role.CS, "pages/sales.py"), (Role.STAFF, "pages/settings.py"),
                                              (Role.CS, "pages/campaigns.py"), (Role.STAFF, "pages/inquiries.py")])
def test_a_role_cannot_open_another_roles_screen(sqlite_engine: Engine, sqlite_actors, role: Role, screen: str) -> None:  # type: ignore[no-untyped-def]
    """The screen is not registered in that role's navigation at all, so there is nothing to open."""
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_app(sqlite_engine, sqlite_actors[role.value], screen)


def test_owner_adds_a_user_on_settings_and_it_is_audited(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import Session, select

    from core.models import AuditLog, StaffUser

    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")

    def submit(password: str) -> None:
        at.text_input(key="set_new_username").input("park")
        at.text_input(key="set_new_name").input("박상담")
        at.selectbox(key="set_new_role").select(Role.CS)
        at.text_input(key="set_new_password").input(password)
        next(b for b in at.button if b.label == "추가").click().run()

    submit("short")
    assert "8자 이상" in "".join(e.value for e in at.error)
    submit("long-enough-1")
    assert not at.exception
    with Session(sqlite_engine) as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == "park")).one()
        assert user.role == "cs"
        audit = session.exec(select(AuditLog).where(AuditLog.action == "user.create")).all()
        assert any(a.detail.get("username") == "park" and a.actor_id == sqlite_actors["owner"].id for a in audit)
