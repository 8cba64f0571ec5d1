"""Who is acting (a staff member, the worker, the CLI) and the role check every service makes first.

Below audit and auth, so both can name an actor without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import PermissionDenied
from core.models import Role
from core.models.staff import ROLE_LABELS


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in staff member, or the worker."""

    id: int | None
    name: str
    role: Role


SYSTEM_ACTOR = Actor(id=None, name="worker", role=Role.OWNER)
CLI_ACTOR = Actor(id=None, name="cli", role=Role.OWNER)


def require_role(actor: Actor, *roles: Role) -> None:
    """Every service that changes data calls this first; the UI hiding a button is not enough."""
    if actor.role not in roles:
        allowed = ", ".join(ROLE_LABELS.get(r, r.value) for r in roles)
        raise PermissionDenied(f"권한이 없습니다 ({ROLE_LABELS.get(actor.role, actor.role.value)} → {allowed} 필요)")
