"""Benchmark: segment counts over 200,000 customers / 1,000,000 orders, and queuing a 100k campaign.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_campaigns \
        .venv/bin/python bench/campaigns.py [--customers 200000] [--orders 1000000]

The database at BENCH_DATABASE_URL is wiped and refilled (PostgreSQL: the public schema; SQLite:
the file). Data is generated inside the database with one INSERT ... SELECT per table (bulk), with
deterministic arithmetic instead of random() so every run measures the same shop.
Targets (issue 8): a count < 500 ms; queuing a 100,000-recipient campaign < 5 s. Each count is
also evaluated over the raw orders and must select the same customers as the summaries. On a
loaded machine read the CPU figures (client + PostgreSQL backend from /proc): wall time there is
mostly waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, func, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from core import campaigns, clock  # noqa: E402
from core.accounts.actor import Actor  # noqa: E402
from core.customers import summary as customer_summary  # noqa: E402
from core.db import is_postgres, make_engine, session_scope, upgrade  # noqa: E402
from core.models import Customer, Message, Role  # noqa: E402

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 12:00 KST: daytime, nothing held
STAFF = Actor(id=None, name="bench", role=Role.STAFF)


def reset(engine: Engine) -> None:
    if is_postgres(engine):
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        path = Path(engine.url.database)
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    upgrade(engine)


def load(engine: Engine, customers: int, orders: int) -> None:
    pg = is_postgres(engine)
    now = "'2026-11-23 03:00:00+00'::timestamptz" if pg else "'2026-11-23 03:00:00'"

    def days_ago(expr: str) -> str:
        if pg:
            return f"({now} - ({expr}) * interval '1 second')"
        return f"datetime({now}, '-' || ({expr}) || ' seconds')"

    def series(n: int) -> str:
        if pg:
            return f"generate_series(1::bigint, {n}) AS s(i)"
        return f"(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {n}) SELECT i FROM r) s"

    cast_text = "::text" if pg else ""
    true, false = ("true", "false") if pg else ("1", "0")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO product (name, category, price, is_tax_free, replenishment_days, is_subscription,"
                " is_active, created_at) SELECT '상품' || i"
                + cast_text
                + ", 'cat' || (i % 5)"
                + cast_text
                + ", 10000 + i * 1000, "
                + false
                + ", CASE WHEN i % 4 = 0 THEN 30 ELSE NULL END, "
                + false
                + ", "
                + true
                + ", "
                + now
                + " FROM "
                + series(20)
            )
        )
        phone = (
            "'010-' || lpad((i % 10000)::text, 4, '0') || '-' || lpad((i / 10000)::text, 4, '0')"
            if pg
            else "'010-' || i"
        )
        c.execute(
            text(
                "INSERT INTO customer (name, phone, is_channel_friend, public_id, ad_consent_at,"
                " night_ad_consent_at, ad_opt_out_at, created_at) SELECT '고객' || i"
                + cast_text
                + ", "
                + phone
                + ", i % 10 <> 0, 'p' || i"
                + cast_text
                + ", CASE WHEN i % 3 <> 0 THEN "
                + days_ago("86400 * 400")
                + " END"
                + ", CASE WHEN i % 7 = 0 THEN "
                + days_ago("86400 * 400")
                + " END"
                + ", CASE WHEN i % 50 = 0 THEN "
                + days_ago("86400 * 10")
                + " END, "
                + days_ago("86400 * 800")
                + " FROM "
                + series(customers)
            )
        )
        c.execute(
            text(
                "INSERT INTO orders (order_number, customer_id, total_amount, tax_free_amount, source, status,"
                " ordered_at, refunded_amount) SELECT 'b' || i"
                + cast_text
                + ", 1 + (i * 7919) % "
                + str(customers)
                + ", 10000 + (i * 37) % 190000, 0, 'chat',"
                " CASE WHEN i % 20 = 0 THEN 'refunded' ELSE 'paid' END, "
                + days_ago("((i * 13) % 730) * 86400 + (i * 17) % 86400")
                + ", 0 FROM "
                + series(orders)
            )
        )
        c.execute(
            text(
                "INSERT INTO order_item (order_id, product_id, product_name, quantity, unit_price, amount)"
                " SELECT id, 1 + id % 20, '상품' || (1 + id % 20)"
                + cast_text
                + ", 1, total_amount, total_amount FROM orders"
            )
        )
    started = time.perf_counter()
    with session_scope(engine) as session:
        customer_summary.rebuild(session)
    print(f"  customer summaries built in {time.perf_counter() - started:.1f} s (what the seed does)")
    with engine.begin() as c:
        c.execute(text("ANALYZE"))


SEGMENTS = {
    "VIP: 90일 30만원 이상": {"include": [{"type": "spent", "min_amount": 300000, "days": 90}]},
    "카테고리 cat1 최근 30일 구매": {"include": [{"type": "bought", "category": "cat1", "days": 30}]},
    "휴면 180일": {"include": [{"type": "dormant", "days": 180}]},
    "재구매 시기 (7일 내)": {"include": [{"type": "repurchase_due", "within_days": 7}]},
    "주문 5회 이상, VIP 제외": {
        "include": [{"type": "order_count", "min": 5}],
        "exclude": [{"type": "spent", "min_amount": 300000, "days": 90}],
    },
    "첫 구매 최근 60일": {"include": [{"type": "first_purchase", "days": 60}]},
}


def server_cpu(session: Session) -> float | None:
    """CPU seconds the PostgreSQL backend of this session has used (local server, /proc readable):
    with the client's CPU time it tells what the run costs on a quiet machine, whatever the load."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def calibrate(engine: Engine) -> float:
    """The floor on this machine: one plain GROUP BY over every paid order, no ChannelDesk code."""
    timings = []
    with engine.connect() as c:
        for _ in range(3):
            started = time.perf_counter()
            c.execute(
                text(
                    "SELECT customer_id, max(ordered_at) FROM orders WHERE status IN ('paid',"
                    " 'partially_refunded') GROUP BY customer_id"
                )
            ).all()
            timings.append((time.perf_counter() - started) * 1000)
    floor = statistics.median(timings)
    print(
        f"  machine floor: plain GROUP BY over all paid orders {floor:.0f} ms (os load {os.getloadavg()[0]:.1f})"
    )
    return floor


def bench_counts(engine: Engine) -> dict[str, float]:
    """Each segment 4 times (median of the last 3), then once over the raw orders: the same members."""
    figures = {}
    with Session(engine) as session:
        for name, rules in SEGMENTS.items():
            timings, cpu = [], []
            for _ in range(4):
                started, started_cpu = time.perf_counter(), time.process_time()
                server_before = server_cpu(session)
                counted = campaigns.count_segment(session, rules, now=NOW)
                server_after = server_cpu(session)
                timings.append((time.perf_counter() - started) * 1000)
                client = time.process_time() - started_cpu
                server = (
                    0.0 if server_before is None or server_after is None else server_after - server_before
                )
                cpu.append((client + server) * 1000)
                session.rollback()
            figures[name] = statistics.median(timings[1:])
            raw = session.execute(
                select(func.count())
                .select_from(Customer)
                .where(campaigns.segment_condition(session, rules, NOW, raw=True))
            ).scalar_one()
            print(
                f"  count {name:<28} members {counted.total:>7,}  reachable {counted.reachable:>7,}"
                f"  median {figures[name]:7.1f} ms (first {timings[0]:.0f} ms; cpu client+db {statistics.median(cpu[1:]):.0f} ms)"
                f"  raw orders agree: {'yes' if raw == counted.total else f'NO ({raw:,})'}"
                f"  load {os.getloadavg()[0]:.1f}"
            )
            if raw != counted.total:
                raise SystemExit(f"summary and raw orders disagree on {name!r}")
    return figures


def bench_queue(engine: Engine) -> float:
    """Every reachable channel friend (about 117,000 of 200,000): above the 100,000 target."""
    rules = {"include": [{"type": "channel_friend", "value": True}]}
    with session_scope(engine) as session:
        campaign = campaigns.create_campaign(
            session,
            STAFF,
            name="bench",
            bodies=["#{이름}님, 이번 주 특가! #{링크}"],
            rules=rules,
            options={"link_url": "https://shop.example/sale"},
        )
    with Session(engine) as session:
        reachable = campaigns.count_segment(session, rules, now=NOW, sample_size=0).reachable
    print(f"  reachable channel friends: {reachable:,}")
    steps: list[int] = []
    started, started_cpu = time.perf_counter(), time.process_time()
    with clock.frozen(NOW), session_scope(engine) as session:
        server_before = server_cpu(session)
        counts = campaigns.start(session, STAFF, campaign.id, now=NOW, progress=lambda d, t: steps.append(d))
        server_after = server_cpu(session)
    elapsed = time.perf_counter() - started
    client = time.process_time() - started_cpu
    server = None if server_before is None or server_after is None else server_after - server_before
    print(
        f"  queue CPU: client {client:.2f} s"
        + (f" + database backend {server:.2f} s = {client + server:.2f} s" if server is not None else "")
        + f" (wall {elapsed:.2f} s at load {os.getloadavg()[0]:.1f}; commit not included in the backend figure)"
    )
    with Session(engine) as session:
        stored = session.execute(
            select(func.count()).select_from(Message).where(Message.campaign_id == campaign.id)
        ).scalar()
    print(
        f"  queue campaign: {counts['queued']:,} messages ({stored:,} stored), {counts['recipients']:,}"
        f" recipients in {elapsed:.2f} s ({counts['queued'] / elapsed:,.0f}/s), {len(steps)} progress steps"
    )
    with clock.frozen(NOW), session_scope(engine) as session:
        again = time.perf_counter()
        try:
            campaigns.start(session, STAFF, campaign.id, now=NOW)
        except Exception as exc:  # noqa: BLE001 - show what the double click gets
            print(f"  second start: {type(exc).__name__} in {(time.perf_counter() - again) * 1000:.0f} ms")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the data of the previous run")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_campaigns")
    engine = make_engine(url)
    print(f"database: {engine.url.render_as_string(hide_password=True)}")
    if args.reuse:
        with engine.begin() as c:
            c.execute(text("DELETE FROM campaign_recipient"))
            c.execute(text("DELETE FROM message"))
            c.execute(text("DELETE FROM campaign"))
        print("reusing the data of the previous run")
    else:
        reset(engine)
        started = time.perf_counter()
        load(engine, args.customers, args.orders)
        print(
            f"loaded {args.customers:,} customers, {args.orders:,} orders (+items) in {time.perf_counter() - started:.1f} s"
        )
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
    calibrate(engine)
    figures = bench_counts(engine)
    worst = max(figures.values())
    print(f"segment count: worst median {worst:.1f} ms (target < 500 ms) {'OK' if worst < 500 else 'SLOW'}")
    elapsed = bench_queue(engine)
    print(f"queue: {elapsed:.2f} s (target < 5 s) {'OK' if elapsed < 5 else 'SLOW'}")


if __name__ == "__main__":
    main()
