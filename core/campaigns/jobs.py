"""The worker's entry point (JobSpec `campaign_scheduler`): start due campaigns, send due winners.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlmodel import Session

from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR
from core.campaigns.queries import _get
from core.campaigns.service import _transition, send_winner, start
from core.campaigns.tables import M
from core.db import session_scope
from core.errors import Conflict, ValidationFailed
from core.models import Campaign, CampaignStatus, MessageStatus


def campaign_scheduler(engine: Engine, now: datetime) -> dict[str, int]:
    """Start due scheduled campaigns, send auto-chosen winners after the test window, close sent ones.

    Each campaign in its own transaction; the conditional status UPDATE makes a second worker's
    attempt a no-op (Conflict), so running this twice never queues twice.
    """
    counts = {"started": 0, "winners_sent": 0, "finished": 0, "failed": 0, "queued": 0}
    table = Campaign.__table__.c
    with session_scope(engine) as session:
        due = (
            session.execute(
                select(table.id).where(table.status == CampaignStatus.SCHEDULED, table.scheduled_at <= now)
            )
            .scalars()
            .all()
        )
        testing = session.execute(
            select(table.id, table.test_sent_at, table.options).where(table.status == CampaignStatus.TESTING)
        ).all()
    for campaign_id in due:
        counts = _run_one(
            engine, campaign_id, now, counts, "started", lambda s, c: start(s, SYSTEM_ACTOR, c, now=now)
        )
    for campaign_id, test_sent_at, options in testing:
        options = options or {}
        hours = int(options.get("test_window_hours", 24))
        if options.get("auto_winner") and test_sent_at and test_sent_at + timedelta(hours=hours) <= now:
            counts = _run_one(
                engine,
                campaign_id,
                now,
                counts,
                "winners_sent",
                lambda s, c: send_winner(s, SYSTEM_ACTOR, c, now=now),
            )
    pending = [MessageStatus.QUEUED.value, MessageStatus.HELD.value, MessageStatus.SENDING.value]
    with session_scope(engine) as session:
        result = session.execute(
            update(Campaign.__table__)
            .where(
                table.status == CampaignStatus.SENDING,
                ~select(M.id).where(M.campaign_id == table.id, M.status.in_(pending)).exists(),
            )
            .values(status=CampaignStatus.SENT, finished_at=now)
        )
        counts["finished"] = result.rowcount
    return counts


def _run_one(
    engine: Engine,
    campaign_id: int,
    now: datetime,
    counts: dict[str, int],
    name: str,
    action: Callable[[Session, int], dict[str, int]],
) -> dict[str, int]:
    try:
        with session_scope(engine) as session:
            queued = action(session, campaign_id)
        counts[name] += 1
        counts["queued"] += queued.get("queued", 0)
    except Conflict:
        pass  # another worker (or a person) got there first
    except ValidationFailed as exc:
        with session_scope(engine) as session:
            if _transition(
                session,
                campaign_id,
                [CampaignStatus.SCHEDULED, CampaignStatus.TESTING],
                CampaignStatus.CANCELED,
                finished_at=now,
            ):
                campaign = _get(session, campaign_id)
                campaign.options = {**campaign.options, "failure": str(exc)}
                session.add(campaign)
                audit.record(session, SYSTEM_ACTOR, "campaign.fail", "campaign", campaign_id, reason=str(exc))
        counts["failed"] += 1
    return counts
