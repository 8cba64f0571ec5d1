"""Claiming and writing back message rows: who holds a row, and every write guarded by its claim.

A row is claimed by one UPDATE (status 'sending', a claim token, a lease); FOR UPDATE SKIP LOCKED on
PostgreSQL so N workers never claim the same row. Every later write names the claim token, so a
worker that lost its claim changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, update

from core.db import is_postgres
from core.models import (
    AdSendSlot,
    Message,
    MessageKind,
    MessageStatus,
)

M = Message.__table__
S = AdSendSlot.__table__
# Held rows whose time came first, then new ones, each oldest first: a held ad takes the day's
# slot before a fresh one can (a repurchase reminder can no longer starve a held campaign ad).
DUE = (MessageStatus.HELD.value, MessageStatus.QUEUED.value)
# An ad in these states keeps its slot of the daily limit; any other state gives it back.
KEEPS_AD_SLOT = (MessageStatus.SENDING.value, MessageStatus.SENT.value, MessageStatus.DELIVERED.value)

_LOAD_COLUMNS = (
    M.c.id,
    M.c.customer_id,
    M.c.to_phone,
    M.c.kind,
    M.c.template_key,
    M.c.text,
    M.c.variables,
    M.c.idempotency_key,
    M.c.attempts,
)


# -- claiming ------------------------------------------------------------------------------------
def claim_due_rows(
    engine: Engine, now: datetime, limit: int, lease: timedelta
) -> tuple[str | None, list[dict[str, Any]]]:
    """Claim up to `limit` due rows for this worker in one transaction; returns (token, rows).

    Held rows whose hold ended first, then queued rows, each oldest first: one status per
    statement lets the (status, send_after) index give the order without sorting the backlog."""
    token = uuid.uuid4().hex
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for status in DUE:
            if len(rows) >= limit:
                break
            due = (
                select(M.c.id)
                .where(M.c.status == status, M.c.send_after <= now)
                .order_by(M.c.send_after)
                .limit(limit - len(rows))
            )
            if is_postgres(engine):
                due = due.with_for_update(skip_locked=True)
            stmt = (
                update(M)
                .where(M.c.id.in_(due.scalar_subquery()))
                .values(
                    status=MessageStatus.SENDING.value,
                    claim_token=token,
                    claim_expires_at=now + lease,
                    updated_at=now,
                )
                .returning(*_LOAD_COLUMNS)
            )
            # RETURNING gives no order: oldest first again (ids are creation order), so the gate
            # counts the daily limit for the oldest ad first.
            rows.extend(sorted((dict(r._mapping) for r in conn.execute(stmt)), key=lambda r: r["id"]))
    return (token if rows else None), rows


def claim_due(engine: Engine, now: datetime, limit: int, lease: timedelta) -> str | None:
    """Claim up to `limit` due rows; returns the claim token (None: nothing due)."""
    return claim_due_rows(engine, now, limit, lease)[0]


def claim_expired(engine: Engine, now: datetime, limit: int, lease: timedelta) -> str | None:
    """Take over 'sending' rows whose lease expired (their worker died or the answer was unknown)."""
    token = uuid.uuid4().hex
    stale = (
        select(M.c.id)
        .where(M.c.status == MessageStatus.SENDING.value, M.c.claim_expires_at < now)
        .order_by(M.c.id)
        .limit(limit)
    )
    if is_postgres(engine):
        stale = stale.with_for_update(skip_locked=True)
    stmt = (
        update(M)
        .where(M.c.id.in_(stale.scalar_subquery()))
        .values(claim_token=token, claim_expires_at=now + lease)
    )
    with engine.begin() as conn:
        claimed = conn.execute(stmt).rowcount
    return token if claimed else None


def load(engine: Engine, token: str) -> list[dict[str, Any]]:
    """The claimed rows, only the columns sending needs (a batch is thousands of rows)."""
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(select(*_LOAD_COLUMNS).where(M.c.claim_token == token))
        ]


def _bind(engine: Engine, column: Any) -> Any:
    processor = column.type._cached_bind_processor(engine.dialect)
    return processor or (lambda value: value)


def write(engine: Engine, token: str, rows: list[dict[str, Any]]) -> int:
    """Write the rows back in one executemany, only where this worker still holds the claim.

    Plain driver SQL: at thousands of rows a batch, SQLAlchemy's per-row parameter building was the
    sender's largest cost. send_after / sent_at are changed only when a row carries them."""
    if not rows:
        return 0
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"UPDATE message SET status={mark}, reason={mark}, text={mark}, to_phone={mark}, attempts={mark}, "
        f"provider={mark}, provider_message_id={mark}, provider_group_id={mark}, "
        f"send_after=COALESCE({mark}, send_after), sent_at=COALESCE({mark}, sent_at), "
        f"claim_token={mark}, claim_expires_at={mark}, updated_at={mark} "
        f"WHERE id={mark} AND claim_token={mark}"
    )
    when = _bind(engine, M.c.updated_at)
    params = []
    for r in rows:
        send_after, sent_at, expires = r.get("send_after"), r.get("sent_at"), r.get("claim_expires_at")
        params.append(
            (
                r["status"],
                r.get("reason"),
                r.get("text") or "",
                r.get("to_phone"),
                r["attempts"],
                r.get("provider"),
                r.get("provider_message_id"),
                r.get("provider_group_id"),
                None if send_after is None else when(send_after),
                None if sent_at is None else when(sent_at),
                r.get("claim_token"),
                None if expires is None else when(expires),
                when(r["updated_at"]),
                r["id"],
                token,
            )
        )
    released = [
        r["id"] for r in rows if r.get("kind") == MessageKind.ADVERTISING and r["status"] not in KEEPS_AD_SLOT
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, params)
        if released:
            _release_ad_slots(conn, released)
    return len(rows)


def _release_ad_slots(conn: Any, message_ids: list[int]) -> None:
    """Give back the daily-limit slots of ads that did not go out (requeued, held, failed, skipped).
    Checked against the row as written: a row another worker owns again keeps its slot."""
    not_out = select(M.c.id).where(M.c.id.in_(message_ids), M.c.status.not_in(KEEPS_AD_SLOT))
    conn.execute(delete(S).where(S.c.message_id.in_(message_ids), S.c.message_id.in_(not_out)))


def write_keep_claim(engine: Engine, token: str, rows: list[dict[str, Any]]) -> None:
    stmt = (
        update(M)
        .where(M.c.id == bindparam("_id"), M.c.claim_token == bindparam("_token"))
        .values(
            claim_expires_at=bindparam("v_exp"),
            reason=bindparam("v_reason"),
            attempts=bindparam("v_attempts"),
            text=bindparam("v_text"),
            to_phone=bindparam("v_phone"),
            updated_at=bindparam("v_now"),
        )
    )
    with engine.begin() as conn:
        conn.execute(
            stmt,
            [
                {
                    "_id": r["id"],
                    "_token": token,
                    "v_exp": r["claim_expires_at"],
                    "v_reason": r["reason"],
                    "v_attempts": r["attempts"],
                    "v_text": r["text"],
                    "v_phone": r["to_phone"],
                    "v_now": r["updated_at"],
                }
                for r in rows
            ],
        )
