"""Queueing a campaign's messages: set-based INSERT .. SELECT of recipients and outbox messages
(compliance in the SELECT, ON CONFLICT DO NOTHING on the recipient and the outbox key), so a
start is sent once whoever calls it; the sender (core/messaging) delivers them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, String, and_, bindparam, case, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session

from core.campaigns.content import _Renderer
from core.campaigns.tables import CS, C, M, R
from core.messaging.outbox import enqueue_select
from core.messaging.sender import CATEGORY_HINT
from core.models import (
    Campaign,
    CampaignRecipient,
    Customer,
    CustomerSummary,
    MessageKind,
    MessageStatus,
    RecipientGroup,
)

NIGHT_HOLD_REASON = "야간 광고 금지 (21:00~08:00): 08:00까지 보류"


Progress = Callable[[int, int], None]


QUEUE_CHUNK = 20_000  # recipients per INSERT .. SELECT: a progress step, and a bounded id list


def _among(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids` as one bound value (a PostgreSQL array, a SQLite JSON array), not one
    placeholder per id: 20,000 ids stay a short statement that plans as index probes."""
    if session.get_bind().dialect.name == "postgresql":
        # IN (SELECT unnest(..)): a hashed semi-join; `= ANY(array)` as a filter is linear per row.
        array = bindparam(None, list(ids), type_=postgresql.ARRAY(BigInteger))
        return column.in_(select(func.unnest(array)))
    values = func.json_each(json.dumps(list(ids))).table_valued("value")
    return column.in_(select(values.c.value))


def _sql_values(session: Session, renderer: _Renderer, variant: str) -> dict[str, ColumnElement[Any]]:
    """Each #{variable} as SQL over customer (C) and customer_summary (CS); NULL when it has none."""
    if session.get_bind().dialect.name == "postgresql":
        krw = func.to_char(CS.paid_total, "FM999,999,999,999,990") + "원"
    else:
        krw = func.printf("%,d", CS.paid_total) + "원"
    return {
        "이름": func.nullif(C.name, ""),
        "최근구매상품": func.nullif(CS.last_product_name, ""),
        "구매횟수": func.cast(CS.paid_orders, String),
        "누적구매액": case((CS.customer_id.is_(None), None), else_=krw),
        "링크": literal(renderer.link_base) + C.public_id + literal(f"&v={variant}"),
    }


def _queue(
    session: Session,
    campaign: Campaign,
    assignments: list[tuple[tuple, str, str | None]],
    now: datetime,
    progress: Progress | None,
) -> dict[str, int]:
    """Record recipients and queue their messages set-based, in the caller's transaction.

    Per chunk and variant: one INSERT .. SELECT of recipients (with the reason when a #{variable}
    has no value for them: they are skipped), and one INSERT .. SELECT of messages
    through the outbox (core.messaging.outbox.enqueue_select) with the compliance applied in the
    set: "(광고)" + shop, contact and opt-out line around the body, held to 08:00 at night for those
    without night consent, the purchase-exception category for the sender's own check. Both
    inserts skip rows already there (unique campaign+customer, and idempotency key
    campaign:{c}:{customer}), so nothing is queued twice whoever runs it again.
    """
    renderer = _Renderer(campaign, now)
    counts = {"recipients": 0, "queued": 0, "skipped": 0, "held": 0, "holdout": 0}
    total = len(assignments)
    category = campaign.options.get("advertised_category")
    variables = {CATEGORY_HINT: category} if category else {}
    night = renderer.held_until > now
    holds = and_(literal(night), C.night_ad_consent_at.is_(None))
    if progress:
        progress(0, total)
    for start in range(0, total, QUEUE_CHUNK):
        by_group: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for member, group, variant_key in assignments[start : start + QUEUE_CHUNK]:
            by_group[(group, variant_key)].append(member[0])
        for (group, variant_key), ids in by_group.items():
            values = _sql_values(session, renderer, variant_key)
            skipped = None
            if group != RecipientGroup.HOLDOUT:
                skipped = _missing_reason(values, renderer.variables[variant_key])
            inserted = _insert_recipients(
                session, campaign.id, group, variant_key, ids, now, skipped, renderer.uses_summary
            )
            counts["recipients"] += inserted
            if group == RecipientGroup.HOLDOUT:
                counts["holdout"] += len(ids)
                continue
            # The messages come from the same customers and the same skip expression as the
            # recipients just written (not a join to them: their fresh rows have no statistics yet).
            members = [_among(session, C.id, ids)]
            if skipped is not None:
                members.append(skipped.is_(None))
            body: ColumnElement[str] = literal(renderer.bodies[variant_key])
            for name in renderer.variables[variant_key]:
                body = func.replace(body, "#{" + name + "}", values[name])
            prefix, suffix = renderer.frames[variant_key]
            rows = (
                select(
                    C.id,
                    C.mobile,  # the canonical mobile number: never a landline or raw text
                    literal(MessageKind.ADVERTISING.value),
                    literal("campaign"),
                    literal(prefix) + body + literal(suffix),
                    literal(variables, type_=M.variables.type),
                    literal(f"campaign:{campaign.id}:") + func.cast(C.id, String),
                    case(
                        (holds, literal(MessageStatus.HELD.value)), else_=literal(MessageStatus.QUEUED.value)
                    ),
                    case((holds, literal(NIGHT_HOLD_REASON)), else_=None),
                    literal(0),
                    case(
                        (holds, literal(renderer.held_until, type_=M.send_after.type)),
                        else_=literal(now, type_=M.send_after.type),
                    ),
                    literal(campaign.id),
                    literal(variant_key),
                    literal(now, type_=M.created_at.type),
                    literal(now, type_=M.updated_at.type),
                )
                .select_from(_customers(renderer.uses_summary))
                .where(*members)
            )
            queued = enqueue_select(session, QUEUED_COLUMNS, rows)
            counts["queued"] += queued
            counts["skipped"] += inserted - queued  # new recipients without a new message
            if night and queued:
                counts["held"] += session.execute(
                    select(func.count())
                    .select_from(_customers(renderer.uses_summary))
                    .where(*members, C.night_ad_consent_at.is_(None))
                ).scalar_one()
        if progress:
            progress(min(start + QUEUE_CHUNK, total), total)
    return counts


def _customers(with_summary: bool) -> Any:
    """customer, joined to its summary only when a #{variable} of the bodies needs it."""
    if not with_summary:
        return Customer.__table__
    return Customer.__table__.outerjoin(CustomerSummary.__table__, CS.customer_id == C.id)


QUEUED_COLUMNS = [
    "customer_id",
    "to_phone",
    "kind",
    "template_key",
    "text",
    "variables",
    "idempotency_key",
    "status",
    "reason",
    "attempts",
    "send_after",
    "campaign_id",
    "campaign_variant",
    "created_at",
    "updated_at",
]


def _missing_reason(values: dict[str, ColumnElement[Any]], names: Sequence[str]) -> ColumnElement[Any] | None:
    """SQL for the renderer's skip reason: "값 없는 변수: #{a}, #{b}" for the variables this
    person has no value for, NULL when none is missing (built without concat_ws: SQLite has none)."""
    listed: ColumnElement[Any] | None = None
    for name in names:
        if name == "링크":
            continue  # built from the customer's public id: never missing
        piece = literal("#{" + name + "}")
        joined = piece if listed is None else func.coalesce(listed + ", ", "") + piece
        listed = case((values[name].is_(None), joined), else_=listed)
    return None if listed is None else literal("값 없는 변수: ") + listed


def _insert_recipients(
    session: Session,
    campaign_id: int,
    group: str,
    variant: str | None,
    ids: Sequence[int],
    now: datetime,
    skipped: ColumnElement[Any] | None,
    with_summary: bool,
) -> int:
    """INSERT .. SELECT of one group's recipients, each with the reason it gets no message (or
    NULL); ones already recorded are left as they are."""
    table = CampaignRecipient.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite_dialect
    rows = (
        select(
            literal(campaign_id),
            C.id,
            literal(group),
            literal(variant, type_=String),
            skipped if skipped is not None else literal(None, type_=String),
            literal(now, type_=R.created_at.type),
        )
        .select_from(_customers(with_summary))
        .where(_among(session, C.id, ids))
    )
    statement = (
        dialect.insert(table)
        .from_select(["campaign_id", "customer_id", "group", "variant", "skipped_reason", "created_at"], rows)
        .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
        .execution_options(preserve_rowcount=True)
    )
    return session.execute(statement).rowcount
