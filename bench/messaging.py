"""Messaging benchmark (not part of the test suite). Prints its figures.

1. Throughput: 100,000 queued messages delivered by one sender process (the real Solapi client) to a
   local fake Solapi that takes 20 ms per request; messages/s and the worker's memory: its own peak
   (VmHWM) and its RSS sampled every 0.2 s while it works through the backlog (flat = streaming).
   `--batch-size 100000` configures a batch bigger than the backlog to show the claim cap holds.
2. Latency: with a worker running (order confirmations then the sender, every `--tick` seconds, as
   the worker runs its jobs), orders are marked paid one by one; the time from paid to the fake
   provider receiving the confirmation, p50/p99.

    .venv/bin/python bench/messaging.py [--messages 100000] [--orders 200] [--batch-size 1000]
                                        [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from core.customers.identity import canonical_mobile  # noqa: E402
from core.db import is_postgres, make_engine, upgrade  # noqa: E402
from core.messaging.automations import ensure_default_templates  # noqa: E402
from core.models import Customer, Message, Order, OrderItem, Setting, Template  # noqa: E402
from tests.messaging.fake_solapi import FakeSolapi  # noqa: E402


def _env(url: str, fake: FakeSolapi) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=url,
        MESSAGE_PROVIDER="solapi",
        SOLAPI_BASE_URL=fake.url,
        SOLAPI_API_KEY="KEY",
        SOLAPI_API_SECRET="SECRET",
        SOLAPI_SENDER="0212345678",
        SOLAPI_PFID="KA01PF",
        MESSAGE_RATE_PER_SECOND="100",
        PYTHONPATH=str(ROOT),
    )


CONCURRENCY = 4
BATCH_SIZE = 1000


def _fresh(url: str):
    engine = make_engine(url)
    if is_postgres(engine):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    with Session(engine) as s:
        ensure_default_templates(s)
        for t in s.exec(select(Template)).all():
            t.alimtalk_template_id = f"KA01{t.key.upper()}"
        s.add(
            Template(
                key="hello",
                name="인사",
                kind="informational",
                body="#{고객명}님 안녕하세요",
                approved_body="#{고객명}님 안녕하세요",
                alimtalk_template_id="KA01HELLO",
            )
        )
        s.add(Setting(key="messaging", value={"batch_size": BATCH_SIZE, "send_concurrency": CONCURRENCY}))
        s.commit()
    return engine


def throughput(url: str, count: int) -> None:
    engine = _fresh(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [
                {
                    "name": f"고객{i}",
                    "phone": f"010-{1000 + i // 10000:04d}-{i % 10000:04d}",
                    "mobile": canonical_mobile(f"010-{1000 + i // 10000:04d}-{i % 10000:04d}"),
                    "public_id": f"c{i:019d}",
                    "is_channel_friend": True,
                    "created_at": now,
                }
                for i in range(1000)
            ],
        )
        rows = [
            {
                "customer_id": 1 + i % 1000,
                "kind": "informational",
                "template_key": "hello",
                "text": "",
                "variables": {"고객명": f"고객{i % 1000}"},
                "idempotency_key": f"bench:{i}",
                "status": "queued",
                "attempts": 0,
                "send_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        for start in range(0, count, 10_000):
            conn.execute(insert(Message), rows[start : start + 10_000])
    del rows
    with FakeSolapi(delay=0.020) as fake:
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "core.messaging.sender", "--drain"],
            cwd=ROOT,
            env=_env(url, fake),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        samples = []  # (seconds since start, worker RSS MB)
        while worker.poll() is None:
            rss = _rss_mb(worker.pid)
            if rss:
                samples.append((time.perf_counter() - started, rss))
            time.sleep(0.2)
        stdout, stderr = worker.communicate()
        elapsed = time.perf_counter() - started
    if worker.returncode:
        raise SystemExit(stderr[-3000:])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    # The worker reports its own peak (VmHWM: ru_maxrss would include this process's peak).
    peak_mb = json.loads(stdout.strip().splitlines()[-1])["peak_rss_mb"]
    with engine.connect() as conn:
        sent = conn.execute(text("SELECT count(*) FROM message WHERE status = 'sent'")).scalar_one()
    dupes = sum(1 for n in fake.received.values() if n > 1)
    print(
        f"[throughput] {engine.dialect.name}: {sent:,}/{count:,} sent in {elapsed:.2f} s "
        f"(process start included) = {sent / elapsed:,.0f} msgs/s; requests to provider {fake.requests}; "
        f"keys received twice {dupes}; peak worker RSS {peak_mb:.0f} MB"
    )
    print(
        f"             worker CPU {cpu:.2f} s = {sent / cpu:,.0f} msgs per CPU-second; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    working = [mb for at, mb in samples if at > 2.0] or [mb for _, mb in samples]
    if working:
        quarter = max(1, len(working) // 4)
        print(
            f"             worker RSS while sending ({len(working)} samples, batch_size {BATCH_SIZE}): "
            f"first quarter max {max(working[:quarter]):.0f} MB, last quarter max "
            f"{max(working[-quarter:]):.0f} MB, overall max {max(working):.0f} MB"
        )
    print(f"             worker ticks: {stdout.strip().replace(chr(10), ' | ')}")
    engine.dispose()


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


WORKER_LOOP = """
import os, sys, time
from core import clock
from core.messaging.automations import order_confirmations
from core.db import make_engine
from core.messaging.sender import message_sender
engine = make_engine()
tick = float(sys.argv[1])
first = True
while True:
    started = time.monotonic()
    now = clock.now()
    a = order_confirmations(engine, now)
    t1 = time.monotonic()
    b = message_sender(engine, now)
    t2 = time.monotonic()
    if t2 - started > float(os.environ.get("SLOW_TICK", "0.5")):
        print(f"slow tick {t1 - started:.2f}+{t2 - t1:.2f} s {a} {b}", file=sys.stderr, flush=True)
    if first:
        print("ready", flush=True)
        first = False
    time.sleep(max(0.0, tick - (time.monotonic() - started)))
"""


def latency(url: str, orders: int, tick: float) -> None:
    engine = _fresh(url)
    with Session(engine) as s:
        customer = Customer(name="홍길동", phone="010-1234-5678")
        s.add(customer)
        s.commit()
        cid = customer.id
    paid: dict[str, float] = {}
    with FakeSolapi(delay=0.020) as fake:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER_LOOP, str(tick)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(url, fake),
            stderr=subprocess.PIPE,
        )
        try:
            assert worker.stdout.readline().strip() == "ready"  # the worker is up and has ticked once
            for i in range(orders):
                with Session(engine) as s:
                    at = datetime.now(UTC)
                    order = Order(
                        order_number=f"B-{i}",
                        customer_id=cid,
                        total_amount=15_000,
                        status="paid",
                        paid_at=at,
                        ordered_at=at,
                        shipping_method="택배",
                    )
                    s.add(order)
                    s.flush()
                    s.add(
                        OrderItem(
                            order_id=order.id,
                            product_name="샴푸",
                            quantity=1,
                            unit_price=15_000,
                            amount=15_000,
                        )
                    )
                    s.commit()
                    paid[f"order_confirmation:{order.id}"] = at.timestamp()
                time.sleep(0.1)
            deadline = time.time() + 30
            while len(fake.received_at) < orders and time.time() < deadline:
                time.sleep(0.1)
        finally:
            worker.kill()
            worker.wait()
    waits = sorted(fake.received_at[k] - t for k, t in paid.items() if k in fake.received_at)
    if len(waits) < orders:
        print(f"[latency] only {len(waits)}/{orders} confirmations arrived")
    p = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))]  # noqa: E731
    print(
        f"[latency] {engine.dialect.name}: {len(waits)} orders paid -> confirmation accepted by provider: "
        f"p50 {p(0.50):.2f} s, p99 {p(0.99):.2f} s, max {waits[-1]:.2f} s (worker tick {tick} s)"
    )
    engine.dispose()


def first_start(url: str, customers: int, orders: int) -> None:
    """Issue 15: the worker's first start over the demo data (and then with the owner letting the
    last 14 days in on 설정): review requests queued, the most to one customer, the time taken."""
    from collections import Counter as _Counter

    from core import clock
    from core.accounts.actor import Actor
    from core.demo import seed
    from core.messaging import automations
    from core.models import Role, StaffUser

    engine = _fresh(url)
    seeded_at = clock.parse_instant("2026-11-23T10:00:00+09:00")
    started = time.perf_counter()
    seed.seed_demo(engine, now=seeded_at, customers=customers, orders=orders, seed=7)
    print(
        f"[first start] demo seeded: {customers:,} customers, {orders:,} orders in {time.perf_counter() - started:.1f} s"
    )

    def tick(at: datetime, label: str) -> None:
        env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(ROOT), PAYMENT_GATEWAY="sandbox")
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "core.worker", "--once", "--now", at.isoformat()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        job = json.loads(done.stdout)["jobs"]["review_requests"]
        with Session(engine) as session:
            rows = session.execute(
                select(Message.customer_id, Message.variables).where(Message.template_key == "review_request")
            ).all()
        per = _Counter(cid for cid, _ in rows)
        named = sum(len((v or {}).get("__orders", [])) for _, v in rows)
        print(
            f"[first start] {label}: worker --once {time.perf_counter() - t0:.1f} s "
            f"(review_requests job: {job.get('counts')}); review requests queued "
            f"{len(rows):,} naming {named:,} orders; most to one customer: {max(per.values(), default=0)}"
        )

    first = seeded_at + timedelta(minutes=1)
    tick(first, "first start over the demo")
    with Session(engine) as session:
        owner = session.execute(select(StaffUser).where(StaffUser.role == "owner")).scalars().first()
        actor = Actor(owner.id, owner.display_name, Role.OWNER)
        preview = automations.include_history(session, actor, first)
        session.commit()
    print(
        f"[first start] owner lets the last {preview['window_days']} days in: {preview['customers']:,} customers, {preview['orders']:,} orders"
    )
    tick(first + timedelta(minutes=1), "after the owner's confirmation")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4, help="chunks with the provider at once")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="the batch_size setting (claims are capped)"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--first-start",
        nargs=2,
        type=int,
        metavar=("CUSTOMERS", "ORDERS"),
        help="only the first worker start over a demo of that size (issue 15)",
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    args = parser.parse_args()
    global CONCURRENCY, BATCH_SIZE
    CONCURRENCY = args.concurrency
    BATCH_SIZE = args.batch_size
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        if args.first_start:
            first_start(args.database_url or f"sqlite:///{folder}/first.db", *args.first_start)
            return
        if not args.skip_throughput:
            throughput(url, args.messages)
        if not args.skip_latency:
            url = args.database_url or f"sqlite:///{folder}/latency.db"
            latency(url, args.orders, args.tick)


if __name__ == "__main__":
    main()
