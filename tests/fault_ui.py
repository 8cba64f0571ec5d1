"""The UI and the worker writing to one SQLite file at the same time (issue 9, faults and load).

The worker is the real daemon (`python -m core.worker`, APScheduler ticks on the real clock, the
embedded outbox as message provider) working through a backlog of queued messages and the UI's
new ones. Meanwhile a few "staff" threads do what the 문의 and 결제 링크 pages do: open a
`session_scope` and call the same core service (create / claim / reply / note / resolve an
inquiry, create a payment link, change a setting), and one thread renders the 문의 page itself in
AppTest. Any exception is what a person would see; the goal is that none says "database is locked".
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import clock, settings_store
from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.db import session_scope
from core.errors import ChannelDeskError
from core.inquiries import service as inquiries
from core.models import JobRun, Message, Role
from core.payments import links as payment_links
from tests import fault_support as fs

ROOT = fs.ROOT


@dataclass
class UiLoad:
    actions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # exception text (first 120 chars) -> count
    locked: int = 0  # errors whose text says the database was locked / busy
    latencies: list[float] = field(default_factory=list)
    page_runs: int = 0
    page_exceptions: list[str] = field(default_factory=list)
    worker_ticks: int = 0
    worker_messages_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, seconds: float, error: BaseException | None) -> None:
        with self.lock:
            self.actions[name] += 1
            self.latencies.append(seconds)
            if error is not None:
                text = f"{type(error).__name__}: {error}"
                self.errors[text[:120]] += 1
                if "locked" in text.lower() or "busy" in text.lower():
                    self.locked += 1

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _staff_actions(actor: Actor, customer_ids: list[int], rng: random.Random) -> list[tuple[str, Callable[[Session], Any]]]:
    """One round of what a CS person does on the pages, each a service call in its own transaction."""
    state: dict[str, int] = {}
    customer = rng.choice(customer_ids)

    def create(session: Session) -> None:
        state["inquiry"] = inquiries.create_inquiry(
            session, actor, customer_id=customer, body="배송이 언제 오나요? 주문 확인 부탁드립니다."
        ).id  # type: ignore[assignment]

    return [
        ("create_inquiry", create),
        ("claim", lambda s: inquiries.claim(s, actor, state["inquiry"])),
        ("reply", lambda s: inquiries.reply(s, actor, state["inquiry"], "오늘 출고 예정입니다. 감사합니다.")),
        ("note", lambda s: inquiries.add_note(s, actor, state["inquiry"], "택배사 확인 완료")),
        ("resolve", lambda s: inquiries.resolve(s, actor, state["inquiry"], "안내 완료")),
        (
            "payment_link",
            lambda s: payment_links.create_payment_link(
                s, actor, item_name="추가 배송비", amount=3000, customer_id=customer
            ),
        ),
        ("setting", lambda s: settings_store.put(s, actor, "fault_ui_probe", {"at": time.time()})),
    ]


def _staff_loop(engine: Engine, actor: Actor, customer_ids: list[int], load: UiLoad, stop: threading.Event,
                seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        for name, action in _staff_actions(actor, customer_ids, rng):
            if stop.is_set():
                return
            started, error = time.perf_counter(), None
            try:
                with session_scope(engine) as session:
                    action(session)
            except ChannelDeskError:
                pass  # a clear message the page would show (e.g. a rule); not a fault
            except Exception as exc:  # noqa: BLE001 - anything else reaches the person as a crash
                error = exc
            load.record(name, time.perf_counter() - started, error)
            if error is not None:
                traceback.print_exception(error, file=sys.stderr, limit=3)
                break  # this round's inquiry may not exist: start a new round


def _page_loop(engine: Engine, actor: Actor, load: UiLoad, stop: threading.Event) -> None:
    """The 문의 page itself (app.py in AppTest as cs), rerun like a person clicking around."""
    from tests.ui_helpers import open_app

    at = open_app(engine, actor, "pages/inquiries.py", timeout=120)
    while not stop.is_set():
        started = time.perf_counter()
        at.run()
        load.record("page_render", time.perf_counter() - started, None)
        with load.lock:
            load.page_runs += 1
            for exc in at.exception:
                load.page_exceptions.append(str(exc.value)[:200])
                if "locked" in str(exc.value).lower():
                    load.locked += 1


def prepare(path: str, backlog: int) -> tuple[Engine, dict[str, Actor], list[int]]:
    engine = fs.fresh_store(f"sqlite:///{path}")
    fs.seed(engine, messages=backlog, charges=0, batch_size=1000, now=clock.now())
    actors: dict[str, Actor] = {}
    with Session(engine) as session:
        for role, name in ((Role.CS, "cs"), (Role.OWNER, "owner"), (Role.STAFF, "staff")):
            user = create_user(session, None, username=f"{name}_fault", display_name=f"{name} 담당",
                               role=role.value, password="password-123")
            actors[name] = Actor(id=user.id, name=user.display_name, role=role)  # type: ignore[arg-type]
        session.commit()
        for i in range(20):  # open inquiries for the page's queue and countdowns
            inquiries.create_inquiry(session, actors["cs"], customer_id=1 + i, body=f"문의 {i}: 환불 가능한가요?")
            session.commit()
    return engine, actors, list(range(1, 101))


def run(seconds: float, *, staff_threads: int = 3, backlog: int = 20_000, seed: int = 9,
        page: bool = True, enough: Callable[[UiLoad], bool] | None = None, max_extra: float = 120.0) -> UiLoad:
    """The UI and the worker daemon on one fresh SQLite file for `seconds`; returns what happened.

    With `enough`, the run goes on (up to `max_extra` seconds more) until enough has happened to judge:
    on a loaded machine ten seconds may not hold one render of the page.
    """
    folder = tempfile.mkdtemp(prefix="fault-ui-")
    path = f"{folder}/store.db"
    engine, actors, customers = prepare(path, backlog)
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{path}", PYTHONPATH=str(ROOT), MESSAGE_PROVIDER="outbox")
    worker = subprocess.Popen([sys.executable, "-m", "core.worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    load, stop = UiLoad(), threading.Event()
    threads = [
        threading.Thread(target=_staff_loop, args=(engine, actors["cs" if i % 2 == 0 else "owner"], customers,
                                                    load, stop, seed + i), daemon=True)
        for i in range(staff_threads)
    ]
    try:
        deadline = time.monotonic() + 120  # the worker's first tick (a loaded box starts Python slowly)
        while time.monotonic() < deadline and _ticks(engine) == 0:
            time.sleep(0.2)
        for thread in threads:
            thread.start()
        if page:
            page_thread = threading.Thread(target=_page_loop, args=(engine, actors["cs"], load, stop), daemon=True)
            page_thread.start()
            threads.append(page_thread)
        time.sleep(seconds)
        extra_until = time.monotonic() + max_extra
        while enough is not None and not enough(load) and time.monotonic() < extra_until:
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        worker.send_signal(signal.SIGTERM)
        try:
            _, err = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
    locked_in_worker = err.decode(errors="replace").lower().count("database is locked")
    load.errors.update({"worker log: database is locked": locked_in_worker} if locked_in_worker else {})
    load.worker_ticks = _ticks(engine)
    with engine.connect() as conn:
        load.worker_messages_sent = conn.execute(
            select(func.count()).select_from(Message).where(Message.status.in_(("sent", "delivered")))  # type: ignore[attr-defined]
        ).scalar_one()
    engine.dispose()
    return load


def _ticks(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(JobRun)).scalar_one()


def report(load: UiLoad, seconds: float) -> bool:
    total = sum(load.actions.values())
    print(
        f"[sqlite] UI and worker on one SQLite file for {seconds:.0f} s: {total:,} UI actions "
        f"({dict(load.actions)}), {load.page_runs} 문의 page runs; worker {load.worker_ticks:,} job runs, "
        f"{load.worker_messages_sent:,} messages sent; {fs.load_average()}"
    )
    print(
        f"  UI action latency p50 {load.percentile(0.5) * 1000:.0f} ms, p99 {load.percentile(0.99) * 1000:.0f} ms, "
        f"max {max(load.latencies, default=0) * 1000:.0f} ms; errors {dict(load.errors) or 0}; "
        f"page exceptions {load.page_exceptions[:3] or 0}"
    )
    ok = load.locked == 0 and not load.errors and not load.page_exceptions and total > 0
    print(f"  {'PASS' if ok else 'FAIL'}  no 'database is locked' (nor any other error) reached a user")
    return ok


def run_ui_and_worker(minutes: float, seed: int = 9) -> bool:
    load = run(minutes * 60, seed=seed)
    return report(load, minutes * 60)
