"""Staff login, passwords (argon2id), throttling, and the role checks every service makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from core import audit, clock
from core.config import get_settings
from core.errors import PermissionDenied, ValidationFailed
from core.messaging.phone import mask_phone
from core.models import Role, StaffUser

_hasher = PasswordHasher()  # argon2id, memory-hard, library defaults (RFC 9106 low-memory profile)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in staff member, or the worker."""

    id: int | None
    name: str
    role: Role


SYSTEM_ACTOR = Actor(id=None, name="worker", role=Role.OWNER)


class LoginFailed(ValidationFailed):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def require_role(actor: Actor, *roles: Role) -> None:
    """Every service that changes data calls this first; the UI hiding a button is not enough."""
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"권한이 없습니다 ({actor.role.value} → {allowed} 필요)")


# Owners and CS call customers back; staff choose campaign audiences by rules, never by number.
PHONE_ROLES = frozenset({Role.OWNER, Role.CS})


def phone_for(actor: Actor, phone: str | None) -> str:
    """A customer's number as this role may see it: whole for owner and cs, masked for staff."""
    if not phone:
        return ""
    return phone if actor.role in PHONE_ROLES else mask_phone(phone)


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
    username = username.strip()
    if not username or len(username) > 64:
        raise ValidationFailed("아이디는 1~64자여야 합니다")
    if len(password) < 8:
        raise ValidationFailed("비밀번호는 8자 이상이어야 합니다")
    if session.exec(select(StaffUser).where(StaffUser.username == username)).first():
        raise ValidationFailed(f"이미 있는 아이디입니다: {username}")
    user = StaffUser(
        username=username, display_name=display_name or username, role=parsed_role.value,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, actor or Actor(None, "cli", Role.OWNER), "user.create", "staff_user", user.id,
                 username=username, role=parsed_role.value)
    return user


def authenticate(session: Session, username: str, password: str) -> Actor:
    """Check a login; lock the account for a while after repeated failures."""
    settings = get_settings()
    now = clock.now()
    user = session.exec(select(StaffUser).where(StaffUser.username == username.strip())).first()
    if user is None or not user.is_active:
        # Same message and the same work as a wrong password: no hint which usernames exist.
        verify_password(_dummy_hash(), password)
        raise LoginFailed("아이디 또는 비밀번호가 올바르지 않습니다")
    if user.locked_until and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginFailed(f"로그인 시도가 너무 많습니다. {minutes}분 후 다시 시도하세요")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.failed_logins = 0
            audit.record(session, Actor(user.id, user.username, Role(user.role)), "user.locked",
                         "staff_user", user.id)
        session.add(user)
        session.commit()
        raise LoginFailed("아이디 또는 비밀번호가 올바르지 않습니다")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    session.commit()
    return Actor(id=user.id, name=user.display_name, role=Role(user.role))


def change_role(session: Session, actor: Actor, user_id: int, role: str) -> StaffUser:
    require_role(actor, Role.OWNER)
    user = session.get(StaffUser, user_id)
    if user is None:
        raise ValidationFailed("없는 사용자입니다")
    new_role = parse_role(role)
    old = user.role
    user.role = new_role.value
    session.add(user)
    audit.record(session, actor, "user.role_change", "staff_user", user.id, old=old, new=new_role.value)
    return user


@cache
def _dummy_hash() -> str:
    """Made on first use, not at import: argon2 needs ~64 MB, which every importing process paid."""
    return _hasher.hash("not-a-real-password")
