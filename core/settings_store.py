"""Owner-editable settings kept in the `setting` table as JSON (one row per key).

The shop-wide store every domain keeps its settings in; each domain owns its keys and their
defaults (core.inquiries.policy the SLA ones, core.messaging.sender the messaging ones, ...) and
passes the default when it reads. Writes are owner-only and audited.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.models import Role, Setting


def get(session: Session, key: str, default: Any = None) -> Any:
    """The stored value, or a copy of `default` when the key was never set."""
    row = session.get(Setting, key)
    if row is None or row.value is None:
        return copy.deepcopy(default)
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
