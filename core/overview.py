"""Read-side queries shared by the screens and the worker-health panel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock
from core.models import JobRun, StaffUser, WorkerHeartbeat

WORKER_STALE_AFTER_SECONDS = 30


def worker_health(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Is a worker alive, and how did each job's last run go (for 설정 → 워커 상태)."""
    now = now or clock.now()
    beat = session.exec(select(WorkerHeartbeat).order_by(col(WorkerHeartbeat.last_beat_at).desc())).first()
    seconds = None if beat is None else max(0, int((now - beat.last_beat_at).total_seconds()))
    latest = (
        select(JobRun.job_id, func.max(JobRun.id).label("last_id")).group_by(JobRun.job_id).subquery()
    )
    runs = session.exec(select(JobRun).join(latest, col(JobRun.id) == latest.c.last_id)).all()
    return {
        "alive": seconds is not None and seconds <= WORKER_STALE_AFTER_SECONDS,
        "seconds_since_beat": seconds,
        "worker_id": None if beat is None else beat.worker_id,
        "jobs": [
            {
                "job_id": run.job_id,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "outcome": run.outcome,
                "counts": run.counts,
                "error": run.error,
            }
            for run in sorted(runs, key=lambda r: r.job_id)
        ],
    }


def staff_users(session: Session) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.id))).all())

