"""Payments benchmarks: payment-link creation (sandbox), order search over 1M orders, CSV import of 100k rows.

    .venv/bin/python bench/payments.py                       # SQLite in a temp folder
    .venv/bin/python bench/payments.py --orders 200000       # smaller search corpus
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_payments \
        .venv/bin/python bench/payments.py                   # SQLite, then PostgreSQL
    .venv/bin/python bench/payments.py --only import         # just the CSV import, on each backend

Goals (issue 4): link creation < 50 ms median; search < 100 ms median; 100k-row import < 30 s.
With BENCH_DATABASE_URL (or --database-url) every part runs on SQLite and on that PostgreSQL
database, and both are reported. Its schema is DROPPED and recreated: point it at a scratch database.
Each part prints wall and CPU time and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.accounts.actor import Actor  # noqa: E402
from core.db import is_postgres, make_engine, upgrade  # noqa: E402
from core.models import Customer, Order, Payment, Role  # noqa: E402
from core.payments.gateways.router import PaymentRouter  # noqa: E402
from core.payments.gateways.sandbox import SandboxGateway  # noqa: E402
from core.payments.link_checkout import start_payment  # noqa: E402
from core.payments.links import create_payment_link  # noqa: E402
from core.payments.order_import import import_orders  # noqa: E402
from core.payments.queries import search_orders  # noqa: E402

OWNER = Actor(id=None, name="bench", role=Role.OWNER)
SURNAMES = "김이박최정강조윤장임한오서신권황안송류전홍"
GIVEN = ["민지", "서준", "하은", "도윤", "수아", "지우", "예준", "서연", "시우", "지민", "하준", "채원"]
PRODUCTS = ["수분크림 50ml", "비타민C 세럼", "클렌징 폼", "선크림 SPF50", "핸드크림 세트", "월간 샘플 박스"]


def fresh_engine(url: str | None, folder: Path, name: str) -> Engine:
    if url is None:
        engine = make_engine(f"sqlite:///{folder / name}.db")
    else:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return engine


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_links(engine: Engine, count: int = 200) -> tuple[float, float]:
    """Median ms to create a link (staff) and to start paying it (customer: ready at the sandbox)."""
    router = PaymentRouter(SandboxGateway(engine))
    create, start = [], []
    with Session(engine, expire_on_commit=False) as session:
        customer = Customer(name="벤치 고객", phone="01000000000")
        session.add(customer)
        session.commit()
        for i in range(count):
            began = time.perf_counter()
            link = create_payment_link(
                session,
                OWNER,
                item_name=f"맞춤 견적 {i}",
                amount=10_000 + i,
                customer_id=customer.id,
                router=router,
            )
            create.append(time.perf_counter() - began)
            began = time.perf_counter()
            start_payment(session, link.code, router=router)
            start.append(time.perf_counter() - began)
    return median_ms(create), median_ms(start)


def fill_orders(engine: Engine, total: int, customers: int) -> list[tuple[str, str, str]]:
    """Bulk-insert `total` orders (one payment each; items skipped for speed); returns sample search keys."""
    rng = random.Random(7)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    names = [f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)}{i % 97}" for i in range(customers)]
    phones = [f"010{rng.randrange(10**8):08d}" for _ in range(customers)]
    with engine.begin() as connection:
        chunk = 20_000
        for start in range(0, customers, chunk):
            connection.execute(
                insert(Customer.__table__),
                [
                    {
                        "name": names[i],
                        "phone": phones[i],
                        "is_channel_friend": True,
                        "public_id": f"c{i:019d}",
                        "created_at": now,
                        "ad_consent_at": None,
                        "night_ad_consent_at": None,
                        "ad_opt_out_at": None,
                    }
                    for i in range(start, min(customers, start + chunk))
                ],
            )
        order_id = 0
        for start in range(0, total, chunk):
            orders, items, payments = [], [], []
            for _ in range(start, min(total, start + chunk)):
                order_id += 1
                customer = rng.randrange(customers) + 1
                at = now - timedelta(minutes=rng.randrange(60 * 24 * 730))
                amount = rng.randrange(5, 100) * 1000
                status = rng.choices(["paid", "refunded", "partially_refunded", "canceled"], [90, 4, 2, 4])[0]
                orders.append(
                    {
                        "id": order_id,
                        "order_number": f"{at:%Y%m%d}-{order_id:07d}",
                        "customer_id": customer,
                        "total_amount": amount,
                        "tax_free_amount": 0,
                        "source": "chat",
                        "status": status,
                        "ordered_at": at,
                        "paid_at": at,
                        "refunded_amount": 0,
                        "shipping_method": None,
                        "expected_ship_date": None,
                        "tracking_url": None,
                        "delivered_at": None,
                        "payment_link_id": None,
                        "subscription_id": None,
                    }
                )
                items.append(
                    {
                        "order_id": order_id,
                        "product_id": None,
                        "product_name": rng.choice(PRODUCTS),
                        "quantity": 1,
                        "unit_price": amount,
                        "amount": amount,
                    }
                )
                payments.append(
                    {
                        "order_id": order_id,
                        "customer_id": customer,
                        "gateway": "kakaopay",
                        "gateway_tid": None,
                        "method": rng.choice(["CARD", "MONEY"]),
                        "amount": amount,
                        "tax_free_amount": 0,
                        "refunded_amount": 0,
                        "status": "approved",
                        "idempotency_key": f"b{order_id}",
                        "approved_at": at,
                        "failure_code": None,
                        "failure_message": None,
                        "routing_log": [],
                        "created_at": at,
                    }
                )
            connection.execute(insert(Order.__table__), orders)
            connection.execute(insert(Payment.__table__), payments)
        if is_postgres(engine):
            connection.execute(text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))"))
            connection.execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
    picks = [rng.randrange(customers) for _ in range(20)]
    return [(names[i], phones[i], f"{(now - timedelta(days=rng.randrange(700))):%Y%m%d}") for i in picks]


def bench_search(engine: Engine, keys: list[tuple[str, str, str]]) -> dict[str, float]:
    cases = {
        "no filter (newest 50)": lambda s, k: search_orders(s),
        "order number prefix": lambda s, k: search_orders(s, query=k[2]),
        "customer name": lambda s, k: search_orders(s, query=k[0]),
        "phone": lambda s, k: search_orders(s, query=k[1]),
        "status=refunded": lambda s, k: search_orders(s, status="refunded"),
        "date range (1 month)": lambda s, k: search_orders(
            s, date_from=date(2026, 3, 1), date_to=date(2026, 3, 31)
        ),
        "method=MONEY": lambda s, k: search_orders(s, payment_method="MONEY"),
        "name + status + date": lambda s, k: search_orders(
            s, query=k[0], status="paid", date_from=date(2025, 1, 1)
        ),
    }
    results = {}
    with Session(engine) as session:
        for label, case in cases.items():
            samples = []
            for key in keys:
                start = time.perf_counter()
                rows = case(session, key)
                samples.append(time.perf_counter() - start)
                assert isinstance(rows, list)
            results[label] = median_ms(samples)
    return results


def sample_csv(rows: int) -> bytes:
    rng = random.Random(11)
    lines = [
        "order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price,payment_method"
    ]
    for i in range(rows):
        lines.append(
            f"IMP-{i:07d},2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} 10:{i % 60:02d},"
            f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)},010-{rng.randrange(10000):04d}-{i % 10000:04d},"
            f"{rng.choice(PRODUCTS)},{rng.randrange(1, 4)},{rng.randrange(5, 100) * 1000},"
            f"{rng.choice(['CARD', 'MONEY'])}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def bench_import(engine: Engine, rows: int) -> tuple[Timing, Timing]:
    data = sample_csv(rows)
    timings = []
    with Session(engine) as session:
        for expected_created in (rows, 0):
            start, cpu = time.perf_counter(), time.process_time()
            result = import_orders(session, OWNER, data)
            session.commit()
            timings.append(Timing(time.perf_counter() - start, time.process_time() - cpu))
            assert result.created == expected_created, result
            assert result.created + result.skipped_existing == rows, result
    return timings[0], timings[1]


def measured(label: str) -> str:
    return f"[{label}; load {os.getloadavg()[0]:.1f}]"


def run_backend(args: argparse.Namespace, url: str | None, folder: Path) -> None:
    backend = "PostgreSQL" if url else "SQLite"
    print(f"== backend: {backend}")
    parts = set(args.only or ["links", "search", "import"])
    if "links" in parts:
        engine = fresh_engine(url, folder, "links")
        cpu = time.process_time()
        created, started = bench_links(engine)
        print(
            f"{backend}: payment link creation, median: {created:.1f} ms  (goal < 50 ms); "
            f"customer starts paying (ready at the sandbox), median: {started:.1f} ms "
            f"{measured(f'cpu {time.process_time() - cpu:.1f} s for 200 links')}"
        )
    if "search" in parts:
        engine = fresh_engine(url, folder, "search")
        start = time.perf_counter()
        keys = fill_orders(engine, args.orders, args.customers)
        print(
            f"{backend}: filled {args.orders:,} orders / {args.customers:,} customers "
            f"in {time.perf_counter() - start:.0f} s"
        )
        cpu = time.process_time()
        results = bench_search(engine, keys)
        load = measured(f"cpu {time.process_time() - cpu:.1f} s for all cases")
        for label, value in results.items():
            print(
                f"{backend}: order search over {args.orders:,} orders, {label}: "
                f"median {value:.1f} ms  (goal < 100 ms)"
            )
        print(f"{backend}: search {load}")
    if "import" in parts:
        engine = fresh_engine(url, folder, "import")
        first, second = bench_import(engine, args.import_rows)
        print(
            f"{backend}: CSV import of {args.import_rows:,} rows: {first.wall:.1f} s wall, "
            f"{first.cpu:.1f} s CPU (goal < 30 s) {measured('at the end')}; "
            f"re-import (all skipped): {second.wall:.1f} s wall, {second.cpu:.1f} s CPU"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="scratch PostgreSQL database, also run after SQLite (default $BENCH_DATABASE_URL; schema is dropped)",
    )
    parser.add_argument("--only", action="append", choices=["links", "search", "import"])
    parser.add_argument("--postgres-only", action="store_true", help="skip the SQLite run")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_payments_"))
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores, shared machine)")
    backends = ([] if args.postgres_only and args.database_url else [None]) + (
        [args.database_url] if args.database_url else []
    )
    for url in backends:
        run_backend(args, url, folder)


if __name__ == "__main__":
    main()
