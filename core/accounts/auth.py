"""Staff login, sessions, passwords (argon2id), throttling, accounts, and the role checks every service makes."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import CLI_ACTOR, Actor, require_role
from core.config import get_settings
from core.customers.identity import NOT_MOBILE, identify
from core.db import read_scope, session_scope
from core.errors import PermissionDenied, ValidationFailed
from core.messaging.phone import mask_phone
from core.models import AuditLog, LoginThrottle, Role, StaffSession, StaffUser
from core.safe_text import has_control_chars

_hasher = PasswordHasher()  # argon2id, memory-hard, library defaults (RFC 9106 low-memory profile)


class LoginFailed(ValidationFailed):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Owners and CS call customers back; staff choose campaign audiences by rules, never by number.
PHONE_ROLES = frozenset({Role.OWNER, Role.CS})


def phone_for(actor: Actor, phone: str | None) -> str:
    """A customer's number as this role may see it: whole for owner and cs, masked for staff.
    A number that is not a mobile (core.customers.identity) says so: it never receives a message."""
    if not phone:
        return ""
    found = identify(phone)
    if found.raw is None:
        return ""
    shown = found.display if actor.role in PHONE_ROLES else mask_phone(found.display)
    if found.is_mobile:
        return shown
    if len(shown) > 40:
        shown = shown[:40] + "…"
    return f"{shown} ({NOT_MOBILE})"


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValidationFailed(
            f"알 수 없는 역할입니다: {value!r} (owner, cs, staff 중 하나)"
        ) from None


def create_user(
    session: Session, actor: Actor | None, *, username: str, display_name: str, role: str, password: str
) -> StaffUser:
    """Create a staff user; actor None is the operator CLI (trusted shell access)."""
    if actor is not None:
        require_role(actor, Role.OWNER)
    parsed_role = parse_role(role)
    if has_control_chars(username):
        raise ValidationFailed("아이디에 쓸 수 없는 문자가 있습니다 (제어 문자)")
    username = username.strip()
    if not username or len(username) > 64:
        raise ValidationFailed("아이디는 1~64자여야 합니다")
    _check_new_password(password)
    if session.exec(select(StaffUser).where(StaffUser.username == username)).first():
        raise ValidationFailed(f"이미 있는 아이디입니다: {username}")
    user = StaffUser(
        username=username, display_name=display_name or username, role=parsed_role.value,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, actor or CLI_ACTOR, "user.create", "staff_user", user.id,
                 username=username, role=parsed_role.value)
    return user


# ----------------------------------------------------------------------------------------------
# login: throttled, checked outside any write transaction, recorded atomically

# One sentence for an unknown user, a wrong password, a deactivated account and a throttled attempt:
# nothing a guesser reads tells which usernames exist or whether waiting would help.
LOGIN_REFUSED = "아이디 또는 비밀번호가 올바르지 않습니다. 여러 번 틀렸다면 잠시 후 다시 시도하세요"
MAX_PASSWORD_CHARS = 1024  # argon2 hashes any length; a 10,000-character "password" is refused, not hashed
# argon2 needs ~64 MB and a core for ~50 ms: at most this many checks at once per process, so a flood
# of logins cannot take the memory or the CPU the shop's own screens need.
ARGON2_SLOTS = 2
ARGON2_WAIT_SECONDS = 10.0
THROTTLE_FORGET = timedelta(hours=24)  # a failure this old no longer counts
_argon2_slots = threading.BoundedSemaphore(ARGON2_SLOTS)


@dataclass(frozen=True)
class Client:
    """Where a login or a page request comes from (kept on the session row for the owner to read)."""

    ip: str = ""
    user_agent: str = ""


def backoff_seconds(failures: int, free: int, cap_seconds: float) -> float:
    """How long after the last failure the next attempt is refused unchecked: nothing for the first
    `free` failures, then 1, 2, 4 ... seconds up to `cap_seconds`. Never a permanent lock."""
    if failures < free:
        return 0.0
    return float(min(cap_seconds, 2.0 ** min(failures - free, 30)))


def throttle_keys(username: str, ip: str) -> tuple[str, str]:
    """Per typed username (known or not, so throttling reveals nothing) and per client address."""
    return f"user:{username.strip().casefold()[:64]}", f"addr:{ip[:64]}"


def _throttled_until(row: LoginThrottle | None, free: int, cap_seconds: float) -> datetime | None:
    if row is None or row.last_failed_at is None or row.failed_logins < free:
        return None
    if clock.now() - row.last_failed_at > THROTTLE_FORGET:
        return None
    return row.last_failed_at + timedelta(seconds=backoff_seconds(row.failed_logins, free, cap_seconds))


def record_failed_login(engine: Engine, *keys: str) -> list[int]:
    """Count one failure for each key (username, address) in one short transaction, each with a
    single atomic upsert (INSERT ... ON CONFLICT DO UPDATE SET failed_logins = failed_logins + 1 ...
    RETURNING): parallel guesses are each counted, never lost. Returns the new counts."""
    now = clock.now()
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    stale = table.c.last_failed_at < now - THROTTLE_FORGET
    counts: list[int] = []
    with engine.begin() as connection:
        for key in keys:
            statement = (
                dialect_insert(table)
                .values(key=key, failed_logins=1, last_failed_at=now)
                .on_conflict_do_update(
                    index_elements=[table.c.key],
                    set_={
                        "failed_logins": case((stale, 1), else_=table.c.failed_logins + 1),
                        "last_failed_at": now,
                    },
                )
                .returning(table.c.failed_logins)
            )
            counts.append(int(connection.execute(statement).scalar_one()))
    return counts


def login(engine: Engine, username: str, password: str, client: Client = Client()) -> tuple[str, Actor]:
    """Check a login and open a session; returns (cookie token, actor).

    The lookups run in a read-only transaction and the argon2 check in none at all, so a flood of
    logins never holds the write lock the shop's payments and replies need. Failures are counted per
    typed username and per address; while either is backing off the attempt is refused unchecked.
    Every refusal is the same LoginFailed(LOGIN_REFUSED).
    """
    settings = get_settings()
    name = username.strip() if isinstance(username, str) else ""
    if (not name or len(name) > 64 or has_control_chars(username) or not isinstance(password, str)
            or not password or len(password) > MAX_PASSWORD_CHARS or "\x00" in password):
        raise LoginFailed(LOGIN_REFUSED)
    user_key, addr_key = throttle_keys(name, client.ip)
    with read_scope(engine) as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == name)).first()
        user_row = session.get(LoginThrottle, user_key)
        addr_row = session.get(LoginThrottle, addr_key)
    now = clock.now()
    for row, cap in ((user_row, settings.login_user_backoff_max_seconds),
                     (addr_row, settings.login_address_backoff_max_seconds)):
        until = _throttled_until(row, settings.login_max_failures, cap)
        if until is not None and now < until:
            raise LoginFailed(LOGIN_REFUSED)
    if not _argon2_slots.acquire(timeout=ARGON2_WAIT_SECONDS):
        raise LoginFailed(LOGIN_REFUSED)
    try:
        # Unknown and deactivated users cost the same argon2 work as a wrong password.
        real = user is not None and user.is_active
        ok = verify_password(user.password_hash if real else _dummy_hash(), password) and real
        new_hash = hash_password(password) if ok and _hasher.check_needs_rehash(user.password_hash) else None
    finally:
        _argon2_slots.release()
    if not ok or user is None:
        record_failed_login(engine, user_key, addr_key)
        raise LoginFailed(LOGIN_REFUSED)
    with session_scope(engine) as session:
        session.exec(delete(LoginThrottle).where(LoginThrottle.key == user_key))  # type: ignore[call-overload]
        values: dict[str, object] = {"last_login_at": now}
        if new_hash is not None:
            values["password_hash"] = new_hash
        session.exec(update(StaffUser).where(StaffUser.id == user.id).values(**values))  # type: ignore[call-overload]
        token = open_session(session, user.id, client)  # type: ignore[arg-type]
        audit.record(session, Actor(user.id, user.display_name, Role(user.role)), "user.login", "staff_user",
                     user.id, ip=client.ip[:64])
    return token, Actor(id=user.id, name=user.display_name, role=Role(user.role))


def open_session(session: Session, user_id: int, client: Client = Client()) -> str:
    """A new session row for a user whose password was just checked; returns the cookie token
    (256 random bits; only its SHA-256 is stored)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(StaffSession(token_hash=token_digest(token), user_id=user_id, created_at=now, last_seen_at=now,
                             ip=client.ip[:64], user_agent=client.user_agent[:256]))
    return token


def authenticate(bind: Engine | Session, username: str, password: str, client: Client = Client()) -> Actor:
    """`login` for tools and tests that want the actor only. Given a Session, it must hold no write
    transaction (the checks run on their own connections)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    assert isinstance(engine, Engine)
    return login(engine, username, password, client)[1]


# ----------------------------------------------------------------------------------------------
# sessions

SESSION_COOKIE = "channeldesk_session"
SESSION_TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session


def token_digest(token: str) -> str:
    """The store keeps only this: a stolen database copy holds no usable cookie."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _looks_like_token(token: object) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= 100 and token.isascii() and token.isprintable()


def session_ends_at(created_at: datetime, last_seen_at: datetime) -> datetime:
    """Idle limit from the last request, absolute limit from the login: whichever comes first."""
    settings = get_settings()
    return min(last_seen_at + timedelta(minutes=settings.session_idle_minutes),
               created_at + timedelta(minutes=settings.session_max_minutes))


def resolve_session(engine: Engine, token: object, *, touch: bool = True) -> Actor | None:
    """The actor behind a cookie, read from the database on every call (role, active flag, revocation),
    or None for a missing, forged, expired, revoked or deactivated one. `touch` counts this request as
    activity for the idle limit (a live fragment refreshing itself does not)."""
    if not _looks_like_token(token):
        return None
    assert isinstance(token, str)
    now = clock.now()
    with read_scope(engine) as session:
        found = session.exec(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)  # type: ignore[arg-type]
            .where(StaffSession.token_hash == token_digest(token))
        ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or not user.is_active or now >= session_ends_at(row.created_at, row.last_seen_at):
        return None
    if touch and now - row.last_seen_at >= SESSION_TOUCH_EVERY:
        with session_scope(engine) as session:
            session.exec(update(StaffSession).where(StaffSession.id == row.id)  # type: ignore[call-overload]
                         .values(last_seen_at=now))
    return Actor(id=user.id, name=user.display_name, role=Role(user.role))


def revoke_sessions(session: Session, user_id: int | None) -> int:
    """End every open session of a user at once (logout, password change, deactivation, role change)."""
    if user_id is None:
        return 0
    result = session.exec(
        update(StaffSession)  # type: ignore[call-overload]
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=clock.now())
    )
    return int(result.rowcount or 0)


def logout(engine: Engine, token: object) -> None:
    """Log out: every session of the person behind this cookie ends, on every browser and server."""
    if not _looks_like_token(token):
        return
    assert isinstance(token, str)
    with session_scope(engine) as session:
        row = session.exec(select(StaffSession).where(StaffSession.token_hash == token_digest(token))).first()
        if row is not None and revoke_sessions(session, row.user_id):
            user = session.get(StaffUser, row.user_id)
            if user is not None:
                audit.record(session, Actor(user.id, user.display_name, Role(user.role)), "user.logout",
                             "staff_user", user.id)


# ----------------------------------------------------------------------------------------------
# accounts


def _check_new_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationFailed("비밀번호는 8자 이상이어야 합니다")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationFailed(f"비밀번호는 {MAX_PASSWORD_CHARS:,}자 이하여야 합니다")
    if "\x00" in password:
        raise ValidationFailed("비밀번호에 쓸 수 없는 문자가 있습니다")


def _user(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise ValidationFailed("없는 사용자입니다")
    return user


def _active_owner_count(session: Session) -> int:
    return len(session.exec(
        select(StaffUser.id).where(StaffUser.role == Role.OWNER.value, StaffUser.is_active.is_(True))  # type: ignore[attr-defined]
    ).all())


def change_own_password(session: Session, actor: Actor, current: str, new: str) -> None:
    """Anyone changes their own password with the current one; every session of theirs ends."""
    if actor.id is None:
        raise PermissionDenied("로그인한 직원만 비밀번호를 바꿀 수 있습니다")
    user = _user(session, actor.id)
    if not isinstance(current, str) or len(current) > MAX_PASSWORD_CHARS or not verify_password(user.password_hash, current):
        raise ValidationFailed("지금 비밀번호가 올바르지 않습니다")
    _check_new_password(new)
    user.password_hash = hash_password(new)
    session.add(user)
    revoke_sessions(session, user.id)
    audit.record(session, actor, "user.password_change", "staff_user", user.id)


def reset_password(session: Session, actor: Actor | None, user_id: int, new: str) -> StaffUser:
    """The owner (or the operator CLI, actor None) sets someone's password; their sessions end."""
    if actor is not None:
        require_role(actor, Role.OWNER)
    user = _user(session, user_id)
    _check_new_password(new)
    user.password_hash = hash_password(new)
    session.add(user)
    revoke_sessions(session, user.id)
    session.exec(delete(LoginThrottle).where(LoginThrottle.key == throttle_keys(user.username, "")[0]))  # type: ignore[call-overload]
    audit.record(session, actor or CLI_ACTOR, "user.password_reset", "staff_user", user.id, username=user.username)
    return user


def set_active(session: Session, actor: Actor | None, user_id: int, active: bool) -> StaffUser:
    """Deactivate (every session ends at once) or reactivate a user; never the last active owner."""
    if actor is not None:
        require_role(actor, Role.OWNER)
    user = _user(session, user_id)
    if not active and user.is_active and user.role == Role.OWNER.value and _active_owner_count(session) <= 1:
        raise ValidationFailed("마지막 사장님 계정은 정지할 수 없습니다")
    if user.is_active == active:
        return user
    user.is_active = active
    session.add(user)
    revoke_sessions(session, user.id)
    audit.record(session, actor or CLI_ACTOR, "user.enable" if active else "user.disable", "staff_user", user.id,
                 username=user.username)
    return user


def unlock(session: Session, actor: Actor | None, username: str) -> int:
    """Forget the failed logins counted against a username (the backoff ends now)."""
    if actor is not None:
        require_role(actor, Role.OWNER)
    result = session.exec(delete(LoginThrottle).where(LoginThrottle.key == throttle_keys(username, "")[0]))  # type: ignore[call-overload]
    audit.record(session, actor or CLI_ACTOR, "user.unlock", "staff_user", None, username=username.strip())
    return int(result.rowcount or 0)


def change_role(session: Session, actor: Actor, user_id: int, role: str) -> StaffUser:
    """A new role applies at once: every session of that user ends (never the last active owner)."""
    require_role(actor, Role.OWNER)
    user = _user(session, user_id)
    new_role = parse_role(role)
    old = user.role
    if (old == Role.OWNER.value and new_role is not Role.OWNER and user.is_active
            and _active_owner_count(session) <= 1):
        raise ValidationFailed("마지막 사장님 계정의 역할은 바꿀 수 없습니다")
    user.role = new_role.value
    session.add(user)
    if old != new_role.value:
        revoke_sessions(session, user.id)
    audit.record(session, actor, "user.role_change", "staff_user", user.id, old=old, new=new_role.value)
    return user


def is_demo_store(session: Session) -> bool:
    """A store filled by `seed --demo` (its audit log says so): only there the login names demo accounts."""
    return session.exec(select(AuditLog.id).where(AuditLog.action == "seed.demo").limit(1)).first() is not None


@cache
def _dummy_hash() -> str:
    """Made on first use, not at import: argon2 needs ~64 MB, which every importing process paid."""
    return _hasher.hash("not-a-real-password")
