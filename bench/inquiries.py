"""Benchmark: the 문의 page (AppTest as cs) and the SLA watch tick, on a large store.

    .venv/bin/python bench/inquiries.py                  # 1,000,000 orders, then 100,000 orders
    .venv/bin/python bench/inquiries.py --orders 200000 --runs 10
    .venv/bin/python bench/inquiries.py --quick          # 20,000 orders, watch tick only (~15 s)

Data (own generator, SQLite file in a temp folder): 20,000 customers, N orders (one item, one
payment each), 100,000 inquiries of which 5,000 open (3 events each), cached SLA deadlines from the
real engine for the open ones. Targets (issue 3): page median <= 150 ms with 1M orders and at most
1.2x that with 10x fewer; SLA watch tick over 5,000 open <= 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text, update  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from core import clock  # noqa: E402
from core.accounts.actor import Actor  # noqa: E402
from core.accounts.auth import create_user  # noqa: E402
from core.db import make_engine, upgrade  # noqa: E402
from core.inquiries import jobs as inquiry_jobs  # noqa: E402
from core.inquiries import policy as sla_policy  # noqa: E402
from core.inquiries import service as inquiries  # noqa: E402
from core.models import Inquiry, Role, Setting  # noqa: E402

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # Monday 11:30 KST
CUSTOMERS = 20_000
INQUIRIES = 100_000
OPEN = 5_000
CHUNK = 50_000
TYPES = ["payment_error", "double_charge", "refund_request", "receipt_request", "other"]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def build(path: Path, orders: int) -> tuple[Engine, Actor]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    rng = random.Random(3)
    with Session(engine) as session:
        cs = create_user(
            session, None, username="cs1", display_name="CS 담당", role="cs", password="password-123"
        )
        others = [
            create_user(
                session, None, username=f"cs{i}", display_name=f"CS {i}", role="cs", password="password-123"
            ).id
            for i in range(2, 5)
        ]
        session.commit()
        actor = Actor(cs.id, cs.display_name, Role.CS)
    staff_ids = [actor.id, *others, None]
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("BEGIN")
    cursor.executemany(
        "INSERT INTO customer (id, name, phone, is_channel_friend, public_id, created_at) VALUES (?,?,?,?,?,?)",
        [
            (i, f"고객{i}", f"010{i:08d}", 1, f"c{i:019d}", _iso(NOW - timedelta(days=400)))
            for i in range(1, CUSTOMERS + 1)
        ],
    )
    for start in range(1, orders + 1, CHUNK):
        ids = range(start, min(orders, start + CHUNK - 1) + 1)
        order_rows, payment_rows = [], []
        for i in ids:
            at = _iso(NOW - timedelta(seconds=rng.randrange(180 * 86400)))
            customer = rng.randrange(1, CUSTOMERS + 1)
            amount = rng.choice([9900, 19000, 39000, 59000])
            order_rows.append((i, f"O{i:09d}", customer, amount, 0, "chat", "paid", at, at, 0))
            payment_rows.append(
                (
                    i,
                    i,
                    customer,
                    "sandbox",
                    f"T{i:019d}",
                    "CARD",
                    amount,
                    0,
                    0,
                    "approved",
                    f"p{i}",
                    at,
                    "[]",
                    at,
                )
            )
        cursor.executemany(
            "INSERT INTO orders (id, order_number, customer_id, total_amount, tax_free_amount, source, status, "
            "ordered_at, paid_at, refunded_amount) VALUES (?,?,?,?,?,?,?,?,?,?)",
            order_rows,
        )
        cursor.executemany(
            "INSERT INTO payment (id, order_id, customer_id, gateway, gateway_tid, method, amount, tax_free_amount, "
            "refunded_amount, status, idempotency_key, approved_at, routing_log, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            payment_rows,
        )
    inquiry_rows, event_rows = [], []
    event_id = 0
    for i in range(1, INQUIRIES + 1):
        is_open = i > INQUIRIES - OPEN
        created = NOW - (
            timedelta(minutes=rng.randrange(1, 600))
            if is_open
            else timedelta(minutes=rng.randrange(600, 180 * 1440))
        )
        kind = rng.choice(TYPES)
        first = None if is_open and rng.random() < 0.7 else created + timedelta(minutes=rng.randrange(1, 90))
        resolved = None if is_open else (first or created) + timedelta(minutes=rng.randrange(1, 600))
        inquiry_rows.append(
            (
                i,
                rng.randrange(1, CUSTOMERS + 1),
                kind,
                f"문의 {i}",
                "open" if is_open else "resolved",
                rng.choice(staff_ids),
                "staff",
                _iso(created),
                first and _iso(first),
                resolved and _iso(resolved),
            )
        )
        for at, ev_kind in ((created, "created"), (first, "reply"), (resolved, "resolve")):
            if at is not None:
                event_id += 1
                event_rows.append((event_id, i, _iso(at), ev_kind, "결제가 안 돼요", "{}"))
    cursor.executemany(
        "INSERT INTO inquiry (id, customer_id, type, subject, status, assignee_id, source, created_at, "
        "first_response_at, resolved_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        inquiry_rows,
    )
    cursor.executemany(
        "INSERT INTO inquiry_event (id, inquiry_id, at, kind, body, detail) VALUES (?,?,?,?,?,?)", event_rows
    )
    raw.commit()
    raw.close()
    with clock.frozen(NOW), Session(engine) as session:
        inquiries.recompute_open(session)
        session.commit()
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, actor


def bench_page(engine: Engine, actor: Actor, runs: int) -> tuple[list[float], list[float]]:
    """(wall ms, process CPU ms) per AppTest run: CPU time shows our cost on a shared, loaded machine."""
    from tests.ui_helpers import open_app, texts

    clock.set_now(NOW)
    at = open_app(engine, actor, "pages/inquiries.py", timeout=60)
    assert not at.exception, at.exception
    assert "열린 문의 5,000건 중" in texts(at), "the 문의 queue did not render"
    wall, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        at.run()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert not at.exception, at.exception
    clock.set_now(None)
    return wall, cpu


def bench_watch(engine: Engine, runs: int) -> dict[str, list[float]]:
    """Wall and CPU ms of (all 5,000 open due at once) and (steady tick, nothing due).

    The worst case has the SLA alerts by message switched on, so each notification also queues a
    message in the outbox (the most the tick can write)."""
    with Session(engine) as session:
        session.add(
            Setting(
                key="sla_alert_message",
                value={"enabled": True, "phone": "010-9876-5432", "thresholds": ["at_risk", "breached"]},
            )
        )
        session.commit()
    result: dict[str, list[float]] = {
        "worst": [],
        "worst_cpu": [],
        "steady": [],
        "steady_cpu": [],
        "written": [],
        "messages": [],
    }
    for _ in range(runs):
        with Session(engine) as session:
            session.exec(text("DELETE FROM staff_notification"))  # type: ignore[call-overload]
            session.exec(text("DELETE FROM message"))  # type: ignore[call-overload]
            session.execute(update(Inquiry).where(Inquiry.status == "open").values(sla_next_alert_at=NOW))
            session.commit()
        for name, offset in (("worst", 1), ("steady", 2)):
            began, began_cpu = time.perf_counter(), time.process_time()
            counts = inquiry_jobs.sla_watch(engine, NOW + timedelta(seconds=offset))
            result[name].append((time.perf_counter() - began) * 1000)
            result[f"{name}_cpu"].append((time.process_time() - began_cpu) * 1000)
            if name == "worst":
                result["written"].append(counts["at_risk"] + counts["breached"])
                result["messages"].append(counts["messages"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, nargs="*", default=[1_000_000, 100_000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--quick", action="store_true", help="20,000 orders, SLA watch tick only (to iterate on the tick)"
    )
    parser.add_argument("--watch-only", action="store_true", help="skip the page benchmark")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.watch_only = [20_000], True
    medians: dict[int, float] = {}
    cpu_medians: dict[int, float] = {}
    for orders in args.orders:
        with tempfile.TemporaryDirectory() as folder:
            began = time.perf_counter()
            engine, actor = build(Path(folder) / "bench.db", orders)
            with Session(engine) as session:
                open_count = len(session.exec(select(Inquiry.id).where(Inquiry.status == "open")).all())
                events = session.exec(text("SELECT count(*) FROM inquiry_event")).one()[0]  # type: ignore[call-overload]
            print(
                f"store: {orders:,} orders, {INQUIRIES:,} inquiries ({open_count:,} open), {events:,} events "
                f"(built in {time.perf_counter() - began:.1f} s)"
            )
            if not args.watch_only:
                page, page_cpu = bench_page(engine, actor, args.runs)
                medians[orders] = statistics.median(page)
                cpu_medians[orders] = statistics.median(page_cpu)
                print(
                    f"  문의 page AppTest run as cs: median {medians[orders]:.1f} ms, "
                    f"min {min(page):.1f}, max {max(page):.1f} ({args.runs} runs); "
                    f"CPU median {statistics.median(page_cpu):.1f} ms"
                )
            watch = bench_watch(engine, max(3, args.runs // 3))
            med = {name: statistics.median(values) for name, values in watch.items()}
            print(
                f"  sla_watch tick, all {open_count:,} open due at once: median {med['worst']:.1f} ms "
                f"(CPU {med['worst_cpu']:.1f} ms, {int(med['written']):,} notifications, "
                f"{int(med['messages']):,} alert messages queued)"
            )
            print(
                f"  sla_watch tick over {open_count:,} open, nothing due (steady state): median "
                f"{med['steady']:.1f} ms (CPU {med['steady_cpu']:.1f} ms)"
            )
            with Session(engine) as session:
                config_began = time.perf_counter()
                sla_policy.load(session)
                print(f"  sla_policy.load: {(time.perf_counter() - config_began) * 1000:.1f} ms")
            engine.dispose()
    print(f"load average during run: {os.getloadavg()} on {os.cpu_count()} CPUs")
    if len(medians) >= 2:
        big, small = max(medians), min(medians)
        print(
            f"page median ratio {small:,} orders / {big:,} orders: wall {medians[small] / medians[big]:.2f}x, "
            f"CPU {cpu_medians[small] / cpu_medians[big]:.2f}x"
        )


if __name__ == "__main__":
    main()
