"""Customer identity benchmarks (issue 15): canonical numbers and the merge.

    .venv/bin/python -m bench.customers                       # SQLite: all three parts
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_h1 .venv/bin/python -m bench.customers
    .venv/bin/python -m bench.customers --only merge --customers 200000 --duplicates 0.05

Parts:
- identity: `identify` over the demo seed's phone shape for --seed-customers numbers (what the
  seed adds per customer), and optionally (--seed-orders N) the demo seed itself on SQLite.
- import: CSV import of --import-rows rows whose phones come in mixed shapes (hyphens, plain, +82,
  full-width), 1 person per 5 rows; checks one customer per number. Goal < 30 s.
- merge: migration 0002 on a store at 0001 with --customers rows of which --duplicates are a person
  typed another way, one order each (all re-pointed): the backfill, the merge and the unique index,
  timed as `upgrade` runs it. Goal < 60 s on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.customers.identity import identify
from core.db import alembic_config, make_engine, upgrade
from core.models import Role
from core.payments.order_import import import_orders

OWNER = Actor(id=None, name="bench", role=Role.OWNER)
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load ?"


def _fresh(url: str | None, folder: Path, name: str, revision: str = "head") -> sa.Engine:
    if url is None:
        url = f"sqlite:///{folder / name}.db"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    if revision == "head":
        upgrade(engine)
    else:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    return engine


def shapes(national: str, rng: random.Random) -> str:
    """One of the ways the same number arrives."""
    pretty = f"{national[:3]}-{national[3:7]}-{national[7:]}"
    return rng.choice(
        [pretty, national, f"+82 {national[1:3]} {national[3:7]} {national[7:]}", pretty.translate(FULL_WIDTH)]
    )


def bench_identity(customers: int, seed_orders: int | None) -> None:
    rng = random.Random(7)
    numbers = [f"010-{n // 10000:04d}-{n % 10000:04d}" for n in rng.sample(range(10**8), customers)]
    start, cpu = time.perf_counter(), time.process_time()
    mobiles = sum(identify(n).is_mobile for n in numbers)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"identity: {customers:,} seed-shaped numbers in {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"({wall / customers * 1e6:.0f} µs each; {mobiles:,} mobile) [{_load()}]"
    )
    if seed_orders:
        from core.demo.seed import seed_demo

        folder = Path(tempfile.mkdtemp(prefix="bench-customers-seed-"))
        engine = _fresh(None, folder, "seed")
        now = clock.parse_instant("2026-11-23T12:00:00+09:00")
        start, cpu = time.perf_counter(), time.process_time()
        seed_demo(engine, customers=customers, orders=seed_orders, seed=2026, now=now)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        with engine.connect() as connection:
            dupes = connection.execute(
                sa.text("SELECT count(*) FROM (SELECT mobile FROM customer WHERE mobile IS NOT NULL "
                        "GROUP BY mobile HAVING count(*) > 1) d")
            ).scalar()
        engine.dispose()
        print(
            f"seed: {seed_orders:,} orders / {customers:,} customers in {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"{dupes} numbers on two rows [{_load()}]"
        )


def sample_csv(rows: int, people: int) -> tuple[bytes, int]:
    rng = random.Random(11)
    # Mobile numbers only: a non-mobile is kept as typed, so its four shapes stay four rows by design.
    numbers = [n for n in (f"010{n:08d}" for n in rng.sample(range(10**8), people + people // 50)) if identify(n).is_mobile]
    numbers = numbers[:people]
    lines = ["order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price"]
    for i in range(rows):
        national = numbers[i % people]
        lines.append(
            f"IMP-{i:07d},2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} 10:{i % 60:02d},"
            f"고객{i % people},{shapes(national, rng)},수분크림 50ml,1,{rng.randrange(5, 100) * 1000}"
        )
    mobile = sum(identify(n).is_mobile for n in numbers)
    return ("\n".join(lines) + "\n").encode("utf-8"), mobile


def bench_import(url: str | None, folder: Path, rows: int) -> None:
    engine = _fresh(url, folder, "import")
    data, people = sample_csv(rows, rows // 5)
    with Session(engine) as session:
        start, cpu = time.perf_counter(), time.process_time()
        result = import_orders(session, OWNER, data)
        session.commit()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    with engine.connect() as connection:
        customers = connection.execute(sa.text("SELECT count(*) FROM customer")).scalar()
    engine.dispose()
    verdict = "OK" if wall < 30 else "OVER"
    print(
        f"{engine.dialect.name}: CSV import of {rows:,} rows (phones in 4 shapes, {rows // 5:,} people): "
        f"{wall:.1f} s wall, {cpu:.1f} s CPU; {result.created:,} orders, {customers:,} customers "
        f"(expected {rows // 5:,}; {people:,} of them mobile) goal < 30 s: {verdict} [{_load()}]"
    )
    assert customers == rows // 5, "one customer per number"


def bench_merge(url: str | None, folder: Path, total: int, share: float) -> None:
    """A store at 0001 with `total` customers, `share` of them a second row of someone, then 0002."""
    engine = _fresh(url, folder, "merge", revision="0001")
    rng = random.Random(5)
    dup_rows = int(total * share)
    people = total - dup_rows
    numbers = [f"010{n:08d}" for n in rng.sample(range(10**8), people)]
    meta = sa.MetaData()
    meta.reflect(engine, only=["customer", "orders"])
    customer, orders = meta.tables["customer"], meta.tables["orders"]
    at = clock.parse_instant("2026-01-01T00:00:00+09:00")
    fill_start = time.perf_counter()
    with engine.begin() as connection:
        batch = []
        for i in range(total):
            national = numbers[i] if i < people else numbers[rng.randrange(people)]
            batch.append(
                {
                    "id": i + 1,
                    "name": f"고객{i}",
                    "phone": shapes(national, rng),
                    "is_channel_friend": True,
                    "public_id": f"{i:020d}",
                    "created_at": at,
                    "ad_consent_at": at if rng.random() < 0.6 else None,
                    "ad_opt_out_at": at if rng.random() < 0.05 else None,
                }
            )
            if len(batch) == 10_000:
                connection.execute(customer.insert(), batch)
                batch = []
        if batch:
            connection.execute(customer.insert(), batch)
        batch = []
        for i in range(total):
            batch.append(
                {
                    "order_number": f"O-{i}", "customer_id": i + 1, "total_amount": 10_000, "tax_free_amount": 0,
                    "refunded_amount": 0, "status": "paid", "source": "import", "ordered_at": at, "paid_at": at,
                }
            )
            if len(batch) == 10_000:
                connection.execute(orders.insert(), batch)
                batch = []
        if batch:
            connection.execute(orders.insert(), batch)
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE"))
    fill = time.perf_counter() - fill_start
    start, cpu = time.perf_counter(), time.process_time()
    upgrade(engine)  # 0002: backfill, merge, unique index
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    with engine.connect() as connection:
        left = connection.execute(sa.text("SELECT count(*) FROM customer")).scalar()
        pointing = connection.execute(
            sa.text("SELECT count(*) FROM orders o JOIN customer c ON c.id = o.customer_id")
        ).scalar()
        merges = connection.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'customer.merge'")).scalar()
    engine.dispose()
    verdict = "OK" if wall < 60 else "OVER"
    print(
        f"{engine.dialect.name}: migration 0002 on {total:,} customers ({dup_rows:,} duplicate rows = "
        f"{share:.0%}), {total:,} orders: {wall:.1f} s wall, {cpu:.1f} s CPU (client); "
        f"{left:,} customers left, {merges:,} numbers merged (audited), {pointing:,} orders point at a customer; "
        f"fill {fill:.1f} s; goal < 60 s: {verdict} [{_load()}]"
    )
    assert pointing == total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["identity", "import", "merge"], action="append")
    parser.add_argument("--seed-customers", type=int, default=100_000)
    parser.add_argument("--seed-orders", type=int, default=None, help="also run the demo seed (SQLite)")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL")
    parts = set(args.only or ["identity", "import", "merge"])
    folder = Path(tempfile.mkdtemp(prefix="bench-customers-"))
    if "identity" in parts:
        bench_identity(args.seed_customers, args.seed_orders)
    if "import" in parts:
        bench_import(url, folder, args.import_rows)
    if "merge" in parts:
        bench_merge(url, folder, args.customers, args.duplicates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
