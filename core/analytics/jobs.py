"""The worker's entry point of analytics (JobSpec `analytics_rollup`): repair, then roll forward;
and `catch_up`, the same step for the bulk writers (order import, demo seed) right after their commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

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
        "chunks": counts["chunks"],
        "days": (kst_day(target) - kst_day(cov.until)).days,
    }


def analytics_rollup_job(engine: Engine, now: datetime) -> dict[str, int]:
    """The JobSpec target: idempotent (a second run the same day finds nothing to do)."""
    try:
        return refresh_rollups(engine, now)
    except RuntimeError:
        return {"rebuilt": 0, "days": 0, "skipped": 1}


@dataclass(frozen=True)
class CatchUp:
    """What `catch_up` did: refresh_rollups' counts, or why it could not run now."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: str | None = None  # the error's text; the rollups stay as they were (marks kept)

    @property
    def orders(self) -> int:
        """Sales rolled up by this step (a rebuild: all of them; a roll-forward: the new ones)."""
        return self.counts.get("orders", 0)

    @property
    def chunks(self) -> int:
        return self.counts.get("chunks", 0)


def catch_up(engine: Engine, now: datetime) -> CatchUp:
    """Bring the rollups up to date the way the worker does (`refresh_rollups`), for a bulk writer
    whose own transaction is already committed: after a big import into a store that was never
    rolled up the 매출 page would otherwise read the whole history live (8-10x DuckDB, bench/README.md)
    until the worker's next run. A failure (the store busy, another worker moving the watermark:
    RuntimeError or SQLAlchemyError) changes nothing that was committed; each chunk is its own
    transaction, and the worker's job finishes the rest."""
    try:
        return CatchUp(refresh_rollups(engine, now))
    except (RuntimeError, SQLAlchemyError) as exc:
        return CatchUp(failed=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
