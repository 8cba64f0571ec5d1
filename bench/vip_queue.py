"""Benchmark: what VIP adds to the 문의 queue on the 1M-order store (issue 20; the badge must not slow it).

    cp /work/stores/1m.db /tmp/h3_1m.db
    .venv/bin/python bench/vip_queue.py --store /tmp/h3_1m.db --runs 20
    # before (the code without VIP, on another copy of the 0004 store):
    git archive c26633e | tar -x -C /tmp/h3_before_code
    BENCH_CODE_ROOT=/tmp/h3_before_code .venv/bin/python bench/vip_queue.py --store /tmp/h3_1m_before.db

The store is migrated to the code's head first. With VIP code the shop's rule is set to the demo's
(top 2 %, at least 3 orders) so every lookup does its full work (the threshold: a count and an
ordered offset over customer_summary). Figures are CPU seconds (time.process_time) of one call,
median of --runs after one warm-up: the queue of 100 and of 500 rows (what each queue redraw reads),
and with VIP code the lookups on their own (one customer's badge, the rank cut-off kept and
recomputed, the VIP count the segment and 설정 read).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_CODE_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from core import clock  # noqa: E402
from core.db import make_engine, session_scope, upgrade  # noqa: E402
from core.inquiries import queue as inquiry_queue  # noqa: E402


def cpu(call, runs: int) -> float:  # type: ignore[no-untyped-def]
    call()  # warm-up: caches and pages
    samples = []
    for _ in range(runs):
        started = time.process_time()
        call()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    engine = make_engine(f"sqlite:///{args.store}")
    upgrade(engine)
    now = clock.now()
    try:
        from core.customers import vip
    except ImportError:
        vip = None  # type: ignore[assignment]
    if vip is not None:
        from core.accounts.actor import Actor
        from core.models import Role

        with session_scope(engine) as session:
            vip.save(session, Actor(None, "bench", Role.OWNER), {"top_percent": 2, "min_orders": 3})
    print(
        f"code: {ROOT}  vip: {'yes' if vip is not None else 'no'}  load: {Path('/proc/loadavg').read_text().split()[:3]}"
    )
    with session_scope(engine) as session:
        for limit in (100, 500):
            rows, total = inquiry_queue.queue(session, now, limit=limit)
            figure = cpu(lambda limit=limit: inquiry_queue.queue(session, now, limit=limit), args.runs)
            marked = sum(getattr(r, "vip", False) for r in rows)
            print(f"queue({limit}) of {total:,} open: {figure * 1000:.1f} ms CPU  (VIP rows shown: {marked})")
        if vip is not None:
            customer_id = rows[0].customer_id if rows else 1
            rule = vip.load(session)
            kept = cpu(lambda: vip.top_threshold(session, rule, now), args.runs)
            fresh = cpu(lambda: vip._top_threshold(session, rule, now), max(3, args.runs // 4))
            print(f"rank cut-off: kept {kept * 1000:.1f} ms CPU, recomputed {fresh * 1000:.1f} ms CPU")
            print(
                f"one badge: {cpu(lambda: vip.is_vip_customer(session, customer_id, now), args.runs) * 1000:.1f} ms CPU"
            )
            print(
                f"VIP count: {cpu(lambda: vip.count(session, now), max(3, args.runs // 4)) * 1000:.1f} ms CPU "
                f"({vip.count(session, now):,} VIP)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
