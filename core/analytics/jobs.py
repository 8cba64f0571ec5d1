"""The worker's entry point of analytics (JobSpec `analytics_rollup`): repair, then roll forward.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from core.analytics.repair import repair_dirty
from core.analytics.rollup import ROLLUP_GRACE, _read_coverage, _roll_forward, rebuild_rollups
from core.analytics.rules import kst_day
from core.db import session_scope


def refresh_rollups(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: repair what backdated writes changed (`repair_dirty`), then add the sales and
    refunds since the last run to the rollups (up to now minus ROLLUP_GRACE, so today is rolled up
    too and the page's live tail stays a few minutes long), REBUILD_CHUNK_DAYS per transaction. Only a store
    that was never rolled up (or a clock moved back) is rebuilt from scratch (chunked as well)."""
    target = now - ROLLUP_GRACE
    with session_scope(engine) as session:
        cov = _read_coverage(session)
    if cov.until is None or cov.until > target:
        return {"rebuilt": 1, "repaired_days": 0, "repaired_customers": 0, **rebuild_rollups(engine, target)}
    repaired = repair_dirty(engine)
    counts = _roll_forward(engine, target)
    return {
        "rebuilt": 0,
        **repaired,
        "orders": counts["orders"],
        "days": (kst_day(target) - kst_day(cov.until)).days,
    }


def analytics_rollup_job(engine: Engine, now: datetime) -> dict[str, int]:
    """The JobSpec target: idempotent (a second run the same day finds nothing to do)."""
    try:
        return refresh_rollups(engine, now)
    except RuntimeError:
        return {"rebuilt": 0, "days": 0, "skipped": 1}
