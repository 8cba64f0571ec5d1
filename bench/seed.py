"""Benchmark: seed 1,000,000 orders into a fresh SQLite file; the goal is at most 60 s.

    .venv/bin/python -m bench.seed [--orders 1000000] [--customers 100000] [--path /tmp/x.db] [--keep]

Prints each phase as it starts (wall and CPU seconds since the start: the split of the time), then
the row counts, rows per second (all tables) and orders per second, wall time and CPU time (CPU time
is what this process used: on a busy shared machine wall time also counts waiting).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from core import clock
from core.db import make_engine, upgrade
from core.demo import generator
from core.demo.seed import describe, seed_demo

GOAL_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--path", type=Path, default=None, help="SQLite file (default: a temp file)")
    parser.add_argument("--keep", action="store_true", help="keep the database file afterwards")
    parser.add_argument(
        "--background-writer",
        action="store_true",
        help="store chunks from a second thread (see core.demo.writer)",
    )
    args = parser.parse_args(argv)
    generator.BACKGROUND_WRITER = args.background_writer

    folder = None
    if args.path is None:
        folder = tempfile.mkdtemp(prefix="channeldesk-bench-seed-")
        path = Path(folder) / "bench.db"
    else:
        path = args.path
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = clock.parse_instant("2026-11-23T12:00:00+09:00")

    started_wall, started_cpu = time.perf_counter(), time.process_time()

    def phase(message: str) -> None:
        wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
        print(f"{wall:7.1f} s wall {cpu:7.1f} s CPU  {message}", flush=True)

    counts = seed_demo(
        engine, customers=args.customers, orders=args.orders, seed=args.seed, now=now, progress=phase
    )
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    engine.dispose()

    rows = sum(value for key, value in counts.items() if key != "staff_users_created")
    size_mb = path.stat().st_size / 1e6
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(describe(counts))
    print(f"orders requested   {args.orders:,} (customers {args.customers:,})")
    print(f"rows written       {rows:,} in {wall:.1f} s wall, {cpu:.1f} s CPU (load average {load:.1f})")
    print(f"rows per second    {rows / wall:,.0f} (wall)   {rows / cpu:,.0f} (CPU)")
    print(f"orders per second  {counts['orders'] / wall:,.0f} (wall)")
    print(f"database size      {size_mb:,.0f} MB at {path}")
    verdict = "OK" if wall <= GOAL_SECONDS else "OVER"
    print(f"goal <= {GOAL_SECONDS:.0f} s: {verdict} ({wall:.1f} s)")
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if folder:
            os.rmdir(folder)
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
