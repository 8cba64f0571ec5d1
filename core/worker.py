"""The worker process: everything that happens on time.

    python -m core.worker                      # daemon: APScheduler ticks until Ctrl-C / SIGTERM
    python -m core.worker --once [--now ISO]   # every job once as of that instant, JSON summary

APScheduler only fires short periodic ticks; the work itself is rows in the database that a tick
claims, does and marks done (see core/jobs.py). `--once --now` is the same code path as the
daemon with the clock moved, which is how tests and demos travel through a month in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete, func
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from core import clock
from core.config import ConfigError, get_settings
from core.db import DatabaseError, make_engine, session_scope, upgrade
from core.jobs import JOBS, JobSpec
from core.messaging import automations
from core.models import JobRun, WorkerHeartbeat

log = logging.getLogger("channeldesk.worker")

HEARTBEAT_SECONDS = 5
STOP_CHECK_SECONDS = 1  # a SIGTERM is acted on within this (serve's _stop says why not at once)
WORKER_STALE_AFTER_SECONDS = 30  # six missed beats: the 설정 page shows the worker as stopped
JOB_RUN_RETENTION = timedelta(days=7)
JobFunction = Callable[[Engine, datetime], dict[str, int]]


class WorkerAlreadyRunning(RuntimeError):
    pass


def resolve(spec: JobSpec) -> JobFunction:
    module_name, _, function_name = spec.target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_job(engine: Engine, worker_id: str, spec: JobSpec, now: datetime) -> dict[str, Any]:
    """Run one job as of `now`, recording its start, end, outcome and counts in job_run."""
    with session_scope(engine) as session:
        run = JobRun(job_id=spec.id, worker_id=worker_id, started_at=clock.now())
        session.add(run)
        session.flush()
        run_id = run.id
    outcome: dict[str, Any]
    try:
        counts = resolve(spec)(engine, now) or {}
        outcome = {"outcome": "ok", "counts": counts}
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
        log.exception("job %s failed", spec.id)
        outcome = {"outcome": "error", "error": f"{exc.__class__.__name__}: {exc}"[:2000]}
        traceback.print_exc(file=sys.stderr)
    with session_scope(engine) as session:
        run = session.get(JobRun, run_id)
        if run is not None:
            run.finished_at = clock.now()
            run.outcome = outcome["outcome"]
            run.counts = outcome.get("counts", {})
            run.error = outcome.get("error")
    return outcome


def beat(engine: Engine, worker_id: str, started_at: datetime) -> None:
    """Record that this worker is alive (shown on 설정) and prune old job runs."""
    now = clock.now()
    with session_scope(engine) as session:
        row = session.get(WorkerHeartbeat, worker_id) or WorkerHeartbeat(
            worker_id=worker_id, hostname=socket.gethostname(), pid=os.getpid(), started_at=started_at
        )
        row.last_beat_at = now
        session.add(row)
        session.exec(delete(JobRun).where(JobRun.started_at < now - JOB_RUN_RETENTION))  # type: ignore[call-overload]


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


def go_live(engine: Engine, now: datetime) -> None:
    """The automations go live when a worker first starts, before any job runs: what was paid before
    (a seeded or imported history) is history, and what the first tick's charges pay is not."""
    with session_scope(engine) as session:
        automations.live_state(session, now)


def run_once(engine: Engine, now: datetime, worker_id: str | None = None) -> dict[str, Any]:
    """Every job once, in registry order, with the clock frozen at `now`."""
    worker_id = worker_id or f"once-{uuid.uuid4().hex[:8]}"
    with clock.frozen(now):
        beat(engine, worker_id, now)
        go_live(engine, now)
        jobs = {spec.id: run_job(engine, worker_id, spec, now) for spec in JOBS}
    return {"now": now.isoformat(), "now_kst": clock.format_kst(now, with_seconds=True), "jobs": jobs}


def acquire_sqlite_lock(database_url: str) -> TextIO | None:
    """On SQLite one worker is the rule: a second one is refused with a clear message."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    lock_path = Path(f"{url.database}.worker.lock")
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise WorkerAlreadyRunning(
            f"이 SQLite 데이터베이스에는 이미 워커가 실행 중입니다 (pid {holder}). SQLite에서는 워커 하나만 "
            "실행하세요; 여러 워커는 PostgreSQL(DATABASE_URL)에서 사용할 수 있습니다. "
            "(a worker is already running on this SQLite database)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def serve(engine: Engine) -> None:
    worker_id = f"{socket.gethostname()}-{os.getpid()}"
    started_at = clock.now()
    scheduler = BlockingScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        # Only a flag: the handler runs in the main thread between two bytecodes of whatever it was
        # doing, e.g. inside the executor's submit(), which holds the lock shutdown() takes (a
        # SIGTERM at a busy tick hung the worker until SIGKILL, mid-job). The stop_check job below
        # does the shutdown from an executor thread within a second; a stop during go_live (before
        # the scheduler runs) is seen right after it.
        stopping.set()

    def _stop_if_asked() -> None:
        if stopping.is_set() and scheduler.running:
            with contextlib.suppress(SchedulerNotRunningError):  # two signals, two checks: one stop
                scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scheduler.add_job(beat, IntervalTrigger(seconds=HEARTBEAT_SECONDS), id="heartbeat",
                      args=[engine, worker_id, started_at], next_run_time=datetime.now(clock.UTC))
    for spec in JOBS:
        resolve(spec)  # fail at start, not at the first tick, if a job is misnamed
        scheduler.add_job(
            lambda s=spec: run_job(engine, worker_id, s, clock.now()),
            IntervalTrigger(seconds=spec.every_seconds),
            id=spec.id,
            name=spec.id,
            next_run_time=datetime.now(clock.UTC),
        )
    go_live(engine, started_at)
    if stopping.is_set():
        log.info("worker %s stopped before its first tick", worker_id)
        return
    # A stop arriving between the check above and start(), or any time after: looked at each second.
    scheduler.add_job(_stop_if_asked, IntervalTrigger(seconds=STOP_CHECK_SECONDS), id="stop_check",
                      next_run_time=datetime.now(clock.UTC))
    log.info("worker %s started with %d jobs", worker_id, len(JOBS))
    scheduler.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker", description="ChannelDesk worker")
    parser.add_argument("--once", action="store_true", help="run every due job once and exit (JSON summary)")
    parser.add_argument("--now", help="with --once: the instant to run as, ISO-8601 (naive = KST)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Each run is recorded in job_run (shown on 설정); one log line per 1-second tick is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.now is not None and not args.once:
        parser.error("--now goes with --once")
    try:
        # `--now ""` (an empty shell variable) is an error, not "run as of the real now".
        now = clock.parse_instant(args.now) if args.now is not None else clock.now()
    except ValueError:
        print(f"--now {args.now!r} is not an ISO-8601 instant (e.g. 2026-12-01T09:00+09:00)", file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        engine = make_engine(settings.database_url)
        lock = acquire_sqlite_lock(settings.database_url)
        upgrade(engine)
    except (ConfigError, DatabaseError, WorkerAlreadyRunning) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        if args.once:
            summary = run_once(engine, now)
            print(json.dumps(summary, ensure_ascii=False, indent=2))
            return 1 if any(job["outcome"] != "ok" for job in summary["jobs"].values()) else 0
        serve(engine)
        return 0
    finally:
        if lock is not None:
            lock.close()


if __name__ == "__main__":
    sys.exit(main())
