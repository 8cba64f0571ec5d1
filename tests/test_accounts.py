"""Staff sessions, login throttling and accounts (issue 16), on SQLite and PostgreSQL.

The rules: a session is a database row behind a 256-bit cookie token (only its hash stored); idle
60 min and absolute 12 h end it; logout, password change, deactivation and role change end every
session of that person at once; the role comes from the database on every request. Failed logins
back off per username and per address, never lock for good, answer one sentence, and are counted
atomically outside any write transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from core import clock
from core.accounts import auth
from core.accounts.actor import Actor
from core.accounts.auth import (
    LOGIN_REFUSED,
    Client,
    LoginFailed,
    backoff_seconds,
    change_own_password,
    change_role,
    create_user,
    login,
    record_failed_login,
    reset_password,
    resolve_session,
    set_active,
    token_digest,
    unlock,
)
from core.config import load_settings
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, LoginThrottle, Role, StaffSession, StaffUser

PASSWORD = "owner-password-1"
SETTINGS = load_settings({})


@pytest.fixture
def users(engine: Engine) -> dict[str, Actor]:
    made: dict[str, Actor] = {}
    with Session(engine) as session:
        for username, role in (("boss", "owner"), ("mina", "cs"), ("joon", "staff")):
            user = create_user(session, None, username=username, display_name=username, role=role, password=PASSWORD)
            made[username] = Actor(user.id, user.display_name, Role(role))
        session.commit()
    return made


def _wrong(engine: Engine, username: str, ip: str = "203.0.113.9") -> None:
    with pytest.raises(LoginFailed) as refused:
        login(engine, username, "wrong-password", Client(ip=ip))
    assert str(refused.value) == LOGIN_REFUSED


# --------------------------------------------------------------------------------------- sessions


def test_a_login_is_a_session_row_holding_only_the_token_hash(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, actor = login(engine, "boss", PASSWORD, Client(ip="198.51.100.7", user_agent="Mozilla/5.0 (iPhone)"))
    assert actor.role is Role.OWNER
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    with Session(engine) as session:
        row = session.exec(select(StaffSession)).one()
        assert row.token_hash == token_digest(token) != token
        assert token not in row.token_hash
        assert (row.user_id, row.ip, row.user_agent) == (users["boss"].id, "198.51.100.7", "Mozilla/5.0 (iPhone)")
        assert row.created_at == row.last_seen_at == clock.now()
    assert resolve_session(engine, token) == actor
    other, _ = login(engine, "boss", PASSWORD)
    assert other != token  # each login its own token


@pytest.mark.parametrize(
    "cookie",
    ["", "x", "a" * 43, "A" * 500, "토큰" * 20, "abc\x00def" * 8, None, 12345],
    ids=["empty", "short", "forged", "huge", "hangul", "nul", "none", "int"],
)
def test_forged_and_malformed_cookies_are_nobody(engine: Engine, users, cookie: object) -> None:  # type: ignore[no-untyped-def]
    login(engine, "boss", PASSWORD)
    assert resolve_session(engine, cookie) is None


def test_a_truncated_cookie_is_nobody(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, _ = login(engine, "boss", PASSWORD)
    assert resolve_session(engine, token[:-1]) is None
    assert resolve_session(engine, token + "A") is None


@pytest.mark.parametrize(
    ("minutes_idle", "alive"), [(0, True), (59, True), (60, False), (61, False), (24 * 60, False)]
)
def test_idle_limit(engine: Engine, users, minutes_idle: int, alive: bool) -> None:  # type: ignore[no-untyped-def]
    start = clock.now()
    token, _ = login(engine, "boss", PASSWORD)
    with clock.frozen(start + timedelta(minutes=minutes_idle)):
        assert (resolve_session(engine, token) is not None) is alive


def test_activity_keeps_a_session_alive_until_the_absolute_limit(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    start = clock.now()
    token, _ = login(engine, "boss", PASSWORD)
    for minute in range(30, 12 * 60, 30):  # a click every half hour all day
        with clock.frozen(start + timedelta(minutes=minute)):
            assert resolve_session(engine, token) is not None, minute
    with clock.frozen(start + timedelta(hours=12)):
        assert resolve_session(engine, token) is None


def test_a_live_fragment_does_not_count_as_activity(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    start = clock.now()
    token, _ = login(engine, "boss", PASSWORD)
    for minute in (10, 30, 59):
        with clock.frozen(start + timedelta(minutes=minute)):
            assert resolve_session(engine, token, touch=False) is not None
    with clock.frozen(start + timedelta(minutes=61)):
        assert resolve_session(engine, token, touch=False) is None


def test_logout_ends_every_session_of_that_person_and_replay_fails(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    phone, _ = login(engine, "mina", PASSWORD)
    desk, _ = login(engine, "mina", PASSWORD)
    boss, _ = login(engine, "boss", PASSWORD)
    auth.logout(engine, phone)
    assert resolve_session(engine, phone) is None and resolve_session(engine, desk) is None
    assert resolve_session(engine, boss) is not None  # someone else's session is untouched
    auth.logout(engine, phone)  # logging out twice (a replayed logout) is harmless
    with Session(engine) as session:
        assert session.exec(select(func.count()).where(AuditLog.action == "user.logout")).one() == 1


def test_role_change_applies_at_once_and_ends_the_sessions(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, actor = login(engine, "mina", PASSWORD)
    assert actor.role is Role.CS
    with Session(engine) as session:
        change_role(session, users["boss"], users["mina"].id, "staff")
        session.commit()
    assert resolve_session(engine, token) is None
    token, actor = login(engine, "mina", PASSWORD)
    assert actor.role is Role.STAFF


def test_the_role_is_read_from_the_database_on_every_request(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    """Even a change made straight in the database (not through change_role) applies at once."""
    token, _ = login(engine, "mina", PASSWORD)
    with Session(engine) as session:
        user = session.get(StaffUser, users["mina"].id)
        user.role = "staff"
        session.add(user)
        session.commit()
    assert resolve_session(engine, token).role is Role.STAFF
    with Session(engine) as session:
        user = session.get(StaffUser, users["mina"].id)
        user.is_active = False
        session.add(user)
        session.commit()
    assert resolve_session(engine, token) is None  # a deactivated user's cookie is nobody


def test_deactivation_ends_sessions_and_blocks_login_until_reactivated(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, _ = login(engine, "joon", PASSWORD)
    with Session(engine) as session:
        set_active(session, users["boss"], users["joon"].id, False)
        session.commit()
    assert resolve_session(engine, token) is None
    _wrong_right = pytest.raises(LoginFailed, match=LOGIN_REFUSED)
    with _wrong_right:
        login(engine, "joon", PASSWORD)
    with Session(engine) as session:
        set_active(session, users["boss"], users["joon"].id, True)
        session.commit()
    assert login(engine, "joon", PASSWORD)[1].role is Role.STAFF
    with Session(engine) as session:
        actions = session.exec(select(AuditLog.action).where(AuditLog.entity_id == str(users["joon"].id))).all()
    assert "user.disable" in actions and "user.enable" in actions


# --------------------------------------------------------------------------------------- accounts


def test_own_password_change_needs_the_current_one_and_ends_every_session(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, actor = login(engine, "mina", PASSWORD)
    with Session(engine) as session, pytest.raises(ValidationFailed, match="지금 비밀번호"):
        change_own_password(session, actor, "not-it", "new-password-2")
    with Session(engine) as session, pytest.raises(ValidationFailed, match="8자"):
        change_own_password(session, actor, PASSWORD, "short")
    with Session(engine) as session:
        change_own_password(session, actor, PASSWORD, "new-password-2")
        session.commit()
    assert resolve_session(engine, token) is None
    with pytest.raises(LoginFailed):
        login(engine, "mina", PASSWORD)
    assert login(engine, "mina", "new-password-2")[1].id == actor.id


def test_only_the_owner_resets_a_password(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    token, _ = login(engine, "joon", PASSWORD)
    with Session(engine) as session, pytest.raises(PermissionDenied):
        reset_password(session, users["mina"], users["joon"].id, "reset-password-1")
    with Session(engine) as session:
        reset_password(session, users["boss"], users["joon"].id, "reset-password-1")
        session.commit()
    assert resolve_session(engine, token) is None
    assert login(engine, "joon", "reset-password-1")[1].role is Role.STAFF
    with Session(engine) as session:
        row = session.exec(select(AuditLog).where(AuditLog.action == "user.password_reset")).one()
        assert row.actor_id == users["boss"].id and "reset-password-1" not in str(row.detail)


def test_the_last_owner_is_never_deactivated_or_demoted(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    owner = users["boss"]
    with Session(engine) as session, pytest.raises(ValidationFailed, match="마지막 사장님"):
        set_active(session, owner, owner.id, False)
    with Session(engine) as session, pytest.raises(ValidationFailed, match="마지막 사장님"):
        change_role(session, owner, owner.id, "cs")
    with Session(engine) as session, pytest.raises(ValidationFailed, match="마지막 사장님"):
        set_active(session, None, owner.id, False)  # not from the CLI either
    with Session(engine) as session:  # with a second owner, the first may go
        change_role(session, owner, users["mina"].id, "owner")
        set_active(session, owner, owner.id, False)
        session.commit()
    with Session(engine) as session, pytest.raises(ValidationFailed, match="마지막 사장님"):
        set_active(session, None, users["mina"].id, False)


@pytest.mark.parametrize("username", ["a\x00b", "tab\there", "new\nline", "bell\x07", "del\x7f", "c1\x85"])
def test_usernames_with_control_characters_are_refused(engine: Engine, username: str) -> None:
    with Session(engine) as session, pytest.raises(ValidationFailed, match="제어 문자"):
        create_user(session, None, username=username, display_name="x", role="cs", password=PASSWORD)
    with pytest.raises(LoginFailed, match=LOGIN_REFUSED):
        login(engine, username, PASSWORD)


def test_a_10000_character_password_is_refused_without_hashing(engine: Engine, users, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(auth, "verify_password", lambda *_: pytest.fail("hashed a 10,000-character password"))
    with pytest.raises(LoginFailed, match=LOGIN_REFUSED):
        login(engine, "boss", "가" * 10_000)
    with Session(engine) as session, pytest.raises(ValidationFailed, match="1,024자"):
        create_user(session, None, username="long", display_name="x", role="cs", password="x" * 10_000)


# --------------------------------------------------------------------------------------- throttling


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (8, 4), (100, 4), (10**9, 4)],
)
def test_backoff_grows_then_stops_at_the_cap(failures: int, seconds: float) -> None:
    assert backoff_seconds(failures, free=5, cap_seconds=4) == seconds


def test_backoff_per_address_reaches_its_longer_cap() -> None:
    assert [backoff_seconds(n, 5, 900) for n in (5, 9, 14, 15, 40)] == [1, 16, 512, 900, 900]


def test_unknown_wrong_and_throttled_read_the_same(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    messages = set()
    for username in ("boss", "nobody-here"):
        for _ in range(SETTINGS.login_max_failures + 2):  # the last ones are refused unchecked
            with pytest.raises(LoginFailed) as refused:
                login(engine, username, "wrong-password", Client(ip=f"192.0.2.{len(username)}"))
            messages.add(str(refused.value))
    assert messages == {LOGIN_REFUSED}
    with Session(engine) as session:  # the unknown name is throttled exactly like the real one
        counts = dict(session.exec(select(LoginThrottle.key, LoginThrottle.failed_logins)).all())
    assert counts["user:boss"] == counts["user:nobody-here"] == SETTINGS.login_max_failures


def test_the_owner_gets_in_after_the_backoff_however_long_the_guessing(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    start = clock.now()
    for second in range(0, 400, 5):  # an attacker guessing every 5 s, from many addresses
        with clock.frozen(start + timedelta(seconds=second)), pytest.raises(LoginFailed):
            login(engine, "boss", "guess-password", Client(ip=f"198.51.100.{second % 250}"))
    last = start + timedelta(seconds=395)
    with clock.frozen(last + timedelta(seconds=1)), pytest.raises(LoginFailed, match=LOGIN_REFUSED):
        login(engine, "boss", PASSWORD, Client(ip="203.0.113.50"))  # inside the backoff: refused unchecked
    with clock.frozen(last + timedelta(seconds=SETTINGS.login_user_backoff_max_seconds)):
        assert login(engine, "boss", PASSWORD, Client(ip="203.0.113.50"))[1].role is Role.OWNER
    with Session(engine) as session:
        assert session.get(LoginThrottle, "user:boss") is None  # a success clears the username's count


def test_one_address_guessing_is_slowed_far_longer_than_the_account(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    start = clock.now()
    for n in range(10):  # a different username each minute, all from one address: 10 failures
        with clock.frozen(start + timedelta(minutes=n)):
            _wrong(engine, f"user{n}", ip="203.0.113.66")
    later = start + timedelta(minutes=9, seconds=20)  # 20 s after the last: that address waits 32 s
    with clock.frozen(later), pytest.raises(LoginFailed):
        login(engine, "boss", PASSWORD, Client(ip="203.0.113.66"))
    with clock.frozen(later):
        assert login(engine, "boss", PASSWORD, Client(ip="203.0.113.67")) is not None  # the owner elsewhere: fine


def test_unlock_ends_the_backoff_at_once(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    for _ in range(SETTINGS.login_max_failures + 1):
        _wrong(engine, "boss", ip="")
    with Session(engine) as session:
        assert unlock(session, None, "boss") == 1
        session.exec(LoginThrottle.__table__.delete())  # type: ignore[attr-defined]  (the address too)
        session.commit()
    assert login(engine, "boss", PASSWORD) is not None


def test_parallel_failures_are_each_counted(engine: Engine) -> None:
    """36 parallel failures count 36 (the old read-modify-write counted 4 on PostgreSQL)."""
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: record_failed_login(engine, "user:boss")[0], range(36)))
    assert sorted(results) == list(range(1, 37))
    with Session(engine) as session:
        assert session.get(LoginThrottle, "user:boss").failed_logins == 36


def test_parallel_wrong_logins_are_each_counted(engine: Engine, users) -> None:  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: _wrong(engine, "nobody", ip=f"192.0.2.{n}"), range(4)))
        list(pool.map(lambda n: _wrong(engine, "nobody", ip=f"192.0.2.{n}"), range(4, 5)))
    with Session(engine) as session:
        assert session.get(LoginThrottle, "user:nobody").failed_logins == 5


def test_argon2_checks_are_capped(engine: Engine, users, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    running = 0
    peak = 0
    lock = threading.Lock()
    real_verify = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real_verify(password_hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "verify_password", counting)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: _wrong(engine, f"user{n}", ip=f"192.0.2.{n}"), range(10)))
    assert 1 <= peak <= auth.ARGON2_SLOTS


def test_the_password_is_checked_with_no_write_lock_held(sqlite_engine: Engine, monkeypatch) -> None:
    """During every argon2 check another writer can take SQLite's write lock at once: a flood of
    logins never makes a payment or a reply wait (bench/security.py measures the latency)."""
    with Session(sqlite_engine) as session:
        create_user(session, None, username="boss", display_name="b", role="owner", password=PASSWORD)
        session.commit()
    path = sqlite_engine.url.database
    real_verify = auth.verify_password
    checks: list[bool] = []

    def verify_while_probing(password_hash: str, password: str) -> bool:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            checks.append(True)
        except sqlite3.OperationalError:
            checks.append(False)
        finally:
            probe.close()
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", verify_while_probing)
    with pytest.raises(LoginFailed):
        login(sqlite_engine, "boss", "wrong-password")
    with pytest.raises(LoginFailed):
        login(sqlite_engine, "nobody", "wrong-password")
    assert login(sqlite_engine, "boss", PASSWORD)
    assert checks == [True, True, True]
