"""Foundation: settings, clock, money, auth and the audit log."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session, select

from core import clock
from core.accounts.actor import require_role
from core.accounts.auth import LoginFailed, authenticate, change_role, create_user
from core.config import ConfigError, load_settings
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Role, StaffUser
from core.money import format_krw, vat_of


@pytest.mark.parametrize(
    ("amount", "text"), [(39000, "39,000원"), (0, "0원"), (1234567, "1,234,567원"), (None, "-")]
)
def test_format_krw(amount: int | None, text: str) -> None:
    assert format_krw(amount) == text


@pytest.mark.parametrize(
    ("total", "tax_free", "vat"),
    [(39000, 0, 3545), (11000, 0, 1000), (10005, 0, 910), (10000, 10000, 0), (100, 50, 5), (16, 0, 1), (5, 0, 0)],
)
def test_vat_rounds_half_up_like_kakaopay(total: int, tax_free: int, vat: int) -> None:
    assert vat_of(total, tax_free) == vat


def test_vat_refuses_tax_free_above_total() -> None:
    with pytest.raises(ValueError):
        vat_of(1000, 2000)


def test_settings_defaults_work_with_nothing_set() -> None:
    settings = load_settings({})
    assert settings.payment_gateway == "sandbox"
    assert settings.message_provider == "outbox"
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize("url", ["not a url", "mysql://root@localhost/x", "://"])
def test_malformed_database_url_gets_one_clear_message(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({"DATABASE_URL": url})


def test_bare_postgresql_url_uses_psycopg3() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"})
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_unknown_gateway_is_refused() -> None:
    with pytest.raises(ConfigError, match="PAYMENT_GATEWAY"):
        load_settings({"PAYMENT_GATEWAY": "paypal"})


def test_clock_parses_naive_as_kst_and_freezes() -> None:
    instant = clock.parse_instant("2026-12-01T09:00")
    assert instant == datetime(2026, 12, 1, 0, 0, tzinfo=clock.UTC)
    with clock.frozen(instant):
        assert clock.now() == instant
        assert clock.today_kst().isoformat() == "2026-12-01"
    assert clock.now() != instant


def test_kst_day_boundary() -> None:
    late = clock.parse_instant("2026-01-31T23:30+09:00")
    assert clock.today_kst(late).isoformat() == "2026-01-31"
    start, end = clock.kst_day_range(late.date(), late.date())
    assert start <= late < end


def test_password_is_hashed_with_argon2_and_login_works(session: Session) -> None:
    create_user(session, None, username="kim", display_name="김", role="cs", password="correct-horse")
    session.commit()
    row = session.exec(select(StaffUser).where(StaffUser.username == "kim")).one()
    assert row.password_hash.startswith("$argon2id$")
    assert "correct-horse" not in row.password_hash
    session.commit()  # the login checks on its own connections
    actor = authenticate(session, "kim", "correct-horse")
    assert actor.role is Role.CS


def test_unknown_user_gets_the_same_message(session: Session) -> None:
    with pytest.raises(LoginFailed, match="아이디 또는 비밀번호"):
        authenticate(session, "nobody", "whatever1")


@pytest.mark.parametrize("role", ["admin", "", "superuser"])
def test_unknown_role_is_refused(session: Session, role: str) -> None:
    with pytest.raises(ValidationFailed, match="역할"):
        create_user(session, None, username="x", display_name="x", role=role, password="password-1")


def test_role_change_checks_role_and_is_audited(session: Session, actors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        change_role(session, actors["cs"], actors["staff"].id, "owner")
    change_role(session, actors["owner"], actors["staff"].id, "cs")
    session.commit()
    rows = session.exec(select(AuditLog).where(AuditLog.action == "user.role_change")).all()
    assert len(rows) == 1 and rows[0].detail == {"old": "staff", "new": "cs"}


def test_require_role() -> None:
    from core.accounts.actor import Actor

    require_role(Actor(1, "a", Role.OWNER), Role.OWNER)
    with pytest.raises(PermissionDenied):
        require_role(Actor(2, "b", Role.STAFF), Role.OWNER, Role.CS)
