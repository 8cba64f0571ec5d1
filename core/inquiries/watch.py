"""The SLA watch: notify staff (and, when the owner asked for it, message the CS lead) once when an
open inquiry crosses at-risk or breaches its nearest target. Set-based; notifications carry a
unique dedupe key (inserted with ON CONFLICT DO NOTHING), so two workers never notify twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, not_, null, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import clock
from core.inquiries import policy
from core.messaging.outbox import enqueue_many
from core.models import Inquiry, InquiryStatus, InquiryType, StaffNotification
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.models.types import UtcDateTime

TARGET_LABELS = {"first_response": "첫 응답", "resolution": "해결"}
THRESHOLD_VERBS = {"at_risk": "기한 임박", "breached": "기한 초과"}
SLA_ALERT_TEMPLATE = "sla_alert"


def watch(session: Session, now: datetime) -> dict[str, int]:
    """Notify when an open inquiry crosses at-risk or breaches its nearest target, once each.

    Set-based, one transaction: one INSERT .. SELECT of the notifications (ON CONFLICT DO NOTHING on
    their dedupe key, so a threshold is notified exactly once even when two workers tick at once),
    one UPDATE that moves each due row's `sla_next_alert_at` on, and, when the owner configured it
    on 설정 (policy.AlertMessage), one bulk enqueue of a message per notification actually
    inserted. Looks only at rows whose cached `sla_next_alert_at` is due (ix_inquiry_status_alert).
    Outside business hours (for business-calendar policies) nothing is sent: the row stays due
    and is notified at the first tick after opening.
    """
    counts = {"due": 0, "at_risk": 0, "breached": 0, "deferred": 0, "messages": 0}
    config = policy.load(session)
    open_types, closed_types = [], []
    for inquiry_type in [t.value for t in InquiryType]:
        calendar = config.calendar_for(inquiry_type)
        (open_types if calendar.always_open or calendar.is_open_at(now) else closed_types).append(
            inquiry_type
        )
    # An inquiry whose type is not a known one follows the "other" policy (SlaConfig.policy).
    other_open = InquiryType.OTHER.value in open_types
    table = Inquiry.__table__  # type: ignore[attr-defined]
    known = [t.value for t in InquiryType]
    type_is_open = or_(
        table.c.type.in_(open_types or [""]),
        and_(table.c.type.not_in(known), literal(other_open)),
    )
    due = and_(
        table.c.status == InquiryStatus.OPEN.value,
        table.c.sla_next_alert_at <= _bind_utc(now),
    )
    if closed_types or not other_open:
        counts["deferred"] = int(
            session.execute(core_select(func.count()).select_from(table).where(due, not_(type_is_open))).scalar_one()
        )
    inserted = session.execute(_notification_insert(session, table, and_(due, type_is_open), now)).all()
    for row in inserted:
        counts[row.kind.removeprefix("sla_")] += 1
    counts["due"] = counts["deferred"] + _advance_alerts(session, table, and_(due, type_is_open), now)
    alert = policy.alert_message(session)
    wanted = [row for row in inserted if alert.wants(row.kind.removeprefix("sla_"))]
    if wanted:
        counts["messages"] = enqueue_many(
            session,
            [
                {
                    "customer_id": None,
                    "to_phone": alert.phone,
                    "template_key": SLA_ALERT_TEMPLATE,
                    "text": row.text,
                    "variables": {"내용": row.text},
                    "idempotency_key": f"sla_alert:{row.dedupe_key}",
                }
                for row in wanted
            ],
            now=now,
        )
    return counts


def _bind_utc(instant: datetime) -> Any:
    """`now` as the UtcDateTime columns store it, for comparisons in Core expressions."""
    return literal(clock.as_utc(instant), type_=UtcDateTime())


def _threshold(table: Any, now: Any) -> Any:
    """'breached' once past the deadline (an answer at the deadline is on time), 'at_risk' from the
    at-risk instant, else NULL (the row was re-timed under us: look again at its at-risk instant)."""
    return case(
        (table.c.sla_due_at < now, literal("breached")),
        (table.c.sla_at_risk_at <= now, literal("at_risk")),
        else_=null(),
    )


def _kst_text(session: Session, column: Any) -> Any:
    """SQL for clock.format_kst(column): 'YYYY-MM-DD HH:MM' in KST, '-' when NULL."""
    if session.get_bind().dialect.name == "postgresql":
        formatted = func.to_char(func.timezone("Asia/Seoul", column), "YYYY-MM-DD HH24:MI")
    else:  # SQLite keeps naive UTC text
        formatted = func.strftime("%Y-%m-%d %H:%M", column, "+9 hours")
    return func.coalesce(formatted, literal("-"))


def _notification_insert(session: Session, table: Any, where: Any, now: datetime) -> Any:
    """INSERT .. SELECT .. ON CONFLICT (dedupe_key) DO NOTHING RETURNING the rows really inserted."""
    now_sql = _bind_utc(now)
    threshold = _threshold(table, now_sql)
    target = case((table.c.first_response_at.is_(None), literal("first_response")), else_=literal("resolution"))
    label = case(
        *((table.c.type == key.value, literal(text)) for key, text in INQUIRY_TYPE_LABELS.items()),
        else_=table.c.type,
    )
    target_label = case(*((target == key, literal(text)) for key, text in TARGET_LABELS.items()))
    verb = case(*((threshold == key, literal(text)) for key, text in THRESHOLD_VERBS.items()))
    message = (
        literal("[") + label + literal("] ") + cast(table.c.id, String) + literal("번 ") + target_label
        + literal(" ") + verb + literal(" (기한 ") + _kst_text(session, table.c.sla_due_at)
        + literal(") · ") + table.c.subject
    )
    rows = (
        core_select(
            table.c.assignee_id,
            literal("sla_") + threshold,
            func.substr(message, 1, 500),
            table.c.id,
            literal("sla:") + cast(table.c.id, String) + literal(":") + target + literal(":") + threshold,
            now_sql,
        )
        .where(where, threshold.is_not(None))
        .order_by(table.c.id)
    )
    notifications = StaffNotification.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return (
        insert(notifications)
        .from_select(["staff_id", "kind", "text", "inquiry_id", "dedupe_key", "created_at"], rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(notifications.c.kind, notifications.c.text, notifications.c.dedupe_key)
    )


def _advance_alerts(session: Session, table: Any, where: Any, now: datetime) -> int:
    """Move each due row's next alert on: breached -> none, at risk -> the deadline, else at risk."""
    now_sql = _bind_utc(now)
    following = case(
        (table.c.sla_due_at < now_sql, null()),
        (table.c.sla_at_risk_at <= now_sql, table.c.sla_due_at),
        else_=table.c.sla_at_risk_at,
    )
    result = session.execute(
        update(table).where(where).values(sla_next_alert_at=following).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
