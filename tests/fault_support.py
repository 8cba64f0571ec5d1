"""Fault and load harness shared by bench/faults.py (full size) and tests/test_faults.py (a few seconds).

It drives the system only through its public entry points: worker processes
(`python -m core.worker --once --now ...`), the outbox (`core.messaging.outbox.enqueue_many`) and
core services. The providers are real HTTP servers on 127.0.0.1 speaking Solapi's and Toss's
shapes that fail on cue and count, provider side, every request and every message taken or card
charged: that count, not our own rows, is what proves "zero duplicates, zero lost".
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from sqlalchemy import Engine, func, insert, select, text

from core.billing.dates import kst_instant
from core.customers.identity import canonical_mobile
from core.db import is_postgres, make_engine, upgrade
from core.messaging.default_templates import ensure_default_templates
from core.messaging.outbox import enqueue_many
from core.models import (
    Customer,
    Message,
    Setting,
    Subscription,
    SubscriptionCharge,
    SubscriptionPlan,
    Template,
)
from core.models.sandbox import SandboxInstrument, SandboxPayment

ROOT = Path(__file__).resolve().parent.parent
KEY_FIELD = "idempotencyKey"
DUE = date(2027, 3, 31)
START = kst_instant(DUE, 9) + timedelta(minutes=30)  # charges of DUE are open, notices are past


# -- faults ----------------------------------------------------------------------------------------
@dataclass
class Faults:
    """Per request: HTTP 500 with probability `error_rate`, a timeout (the work is done, the answer
    comes after the client gave up) with `timeout_rate`; otherwise a normal answer."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 11.0  # the clients' read timeout is 10 s
    seed: int = 7
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> str:
        with self.lock:
            roll = self.rng.random()
        if roll < self.error_rate:
            return "500"
        if roll < self.error_rate + self.timeout_rate:
            return "timeout"
        return "ok"


class _Server:
    """A threading HTTP server on 127.0.0.1 (port 0) around a handler class."""

    def __init__(self, handler: type[_Handler]) -> None:
        handler.fake = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # "POST send" / "GET list" ... -> count
        self.outcomes: Counter[str] = Counter()  # ok / 500 / timeout

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: Any

    def log_message(self, *args: Any) -> None:
        return None

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _late(self, fault: str) -> None:
        if fault == "timeout":
            time.sleep(self.fake.faults.timeout_seconds)


class FaultySolapi(_Server):
    """Solapi's send-many/detail and list, failing per `faults`. Counts, per idempotency key, every
    send request that carried it (`attempts`) and every time the provider took it (`taken`)."""

    SEND = "/messages/v4/send-many/detail"
    LIST = "/messages/v4/list"

    def __init__(self, faults: Faults | None = None, delay: float = 0.0, lookup_faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.lookup_faults = lookup_faults or self.faults
        self.delay = delay
        self.attempts: Counter[str] = Counter()
        self.taken: Counter[str] = Counter()
        self.accepted: dict[str, dict[str, Any]] = {}
        fake = self

        class Handler(_Handler):
            def do_POST(self) -> None:  # noqa: N802
                payload = self._body()
                fault = fake.faults.draw()
                keys = [(m.get("customFields") or {}).get(KEY_FIELD) for m in payload.get("messages", [])]
                with fake.lock:
                    fake.requests["POST send"] += 1
                    fake.outcomes[fault] += 1
                    fake.attempts.update(keys)
                if fault == "500":
                    return self._reply(500, {"errorCode": "InternalError", "errorMessage": "fault injected"})
                group = "G4V" + uuid.uuid4().hex[:16].upper()
                items = []
                with fake.lock:
                    for m, key in zip(payload.get("messages", []), keys, strict=True):
                        item = {
                            "to": m.get("to"),
                            "messageId": "M4V" + uuid.uuid4().hex[:16].upper(),
                            "groupId": group,
                            "customFields": m.get("customFields", {}),
                            "statusCode": "2000",
                            "statusMessage": "정상 접수",
                        }
                        fake.taken[key] += 1
                        fake.accepted.setdefault(key, item)
                        items.append(item)
                if fake.delay:
                    time.sleep(fake.delay)
                self._late(fault)
                total = len(items)
                self._reply(
                    200,
                    {
                        "groupInfo": {
                            "groupId": group,
                            "count": {"total": total, "registeredSuccess": total, "registeredFailed": 0},
                        },
                        "failedMessageList": [],
                        "messageList": items,
                    },
                )

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                if url.path != fake.LIST:
                    return self._reply(404, {"errorCode": "NotFound"})
                fault = fake.lookup_faults.draw()
                with fake.lock:
                    fake.requests["GET list"] += 1
                    fake.outcomes[fault] += 1
                if fault == "500":
                    return self._reply(500, {"errorCode": "InternalError", "errorMessage": "fault injected"})
                self._late(fault)
                query = parse_qs(url.query)
                start = int(query.get("startKey", ["0"])[0])
                limit = int(query.get("limit", ["500"])[0])
                with fake.lock:
                    items = list(fake.accepted.values())
                page = items[start : start + limit]
                self._reply(
                    200,
                    {
                        "messageList": {i["messageId"]: i for i in page},
                        "nextKey": str(start + limit) if start + limit < len(items) else None,
                    },
                )

        super().__init__(Handler)

    def env(self) -> dict[str, str]:
        return {
            "MESSAGE_PROVIDER": "solapi",
            "SOLAPI_BASE_URL": self.url,
            "SOLAPI_API_KEY": "KEY",
            "SOLAPI_API_SECRET": "SECRET",
            "SOLAPI_SENDER": "0212345678",
            "SOLAPI_PFID": "KA01PF",
            "MESSAGE_RATE_PER_SECOND": "1000",
        }


class FaultyToss(_Server):
    """Toss Payments' billing charge and order lookup, failing per `faults`.

    Like Toss it answers a repeated Idempotency-Key with the first result; unlike Toss it does NOT
    refuse a second charge of the same orderId, so a double charge by us shows up here
    (`charged[order_id] > 1`) instead of being hidden by the provider."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.attempts: Counter[str] = Counter()  # orderId -> charge requests
        self.charged: Counter[str] = Counter()  # orderId -> money actually taken
        self.payments: dict[str, dict[str, Any]] = {}  # orderId -> first payment
        self.by_key: dict[str, dict[str, Any]] = {}
        fake = self

        class Handler(_Handler):
            def do_POST(self) -> None:  # noqa: N802
                path = urlparse(self.path).path
                if not path.startswith("/v1/billing/"):
                    return self._reply(404, {"code": "NOT_FOUND", "message": "no such path"})
                payload = self._body()
                order_id = str(payload.get("orderId"))
                key = self.headers.get("Idempotency-Key") or uuid.uuid4().hex
                fault = fake.faults.draw()
                with fake.lock:
                    fake.requests["POST billing"] += 1
                    fake.outcomes[fault] += 1
                    fake.attempts[order_id] += 1
                if fault == "500":
                    return self._reply(
                        500, {"code": "FAILED_INTERNAL_SYSTEM_PROCESSING", "message": "fault injected"}
                    )
                with fake.lock:
                    payment = fake.by_key.get(key)
                    if payment is None:
                        amount = int(payload.get("amount") or 0)
                        payment = {
                            "paymentKey": "tpk_" + uuid.uuid4().hex[:20],
                            "lastTransactionKey": "ttk_" + uuid.uuid4().hex[:20],
                            "orderId": order_id,
                            "orderName": payload.get("orderName"),
                            "status": "DONE",
                            "method": "카드",
                            "totalAmount": amount,
                            "balanceAmount": amount,
                            "taxFreeAmount": int(payload.get("taxFreeAmount") or 0),
                            "vat": round(amount / 11),
                            "approvedAt": datetime.now().astimezone().isoformat(timespec="seconds"),
                        }
                        fake.by_key[key] = payment
                        fake.charged[order_id] += 1
                        fake.payments.setdefault(order_id, payment)
                self._late(fault)
                self._reply(200, payment)

            def do_GET(self) -> None:  # noqa: N802
                path = urlparse(self.path).path
                fault = fake.faults.draw()
                with fake.lock:
                    fake.requests["GET lookup"] += 1
                    fake.outcomes[fault] += 1
                if fault == "500":
                    return self._reply(
                        500, {"code": "FAILED_INTERNAL_SYSTEM_PROCESSING", "message": "fault injected"}
                    )
                self._late(fault)
                with fake.lock:
                    if path.startswith("/v1/payments/orders/"):
                        found = fake.payments.get(unquote(path.rsplit("/", 1)[1]))
                    else:
                        wanted = unquote(path.rsplit("/", 1)[1])
                        found = next((p for p in fake.payments.values() if p["paymentKey"] == wanted), None)
                if found is None:
                    return self._reply(404, {"code": "NOT_FOUND_PAYMENT", "message": "존재하지 않는 결제"})
                self._reply(200, found)

        super().__init__(Handler)

    def env(self) -> dict[str, str]:
        return {"PAYMENT_GATEWAY": "toss", "TOSS_BASE_URL": self.url, "TOSS_SECRET_KEY": "test_sk_fault"}


# -- the store -------------------------------------------------------------------------------------
def fresh_store(url: str) -> Engine:
    """An empty, migrated store at `url` (PostgreSQL: the public schema is dropped first)."""
    engine = make_engine(url)
    if is_postgres(engine):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return engine


def seed(
    engine: Engine,
    *,
    messages: int,
    charges: int,
    gateway: str = "sandbox",
    batch_size: int = 200,
    now: datetime = START,
) -> None:
    """Customers, `messages` queued informational messages (through the outbox) and `charges`
    subscriptions due on DUE with an instrument on `gateway` (sandbox SIDs or Toss billing keys)."""
    customers = max(charges, 100)
    from sqlmodel import Session

    with Session(engine) as session:
        ensure_default_templates(session)
        session.add(
            Template(
                key="fault_hello",
                name="장애 시험",
                body="#{고객명}님 안녕하세요",
                approved_body="#{고객명}님 안녕하세요",
            )
        )
        session.flush()
        for template in session.execute(select(Template)).scalars():
            template.alimtalk_template_id = f"KA01{template.key.upper()}"
        session.add(Setting(key="messaging", value={"batch_size": batch_size, "send_concurrency": 4}))
        plan = SubscriptionPlan(name="월회비", amount=39000)
        session.add(plan)
        session.commit()
        plan_id = plan.id
        session.execute(
            insert(Customer),
            [
                {
                    "id": i,
                    "name": f"고객{i}",
                    "phone": f"010{i:08d}",
                    "mobile": canonical_mobile(f"010{i:08d}"),  # a bulk insert identifies itself
                    "public_id": f"u{i:019d}",
                    "is_channel_friend": True,
                    "created_at": now,
                }
                for i in range(1, customers + 1)
            ],
        )
        if gateway == "sandbox" and charges:
            session.execute(
                insert(SandboxInstrument),
                [
                    {"sid": f"S{i:019d}", "partner_user_id": f"u{i:019d}", "status": "ACTIVE", "created_at": now}
                    for i in range(1, charges + 1)
                ],
            )
        if charges:
            session.execute(
                insert(Subscription),
                [
                    {
                        "id": i,
                        "customer_id": i,
                        "plan_id": plan_id,
                        "amount": 39000,
                        "status": "active",
                        "anchor_day": DUE.day,
                        "next_charge_date": DUE,
                        "instrument_gateway": gateway,
                        "instrument_ref": f"S{i:019d}" if gateway == "sandbox" else f"bk_{i:019d}",
                        "cancel_at_period_end": False,
                        "started_at": now,
                        "created_at": now,
                    }
                    for i in range(1, charges + 1)
                ],
            )
        for start in range(0, messages, 5000):
            enqueue_many(
                session,
                [
                    {
                        "customer_id": 1 + i % customers,
                        "to_phone": f"010{1 + i % customers:08d}",
                        "template_key": "fault_hello",
                        "variables": {"고객명": f"고객{1 + i % customers}"},
                        "idempotency_key": f"fault:{i}",
                    }
                    for i in range(start, min(messages, start + 5000))
                ],
                now=now,
            )
        session.commit()
        if is_postgres(engine):
            for table in ("customer", "subscription"):
                session.execute(text(f"SELECT setval('{table}_id_seq', {customers})"))
            session.commit()


# -- worker processes ------------------------------------------------------------------------------
def worker_env(url: str, *servers: Any) -> dict[str, str]:
    env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(ROOT), PAYMENT_GATEWAY="sandbox")
    for server in servers:
        env.update(server.env())
    return env


def start_worker(env: dict[str, str], now: datetime) -> subprocess.Popen[bytes]:
    """`python -m core.worker --once --now NOW`: every job once, as the daemon's ticks would."""
    return subprocess.Popen(
        [sys.executable, "-m", "core.worker", "--once", "--now", now.isoformat()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], timeout: float = 600) -> dict[str, Any]:
    """Wait for a worker; its JSON summary (raises with its stderr if it crashed)."""
    out, err = process.communicate(timeout=timeout)
    if process.returncode not in (0, 1):
        raise RuntimeError(f"worker exited {process.returncode}: {err.decode()[-3000:]}")
    summary = json.loads(out)
    failed = {k: v for k, v in summary["jobs"].items() if v["outcome"] != "ok"}
    if failed:
        raise RuntimeError(f"worker jobs failed: {json.dumps(failed, ensure_ascii=False)[:3000]}")
    return summary


# -- the ledger: provider-side receipts against our rows --------------------------------------------
OPEN_MESSAGE = ("queued", "sending", "held")


def next_due(engine: Engine) -> datetime | None:
    """The earliest instant at which something is still to do (None: everything is final)."""
    m = Message.__table__
    c = SubscriptionCharge.__table__
    with engine.connect() as conn:
        candidates = [
            conn.execute(select(func.min(m.c.send_after)).where(m.c.status.in_(("queued", "held")))).scalar(),
            conn.execute(select(func.min(m.c.claim_expires_at)).where(m.c.status == "sending")).scalar(),
            conn.execute(
                select(func.min(c.c.created_at)).where(c.c.status == "pending")
            ).scalar(),
            conn.execute(
                select(func.min(c.c.next_retry_at)).where(
                    c.c.status.in_(("unknown", "failed")), c.c.next_retry_at.is_not(None)
                )
            ).scalar(),
        ]
    from core import clock

    found = [clock.as_utc(x) for x in candidates if x is not None]
    return min(found) if found else None


@dataclass
class Ledger:
    """What the providers saw against what our rows say. `problems` is empty when all is well."""

    message_status: Counter[str]
    charge_status: Counter[str]
    messages_taken: int  # distinct keys the message provider took
    message_duplicates: int  # keys taken more than once
    messages_lost: int  # sent by our rows but never taken, or taken but not recorded as sent
    charges_taken: int  # distinct orders the gateway charged
    charge_duplicates: int  # orders charged more than once
    charges_lost: int  # succeeded here but not charged there, or charged there but not recorded
    missing_reason: int  # failed items with no reason
    max_message_attempts: int  # provider-side requests carrying one key (FaultySolapi)
    max_charge_attempts: int  # provider-side charge requests for one order (FaultyToss)
    problems: list[str]

    def line(self) -> str:
        return (
            f"messages {dict(self.message_status)}; provider took {self.messages_taken:,} keys, "
            f"{self.message_duplicates} twice, lost {self.messages_lost}; charges {dict(self.charge_status)}; "
            f"gateway charged {self.charges_taken:,} orders, {self.charge_duplicates} twice, "
            f"lost {self.charges_lost}; failed without reason {self.missing_reason}; max attempts per "
            f"message {self.max_message_attempts}, per charge {self.max_charge_attempts}"
        )


def ledger(engine: Engine, solapi: FaultySolapi, toss: FaultyToss | None = None) -> Ledger:
    m = Message.__table__
    c = SubscriptionCharge.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(m.c.idempotency_key, m.c.status, m.c.reason)).all()
        charges = conn.execute(
            select(c.c.subscription_id, c.c.period, c.c.status, c.c.failure_message, c.c.next_retry_at)
        ).all()
        sandbox = Counter(
            dict(
                conn.execute(
                    select(SandboxPayment.partner_order_id, func.count())  # type: ignore[call-overload]
                    .where(SandboxPayment.status.in_(("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")))
                    .group_by(SandboxPayment.partner_order_id)
                ).all()
            )
        )
    from core.billing import order_number

    sent = {k for k, s, _ in rows if s in ("sent", "delivered")}
    taken = {k for k, n in solapi.taken.items() if n}
    gateway_charged = toss.charged if toss is not None else sandbox
    succeeded = {order_number(sid, period) for sid, period, s, _, _ in charges if s == "succeeded"}
    charged = {k for k, n in gateway_charged.items() if n}
    missing_reason = sum(1 for _, s, r in rows if s == "failed" and not r) + sum(
        1 for *_, s, reason, _ in charges if s == "failed" and not reason
    )
    ledger = Ledger(
        message_status=Counter(s for _, s, _ in rows),
        charge_status=Counter(s for _, _, s, _, _ in charges),
        messages_taken=len(taken),
        message_duplicates=sum(1 for n in solapi.taken.values() if n > 1),
        messages_lost=len(sent ^ taken),
        charges_taken=len(charged),
        charge_duplicates=sum(1 for n in gateway_charged.values() if n > 1),
        charges_lost=len(succeeded ^ charged),
        missing_reason=missing_reason,
        max_message_attempts=max(solapi.attempts.values(), default=0),
        max_charge_attempts=max(toss.attempts.values(), default=0) if toss is not None else 0,
        problems=[],
    )
    open_messages = sum(ledger.message_status[s] for s in OPEN_MESSAGE)
    open_charges = sum(1 for *_, s, _, retry in charges if s in ("pending", "unknown") or (s == "failed" and retry))
    for name, value in (
        ("duplicate messages", ledger.message_duplicates),
        ("lost messages", ledger.messages_lost),
        ("double charges", ledger.charge_duplicates),
        ("lost charges", ledger.charges_lost),
        ("failed without a reason", ledger.missing_reason),
        ("messages not final", open_messages),
        ("charges not final", open_charges),
    ):
        if value:
            ledger.problems.append(f"{name}: {value}")
    return ledger


@dataclass
class Run:
    rounds: int = 0
    kills: int = 0
    in_flight_at_kill: Counter[str] = field(default_factory=Counter)  # rows caught mid-work, summed over kills
    kills_mid_work: Counter[str] = field(default_factory=Counter)  # kills that caught messages / charges in flight
    wall: float = 0.0
    until: datetime = START
    per_worker: list[tuple[int, int]] = field(default_factory=list)  # (messages claimed, charges done)


def drive(
    engine: Engine,
    env: dict[str, str],
    *,
    workers: int = 1,
    start: datetime = START,
    step: timedelta = timedelta(minutes=3),
    max_rounds: int = 200,
) -> Run:
    """Rounds of `workers` simultaneous worker processes at the same instant, the clock moved on
    between rounds (to the next retry or lease end), until every message and charge is final."""
    run, now, began = Run(), start, time.perf_counter()
    while run.rounds < max_rounds:
        processes = [start_worker(env, now) for _ in range(workers)]
        for process in processes:
            jobs = finish(process)["jobs"]
            sender = jobs["message_sender"].get("counts", {})
            charges = jobs["billing_charges"].get("counts", {})
            run.per_worker.append(
                (sender.get("claimed", 0), sum(charges.get(k, 0) for k in ("succeeded", "failed", "unknown")))
            )
        run.rounds += 1
        due = next_due(engine)
        if due is None:
            break
        now = max(now + step, due + timedelta(seconds=1))
    run.wall, run.until = time.perf_counter() - began, now
    return run


def in_flight(engine: Engine) -> Counter[str]:
    m, c = Message.__table__, SubscriptionCharge.__table__
    with engine.connect() as conn:
        return Counter(
            messages_sending=conn.execute(select(func.count()).where(m.c.status == "sending")).scalar_one(),
            charges_unknown=conn.execute(select(func.count()).where(c.c.status == "unknown")).scalar_one(),
        )


def drive_with_kills(
    engine: Engine,
    env: dict[str, str],
    *,
    kills: int,
    rng: random.Random,
    kill_window: tuple[float, float] = (0.3, 4.0),
    kill_when: list[Callable[[], bool]] | None = None,
    start: datetime = START,
    max_rounds: int = 200,
) -> Run:
    """One worker at a time, SIGKILLed at a random moment of its run `kills` times, restarted each
    time with the clock 16 minutes on (past the message and charge leases), then run to the end.
    `kill_when` (one predicate per kill) replaces the random moments with chosen ones."""
    run, now, began = Run(), start, time.perf_counter()
    while run.rounds < max_rounds:
        process = start_worker(env, now)
        run.rounds += 1
        if run.kills < kills:
            try:
                if kill_when is not None:  # a chosen moment: poll until it comes (or the run ends)
                    while process.poll() is None and not kill_when[run.kills]():
                        time.sleep(0.02)
                    if process.poll() is None:
                        raise subprocess.TimeoutExpired(process.args, 0)
                    process.wait()
                else:
                    process.wait(timeout=rng.uniform(*kill_window))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                run.kills += 1
                caught = +in_flight(engine)
                run.in_flight_at_kill.update(caught)
                run.kills_mid_work.update(caught.keys())
                now += timedelta(minutes=16)
                continue
        finish(process)
        due = next_due(engine)
        if due is None:
            break  # all done (fewer kills than asked if the work ran out first: the caller checks)
        now = max(now + timedelta(minutes=16), due + timedelta(seconds=1))
    run.wall, run.until = time.perf_counter() - began, now
    return run


@contextmanager
def servers(faults: Faults | None = None, *, toss: bool = False, delay: float = 0.0) -> Iterator[
    tuple[FaultySolapi, FaultyToss | None]
]:
    with FaultySolapi(faults, delay=delay) as solapi:
        if not toss:
            yield solapi, None
            return
        with FaultyToss(faults) as gateway:
            yield solapi, gateway


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs"


def failure_reasons(engine: Engine) -> Counter[str]:
    """Why items failed: message reasons and charge failure messages, digits folded."""
    import re

    m, c = Message.__table__, SubscriptionCharge.__table__
    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(select(m.c.reason).where(m.c.status == "failed"))]
        reasons += [
            f"charge: {r}" for (r,) in conn.execute(select(c.c.failure_message).where(c.c.status == "failed"))
        ]
    return Counter(re.sub(r"\d+", "N", r or "(no reason)")[:140] for r in reasons)
