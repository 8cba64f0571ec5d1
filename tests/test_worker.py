"""The worker: --once as the test clock, job-run records, heartbeat, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock, worker
from core.jobs import JobSpec
from core.models import JobRun, WorkerHeartbeat
from core.worker import worker_health

ROOT = Path(__file__).resolve().parent.parent
SEEN: list[datetime] = []


def job_that_counts(engine: Engine, now: datetime) -> dict[str, int]:
    SEEN.append(now)
    assert clock.now() == now, "core code inside a job sees the worker's clock"
    return {"done": 3}


def job_that_fails(engine: Engine, now: datetime) -> dict[str, int]:
    raise RuntimeError("boom")


def _run(args: list[str], database_url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "core.worker", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_run_once_runs_every_job_as_of_now_and_records_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "JOBS", [JobSpec("counts", "tests.test_worker:job_that_counts", 30),
                                         JobSpec("fails", "tests.test_worker:job_that_fails", 30)])
    now = clock.parse_instant("2026-12-01T09:00+09:00")
    SEEN.clear()
    summary = worker.run_once(engine, now, worker_id="w1")
    assert [now] == SEEN
    assert summary["jobs"]["counts"] == {"outcome": "ok", "counts": {"done": 3}}
    assert summary["jobs"]["fails"]["outcome"] == "error"
    assert "boom" in summary["jobs"]["fails"]["error"]
    with Session(engine) as session:
        runs = {r.job_id: r for r in session.exec(select(JobRun)).all()}
        assert runs["counts"].outcome == "ok" and runs["counts"].counts == {"done": 3}
        assert runs["fails"].outcome == "error"
        beat = session.get(WorkerHeartbeat, "w1")
        assert beat is not None and beat.last_beat_at == now
        health = worker_health(session, now=clock.parse_instant("2026-12-01T09:00:03+09:00"))
        assert health["alive"] and health["seconds_since_beat"] == 3
        assert {j["job_id"] for j in health["jobs"]} == {"counts", "fails"}
        stale = worker_health(session, now=clock.parse_instant("2026-12-01T09:05+09:00"))
        assert not stale["alive"]


def test_once_command_prints_a_json_summary(sqlite_engine: Engine) -> None:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = _run(["--once", "--now", "2026-12-01T09:00+09:00"], url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["now"] == "2026-12-01T00:00:00+00:00"
    assert summary["now_kst"] == "2026-12-01 09:00:00"
    assert all(job["outcome"] == "ok" for job in summary["jobs"].values())


@pytest.mark.parametrize(
    ("args", "env_url", "message"),
    [
        (["--once", "--now", "tomorrow"], None, "not an ISO-8601"),
        (["--once"], "mysql://x@y/z", "DATABASE_URL"),
        (["--once"], "sqlite:////proc/channeldesk/x.db", "cannot create"),
    ],
)
def test_bad_input_gets_one_clear_message(sqlite_engine: Engine, args: list[str], env_url: str | None,
                                          message: str) -> None:
    url = env_url or sqlite_engine.url.render_as_string(hide_password=False)
    result = _run(args, url)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_worker_on_sqlite_is_refused(sqlite_engine: Engine) -> None:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    lock = worker.acquire_sqlite_lock(url)
    try:
        result = _run(["--once"], url)
        assert result.returncode == 2
        assert "이미 워커가 실행 중" in result.stderr and str(os.getpid()) in result.stderr
    finally:
        assert lock is not None
        lock.close()
    assert _run(["--once"], url).returncode == 0  # free again once the first one stops


def test_daemon_beats_and_stops_on_sigterm(sqlite_engine: Engine) -> None:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen([sys.executable, "-m", "core.worker"], cwd=ROOT,
                               env={**os.environ, "DATABASE_URL": url},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # Python and the migrations start slowly on a loaded machine
        beat = None
        while beat is None and time.monotonic() < deadline:
            with Session(sqlite_engine) as session:
                beat = session.exec(select(WorkerHeartbeat)).first()
            if beat is None:
                time.sleep(0.1)  # waiting on another process to start, not on a clock
        assert beat is not None, "the daemon recorded no heartbeat"
        assert beat.pid == process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        # A job in progress finishes first; a loaded 2-core CI machine is slow. Its output is read
        # meanwhile (a full pipe would block the worker) and shown if it did not stop cleanly.
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-4000:]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_asked_before_the_first_tick_is_not_lost(sqlite_engine: Engine, monkeypatch, signum) -> None:
    """A deploy or Ctrl-C during a slow start (go_live) stops the worker: it never runs on unattended."""

    def slow_start(_engine, _now) -> None:
        os.kill(os.getpid(), signum)  # arrives while go_live is still working

    monkeypatch.setattr(worker, "go_live", slow_start)
    monkeypatch.setattr(worker, "JOBS", [])
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    done = threading.Event()
    watchdog = threading.Timer(30, lambda: done.is_set() or os.kill(os.getpid(), signal.SIGKILL))
    watchdog.start()
    try:
        worker.serve(sqlite_engine)  # returns instead of running forever
    finally:
        done.set()
        watchdog.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)
