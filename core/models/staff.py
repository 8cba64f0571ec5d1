"""Staff users, roles and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class Role(StrEnum):
    OWNER = "owner"
    CS = "cs"
    STAFF = "staff"


ROLE_LABELS = {Role.OWNER: "사장님", Role.CS: "CS 담당", Role.STAFF: "운영 스태프"}


class StaffUserBase(SQLModel):
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    is_active: bool = True


class StaffUserCreate(StaffUserBase):
    password: str = Field(min_length=8, max_length=256)


class StaffUserUpdate(SQLModel):
    display_name: str | None = None
    role: str | None = None
    is_active: bool | None = None


class StaffUser(StaffUserBase, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=255)
    last_login_at: datetime | None = utc_field()
    created_at: datetime = utc_field(default_now=True)


class StaffSession(SQLModel, table=True):
    """A login: the browser holds a random token in an HttpOnly cookie, the store only its SHA-256.

    Rows live in the database so a reload, a new tab, a restarted server and a second UI server all
    see the same login; revoking is one UPDATE (revoked_at), checked on every script run.
    """

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    created_at: datetime = utc_field(default_now=True)
    last_seen_at: datetime = utc_field(default_now=True)
    revoked_at: datetime | None = utc_field()
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=256)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per key ("user:<name>" for any typed username, known or not; "addr:<ip>").

    Counted with one atomic UPDATE ... SET failed_logins = failed_logins + 1 RETURNING, so parallel
    guesses are never lost; the delay grows with the count and never becomes a permanent lock.
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=200)
    failed_logins: int = 0
    last_failed_at: datetime | None = utc_field()


class AuditLog(SQLModel, table=True):
    """Append-only record of every write that matters; no service updates or deletes a row."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field(default_now=True, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=32)
    entity_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = json_field()
