"""Benchmark: the 문의 desk with a 1,000-open-inquiry queue.

    .venv/bin/python bench/desk.py              # 1,000 open inquiries, 10 runs each
    .venv/bin/python bench/desk.py --open 3000 --runs 5

Data (SQLite file in a temp folder, through the real services): N open inquiries over N/2 customers,
each customer with two orders and two sandbox-shaped payments (every 10th customer's two payments
are a look-alike pair: same amount three minutes apart), so the customer panel has work to do.

Figures:
- the whole 문의 page script (AppTest through app.py as cs), queue of 100 shown (the default) and of
  500 shown, the first inquiry open with its customer panel and macros;
- what the live fragment adds each second per open page: the signals lookup (two max() queries);
- bulk: assign 100 and resolve 100 inquiries in one all-or-nothing transaction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from core import clock  # noqa: E402
from core.accounts.actor import Actor  # noqa: E402
from core.accounts.auth import create_user  # noqa: E402
from core.db import make_engine, session_scope, upgrade  # noqa: E402
from core.inquiries import queue as inquiry_queue  # noqa: E402
from core.inquiries import service as inquiries  # noqa: E402
from core.models import Customer, Order, OrderItem, Payment, Role  # noqa: E402

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # Monday 11:30 KST
BODIES = ["결제 오류가 났어요", "두 번 결제됐어요", "환불해 주세요", "영수증 보내 주세요", "배송 언제 와요?"]


def build(path: Path, open_count: int) -> tuple[Engine, Actor]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine) as session:
        user = create_user(session, None, username="cs1", display_name="CS 담당", role="cs", password="password-123")
        actor = Actor(id=user.id, name=user.display_name, role=Role.CS)
        customers = []
        for c in range(max(1, open_count // 2)):
            customer = Customer(name=f"고객{c}😀", phone=f"010{c:08d}")
            session.add(customer)
            customers.append(customer)
        session.flush()
        for c, customer in enumerate(customers):
            for n in range(2):
                at = NOW - timedelta(hours=2) + timedelta(minutes=3 * n)
                amount = 39000 if c % 10 == 0 else 39000 + 1000 * n
                order = Order(order_number=f"B-{c}-{n}", customer_id=customer.id, total_amount=amount,
                              status="paid", ordered_at=at, paid_at=at)
                session.add(order)
                session.flush()
                session.add(OrderItem(order_id=order.id, product_name="원두", quantity=1, unit_price=amount, amount=amount))
                session.add(Payment(order_id=order.id, customer_id=customer.id, gateway="sandbox",
                                    gateway_tid=f"T-{c}-{n}", amount=amount, status="approved",
                                    idempotency_key=f"b:{c}:{n}", approved_at=at, created_at=at))
        session.flush()
        for i in range(open_count):
            with clock.frozen(NOW - timedelta(minutes=open_count - i)):
                inquiries.create_inquiry(
                    session, actor, customer_id=customers[i % len(customers)].id, body=BODIES[i % len(BODIES)]
                )
        session.commit()
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, actor


def _median_ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"


def bench_page(engine: Engine, actor: Actor, runs: int, shown: int) -> tuple[list[float], list[float]]:
    from tests.ui_helpers import open_app, texts

    clock.set_now(NOW)
    at = open_app(engine, actor, "pages/inquiries.py", timeout=120)
    assert not at.exception, at.exception
    if shown != 100:
        at.selectbox(key="inq_f_limit").select(shown).run()
    assert f"중 {shown:,}건 표시" in texts(at), "the 문의 queue did not render"
    assert "고객의 결제" in texts(at), "no customer panel"
    wall, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        at.run()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert not at.exception, at.exception
    clock.set_now(None)
    return wall, cpu


def bench_signals(engine: Engine, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        with session_scope(engine) as session:
            inquiry_queue.signals(session)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def bench_bulk(engine: Engine, actor: Actor) -> tuple[float, float]:
    with session_scope(engine) as session:
        rows, _ = inquiry_queue.queue(session, NOW, limit=100)
    ids = [r.id for r in rows]
    with clock.frozen(NOW):
        began = time.perf_counter()
        with session_scope(engine) as session:
            inquiries.bulk_assign(session, actor, ids, actor.id)
        assign_ms = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        with session_scope(engine) as session:
            inquiries.bulk_resolve(session, actor, ids)
        resolve_ms = (time.perf_counter() - began) * 1000
    return assign_ms, resolve_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        engine, actor = build(Path(folder) / "desk.db", args.open)
        os.environ["DATABASE_URL"] = str(engine.url)
        print(f"store: {args.open:,} open inquiries built in {time.perf_counter() - began:.1f} s")
        for shown in (100, 500):
            wall, cpu = bench_page(engine, actor, args.runs, shown)
            print(f"  문의 page AppTest run as cs, {shown} rows shown: {_median_ms(wall)} "
                  f"(CPU median {statistics.median(cpu):.1f} ms, {args.runs} runs)")
        print(f"  live signals lookup (per open page per second): {_median_ms(bench_signals(engine, 1000))} (1,000 runs)")
        assign_ms, resolve_ms = bench_bulk(engine, actor)
        print(f"  bulk: assign 100 in {assign_ms:.0f} ms, resolve 100 in {resolve_ms:.0f} ms (one transaction each)")
        engine.dispose()


if __name__ == "__main__":
    main()
