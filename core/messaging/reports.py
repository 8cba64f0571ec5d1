"""The `delivery_reports` worker job: ask the provider what became of messages it accepted.

A 'sent' row only means Solapi took the message (HTTP 200, statusCode 2000). The final report
(4000 delivered, a Kakao/carrier failure code, or delivered as SMS/LMS after the AlimTalk failed)
comes later and is read per send group from Solapi's message list. The job moves 'sent' rows to
'delivered' or 'failed' with the provider's reason.

Idempotent and safe with several workers: a group is taken for a check by stamping
`report_checked_at` (only one worker's stamp matches), and a result is written only to a row that
is still 'sent', so a repeated report changes nothing. Messages without a final report after
`report_window_hours` are no longer asked about and say so in their reason.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, or_, select, update
from sqlmodel import Session

from core.messaging.providers import Outcome, PermanentProviderError, Provider, ProviderError
from core.messaging.sender import messaging_settings, worker_provider
from core.models import Message, MessageStatus

M = Message.__table__
REPORT_DEFAULTS: dict[str, Any] = {
    "report_interval_seconds": 60,  # ask about one group at most this often
    "report_window_hours": 72,  # Solapi keeps reporting for a few days; after that, stop asking
    "report_groups_per_tick": 50,  # bounds one tick's requests (a group is up to 10,000 messages)
}
NO_REPORT_REASON = "전달 결과를 받지 못함 (발송 후 {hours}시간 경과)"


def report_settings(session: Session) -> dict[str, Any]:
    return {
        **REPORT_DEFAULTS,
        **{k: v for k, v in messaging_settings(session).items() if k in REPORT_DEFAULTS},
    }


def due_groups(engine: Engine, now: datetime, settings: dict[str, Any]) -> list[str]:
    """Send groups with 'sent' rows that were not checked within the interval, least recently first."""
    window_start = now - timedelta(hours=float(settings["report_window_hours"]))
    checked_before = now - timedelta(seconds=float(settings["report_interval_seconds"]))
    last_check = func.min(func.coalesce(M.c.report_checked_at, M.c.sent_at))
    stmt = (
        select(M.c.provider_group_id)
        .where(
            M.c.status == MessageStatus.SENT.value,
            M.c.provider_group_id.is_not(None),
            M.c.sent_at > window_start,
            or_(M.c.report_checked_at.is_(None), M.c.report_checked_at <= checked_before),
        )
        .group_by(M.c.provider_group_id)
        .order_by(last_check)
        .limit(int(settings["report_groups_per_tick"]))
    )
    with engine.connect() as conn:
        return [g for (g,) in conn.execute(stmt)]


def take_group(engine: Engine, group_id: str, now: datetime, settings: dict[str, Any]) -> bool:
    """Stamp the group's 'sent' rows as checked now; False when another worker just did."""
    checked_before = now - timedelta(seconds=float(settings["report_interval_seconds"]))
    stmt = (
        update(M)
        .where(
            M.c.provider_group_id == group_id,
            M.c.status == MessageStatus.SENT.value,
            or_(M.c.report_checked_at.is_(None), M.c.report_checked_at <= checked_before),
        )
        .values(report_checked_at=now)
    )
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def apply_reports(engine: Engine, group_id: str, reports: dict[str, Any], now: datetime) -> Counter[str]:
    """Write the final results of one group to its rows that are still 'sent'."""
    counts: Counter[str] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(
            select(M.c.id, M.c.idempotency_key).where(
                M.c.provider_group_id == group_id, M.c.status == MessageStatus.SENT.value
            )
        ).all()
    changes = []
    for row_id, key in rows:
        report = reports.get(key)
        if report is None or report.outcome == Outcome.ACCEPTED:
            counts["report_pending"] += 1
            continue
        status = MessageStatus.DELIVERED if report.outcome == Outcome.DELIVERED else MessageStatus.FAILED
        changes.append(
            {
                "_id": row_id,
                "v_status": status.value,
                "v_reason": report.reason,
                "v_message_id": report.provider_message_id,
                "v_now": now,
            }
        )
    if changes:
        stmt = (
            update(M)
            .where(M.c.id == bindparam("_id"), M.c.status == MessageStatus.SENT.value)
            .values(
                status=bindparam("v_status"),
                reason=bindparam("v_reason"),
                provider_message_id=func.coalesce(M.c.provider_message_id, bindparam("v_message_id")),
                updated_at=bindparam("v_now"),
            )
        )
        with engine.begin() as conn:
            conn.execute(stmt, changes)
        counts.update(f"report_{c['v_status']}" for c in changes)
    return counts


def mark_unreported(engine: Engine, now: datetime, settings: dict[str, Any]) -> int:
    """Say why a 'sent' row past the report window will stay 'sent' (once per row)."""
    hours = int(settings["report_window_hours"])
    reason = NO_REPORT_REASON.format(hours=hours)
    window_start = now - timedelta(hours=hours)
    stmt = (
        update(M)
        .where(
            M.c.status == MessageStatus.SENT.value,
            M.c.provider_group_id.is_not(None),
            M.c.sent_at <= window_start,
            M.c.sent_at > window_start - timedelta(days=1),  # only the rows that just left the window
            or_(M.c.reason.is_(None), M.c.reason != reason),
        )
        .values(reason=reason, updated_at=now)
    )
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount


def fetch(engine: Engine, now: datetime, provider: Provider) -> dict[str, int]:
    """One pass: every due group once (bounded), results written; returns counts."""
    with Session(engine) as session:
        settings = report_settings(session)
    counts: Counter[str] = Counter()
    for group_id in due_groups(engine, now, settings):
        if not take_group(engine, group_id, now, settings):
            continue
        try:
            reports = provider.delivery_reports(group_id)
        except PermanentProviderError:
            counts["report_errors"] += 1
            break  # bad credentials: every other group would fail the same way
        except ProviderError:
            counts["report_errors"] += 1
            continue  # asked again after the interval
        counts["report_groups"] += 1
        counts.update(apply_reports(engine, group_id, reports, now))
    unreported = mark_unreported(engine, now, settings)
    if unreported:
        counts["report_given_up"] += unreported
    return dict(counts)


def fetch_delivery_reports(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job (core/jobs.py), with the sender's provider (one rate limit per process)."""
    return fetch(engine, now, worker_provider())
