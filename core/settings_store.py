"""Owner-editable settings kept in the `setting` table as JSON, each with a default."""

from __future__ import annotations

import copy
from typing import Any

from sqlmodel import Session

from core import audit, clock
from core.auth import Actor, require_role
from core.models import Role, Setting

DEFAULTS: dict[str, Any] = {
    # Business hours per ISO weekday (1=Mon..7=Sun) as [["HH:MM","HH:MM"], ...] windows in KST.
    "business_hours": {
        "1": [["09:00", "12:00"], ["13:00", "18:00"]],
        "2": [["09:00", "12:00"], ["13:00", "18:00"]],
        "3": [["09:00", "12:00"], ["13:00", "18:00"]],
        "4": [["09:00", "12:00"], ["13:00", "18:00"]],
        "5": [["09:00", "12:00"], ["13:00", "18:00"]],
        "6": [],
        "7": [],
    },
    "observe_public_holidays": True,
    # SLA alerts also by message (AlimTalk/SMS through the outbox) to the CS lead's phone; see
    # core.sla_config.AlertMessage.
    "sla_alert_message": {"enabled": False, "phone": "", "thresholds": ["at_risk", "breached"]},
}


def get(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    if row is None or row.value is None:
        return copy.deepcopy(DEFAULTS.get(key))
    return row.value


def put(session: Session, actor: Actor, key: str, value: Any) -> None:
    """Change a setting (owner only); audited with the old and new value."""
    require_role(actor, Role.OWNER)
    row = session.get(Setting, key)
    old = None if row is None else row.value
    if row is None:
        row = Setting(key=key)
    row.value = value
    row.updated_at = clock.now()
    row.updated_by = actor.id
    session.add(row)
    audit.record(session, actor, "setting.change", "setting", key, old=old, new=value)
