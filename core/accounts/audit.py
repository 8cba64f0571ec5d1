"""The audit log: one append-only row for every write that matters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlmodel import Session

from core import clock
from core.errors import PermissionDenied
from core.models import AuditLog

if TYPE_CHECKING:
    from core.accounts.actor import Actor


def record(
    session: Session, actor: Actor, action: str, entity_type: str, entity_id: object, **detail: Any
) -> AuditLog:
    """Add an audit row in the caller's transaction, so it commits (or not) with the change itself."""
    row = AuditLog(
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        detail={key: _jsonable(value) for key, value in detail.items()},
    )
    session.add(row)
    return row


def record_many(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entries: list[tuple[object, dict[str, Any]]],
) -> None:
    """`record` for a batch of (entity_id, detail): one Core insert in the caller's transaction."""
    if not entries:
        return
    at = clock.now()
    session.execute(
        AuditLog.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "at": at,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "action": action,
                "entity_type": entity_type,
                "entity_id": None if entity_id is None else str(entity_id),
                "detail": {key: _jsonable(value) for key, value in detail.items()},
            }
            for entity_id, detail in entries
        ],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


@event.listens_for(Session, "before_flush")
def _append_only(session: Session, _context: Any, _instances: Any) -> None:
    """No code path may change or delete an audit row through the ORM (the UI has no other way in)."""
    for row in (*session.dirty, *session.deleted):
        if isinstance(row, AuditLog) and (row in session.deleted or session.is_modified(row)):
            raise PermissionDenied("감사 기록은 고치거나 지울 수 없습니다 (audit log is append-only)")
