"""The CS desk's worker jobs (JobSpec targets): the SLA watch, the double-charge sentinel and the
inbound log's pruning.

Both are `def job(engine, now) -> dict[str, int]`, idempotent across ticks, restarts and workers:
the watch's notifications carry a unique dedupe key (watch.py), the sentinel's inquiry has a
dedupe key and its refund an idempotency key (sentinel.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from core import clock
from core.db import session_scope
from core.inquiries import inbound_log, sentinel, service, watch


def sla_watch(engine: Engine, now: datetime) -> dict[str, int]:
    """One tick of the SLA watch, in one transaction (see watch.watch)."""
    with session_scope(engine) as session:
        return watch.watch(session, now)


def inbound_log_prune(engine: Engine, now: datetime, *, max_batches: int = 20) -> dict[str, int]:
    """Drop inbound log rows past their retention, a batch per transaction (inbound_log.prune)."""
    deleted = 0
    for _ in range(max_batches):
        with session_scope(engine) as session:
            count = inbound_log.prune(session, now)
        deleted += count
        if count < inbound_log.PRUNE_BATCH:
            break
    return {"deleted": deleted}


def double_charge_sentinel(
    engine: Engine,
    now: datetime,
    refund_fn: service.RefundFn | None = None,
    window: timedelta | None = None,
) -> dict[str, int]:
    """Open an 이중 결제 inquiry with the evidence, refund the later payment once, tell, resolve.

    Each double charge is handled in two transactions keyed by the later payment: (1) the inquiry
    (dedupe_key double_charge:{payment}); (2) refund (idempotency key double_charge_refund:{payment}),
    reply to the customer (outbox) and resolve. A crash between them is finished by the next tick.
    """
    counts = {"found": 0, "opened": 0, "refunded": 0, "resolved": 0, "failed": 0}
    with session_scope(engine) as session:
        pairs = sentinel.unresolved(session, now, window or sentinel.window_of(session))
    for pair in pairs:
        key = sentinel.dedupe_key(pair)
        counts["found"] += 1
        try:
            with clock.frozen(now), session_scope(engine) as session:
                counts["opened"] += int(sentinel.open_inquiry(session, pair, key))
            with clock.frozen(now), session_scope(engine) as session:
                counts["refunded"] += int(sentinel.refund_and_resolve(session, pair, key, refund_fn))
                counts["resolved"] += 1
        except Exception:  # noqa: BLE001 - one bad pair must not stop the others; retried next tick
            counts["failed"] += 1
    return counts
