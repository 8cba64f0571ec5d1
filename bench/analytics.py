"""Benchmark of the 매출 page at 100,000 and 1,000,000 orders (not part of the test suite).

    .venv/bin/python -m bench.analytics                 # both sizes, SQLite files under bench/.data/
    .venv/bin/python -m bench.analytics --sizes 100000  # one size
    .venv/bin/python -m bench.analytics --reuse         # keep already generated files

For each size it bulk-inserts a shop (two years of orders, items, payments, refunds, payment
links, subscriptions and charges), builds the rollups as the worker would, then times the whole
매출 page script in AppTest as the owner:
- cold: st.cache_data cleared and a new AppTest session (the engine, like in a running server,
  stays in st.cache_resource; Python modules are already imported),
- warm: the same session run again (data unchanged: the figures come from the cache).
It prints both sizes, the growth ratio, and the daily revenue series computed by DuckDB from the
same rows (loaded into DuckDB beforehand; the load is not timed) against ours (core.analytics
revenue_series over the whole two years, cold), as a ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import analytics, clock  # noqa: E402
from core.db import make_engine, upgrade  # noqa: E402
from tests import ui_helpers  # noqa: E402, F401  (AppTest serves pages like the running app)

DATA = ROOT / "bench" / ".data"
DAYS = 730
STAMP = "%Y-%m-%d %H:%M:%S.%f"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime(STAMP)


def generate(path: Path, orders: int, seed: int = 42) -> None:
    """Bulk-insert a shop with `orders` orders ending now (raw sqlite3, executemany)."""
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(seed)
    now = clock.now()
    start = now - timedelta(days=DAYS)
    span = int((now - start).total_seconds()) - 60
    n_customers = max(100, orders // 5)
    n_products = 60
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    created = _ts(start)
    con.executemany(
        "INSERT INTO product (id, name, category, price, is_tax_free, is_subscription, is_active, deleted_at, "
        "created_at) VALUES (?, ?, '기타', ?, 0, 0, ?, ?, ?)",
        [
            (i, f"상품 {i:02d}", 5_000 + 1_000 * i, i % 20 != 0, _ts(now) if i % 20 == 0 else None, created)
            for i in range(1, n_products + 1)
        ],
    )
    con.executemany(
        "INSERT INTO customer (id, name, phone, is_channel_friend, public_id, created_at) VALUES (?, ?, NULL, 1, ?, ?)",
        [(i, f"고객{i}", f"c{i:019d}", created) for i in range(1, n_customers + 1)],
    )
    order_rows, item_rows, payment_rows, refund_rows = [], [], [], []
    item_id = 0
    for oid in range(1, orders + 1):
        paid = start + timedelta(seconds=int(span * (rng.random() ** 0.8)))
        customer = 1 + int(n_customers * rng.random() ** 2)
        n_items = 1 if rng.random() < 0.6 else rng.randint(2, 3)
        total = 0
        for _ in range(n_items):
            item_id += 1
            product = 1 + int(n_products * rng.random() ** 1.5)
            quantity = rng.randint(1, 3)
            amount = quantity * (5_000 + 1_000 * product)
            total += amount
            item_rows.append(
                (item_id, oid, product, f"상품 {product:02d}", quantity, amount // quantity, amount)
            )
        roll = rng.random()
        status = "paid"
        paid_at: str | None = _ts(paid)
        if roll < 0.03:
            status, paid_at = "pending", None
        elif roll < 0.09:
            status = "partially_refunded" if roll < 0.07 else "refunded"
            amount = total if status == "refunded" else rng.randint(1, total)
            done = min(paid + timedelta(hours=rng.randint(1, 96)), now - timedelta(minutes=1))
            refund_rows.append((oid, oid, amount, f"r{oid}", _ts(done), _ts(done)))
        order_rows.append(
            (oid, f"O{oid:010d}", customer, total, status, _ts(paid - timedelta(minutes=3)), paid_at)
        )
        if paid_at is not None:
            method = "CARD" if rng.random() < 0.7 else "MONEY"
            payment_rows.append((oid, oid, customer, method, total, f"p{oid}", paid_at, paid_at))
    con.executemany(
        "INSERT INTO orders (id, order_number, customer_id, total_amount, tax_free_amount, source, status, "
        "ordered_at, paid_at, refunded_amount) VALUES (?, ?, ?, ?, 0, 'chat', ?, ?, ?, 0)",
        order_rows,
    )
    con.executemany(
        "INSERT INTO order_item (id, order_id, product_id, product_name, quantity, unit_price, amount) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        item_rows,
    )
    con.executemany(
        "INSERT INTO payment (id, order_id, customer_id, gateway, method, amount, tax_free_amount, refunded_amount, "
        "status, idempotency_key, approved_at, routing_log, created_at) "
        "VALUES (?, ?, ?, 'sandbox', ?, ?, 0, 0, 'approved', ?, ?, '[]', ?)",
        payment_rows,
    )
    con.executemany(
        "INSERT INTO refund (payment_id, order_id, amount, tax_free_amount, reason, status, idempotency_key, "
        "gateway_response, created_at, completed_at) VALUES (?, ?, ?, 0, '변심', 'succeeded', ?, '{}', ?, ?)",
        refund_rows,
    )
    links = []
    for lid in range(1, orders // 10 + 1):
        at = start + timedelta(seconds=rng.randrange(span))
        roll = rng.random()
        status = (
            "paid"
            if roll < 0.45
            else "opened"
            if roll < 0.7
            else "method_selected"
            if roll < 0.8
            else "created"
        )
        opened = _ts(at + timedelta(minutes=5)) if status != "created" else None
        paid_at = _ts(at + timedelta(minutes=9)) if status == "paid" else None
        links.append(
            (lid, f"L{lid}", 1 + lid % n_products, "결제 링크", 10_000, status, _ts(at), opened, paid_at)
        )
    con.executemany(
        "INSERT INTO payment_link (id, code, product_id, item_name, amount, tax_free_amount, status, created_at, "
        "opened_at, paid_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        links,
    )
    con.execute(
        "INSERT INTO subscription_plan (id, name, amount, tax_free_amount, interval_unit, interval_count, is_active) "
        "VALUES (1, '월회비', 39000, 0, 'month', 1, 1)"
    )
    subs, charges = [], []
    for sid in range(1, 2_001):
        began = start + timedelta(seconds=rng.randrange(span))
        canceled = began + timedelta(days=rng.randint(30, 600)) if rng.random() < 0.3 else None
        if canceled and canceled > now:
            canceled = None
        subs.append(
            (
                sid,
                1 + sid % n_customers,
                39_000,
                "canceled" if canceled else "active",
                began.day % 28 + 1,
                _ts(began),
                _ts(canceled) if canceled else None,
                _ts(began),
            )
        )
        period = clock.to_kst(began).date()
        end = clock.to_kst(canceled or now).date()
        k = 0
        while period <= end:
            status = "failed" if rng.random() < 0.05 else "succeeded"
            charges.append((sid, period.isoformat(), 39_000, status, f"ch-{sid}-{k}", _ts(now), _ts(now)))
            period = analytics.add_months(period, 1).replace(day=min(period.day, 28))
            k += 1
    con.executemany(
        "INSERT INTO subscription (id, customer_id, plan_id, amount, status, anchor_day, started_at, canceled_at, "
        "cancel_at_period_end, created_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, 0, ?)",
        subs,
    )
    con.executemany(
        "INSERT INTO subscription_charge (subscription_id, period, amount, status, attempt_count, idempotency_key, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
        charges,
    )
    con.commit()
    con.execute("ANALYZE")
    con.close()


def time_page(path: Path, runs: int) -> dict[str, list[float]]:
    """Wall and CPU (process) times in ms of the 매출 page script in AppTest as the owner, cold and warm.

    CPU time is reported too because a shared machine's load inflates wall time: it is what the
    page costs whatever else runs.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.accounts.actor import Actor
    from core.config import get_settings
    from core.models import Role

    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    get_settings.cache_clear()
    owner = Actor(id=1, name="사장님", role=Role.OWNER)
    times: dict[str, list[float]] = {"cold": [], "cold_cpu": [], "warm": [], "warm_cpu": []}

    def timed(at: AppTest, kind: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        at.run()
        times[kind].append((time.perf_counter() - wall) * 1000)
        times[f"{kind}_cpu"].append((time.process_time() - cpu) * 1000)
        if at.exception:
            raise SystemExit(f"page failed: {at.exception}")

    warmup = AppTest.from_file(str(ROOT / "pages" / "sales.py"), default_timeout=120)
    warmup.session_state["actor"] = owner
    warmup.run()  # imports and the engine (a running server has them); not counted
    for _ in range(runs):
        st.cache_data.clear()
        at = AppTest.from_file(str(ROOT / "pages" / "sales.py"), default_timeout=120)
        at.session_state["actor"] = owner
        timed(at, "cold")
        for _ in range(3):
            timed(at, "warm")
    return times


def duckdb_ratio(path: Path, repeats: int = 5) -> tuple[float, float]:
    """(our ms, DuckDB ms) for the two-year daily revenue series (gross, refunds, orders by KST day)."""
    import duckdb

    con = sqlite3.connect(path)
    orders = con.execute(
        "SELECT id, total_amount, paid_at FROM orders WHERE paid_at IS NOT NULL "
        "AND status IN ('paid', 'partially_refunded', 'refunded')"
    ).fetchall()
    refunds = con.execute(
        "SELECT amount, COALESCE(completed_at, created_at) FROM refund WHERE status = 'succeeded'"
    ).fetchall()
    con.close()
    duck = duckdb.connect()
    duck.execute("CREATE TABLE orders (id BIGINT, total BIGINT, paid_at TIMESTAMP)")
    duck.execute("CREATE TABLE refunds (amount BIGINT, refunded_at TIMESTAMP)")
    import pandas as pd

    frame = pd.DataFrame(orders, columns=["id", "total", "paid_at"])
    frame["paid_at"] = pd.to_datetime(frame["paid_at"])
    rframe = pd.DataFrame(refunds, columns=["amount", "refunded_at"])
    rframe["refunded_at"] = pd.to_datetime(rframe["refunded_at"])
    duck.register("orders_frame", frame)
    duck.register("refunds_frame", rframe)
    duck.execute("INSERT INTO orders SELECT * FROM orders_frame")
    duck.execute("INSERT INTO refunds SELECT * FROM refunds_frame")
    today = clock.today_kst()
    first = today - timedelta(days=DAYS)
    query = """
        WITH s AS (SELECT CAST(paid_at + INTERVAL 9 HOUR AS DATE) AS day, COUNT(*) AS orders, SUM(total) AS gross
                   FROM orders GROUP BY 1),
             r AS (SELECT CAST(refunded_at + INTERVAL 9 HOUR AS DATE) AS day, SUM(amount) AS refunds FROM refunds GROUP BY 1)
        SELECT COALESCE(s.day, r.day) AS day, COALESCE(orders, 0), COALESCE(gross, 0), COALESCE(refunds, 0)
        FROM s FULL OUTER JOIN r ON s.day = r.day WHERE COALESCE(s.day, r.day) BETWEEN ? AND ? ORDER BY 1
    """
    duck_times = []
    for _ in range(repeats):
        began = time.perf_counter()
        duck_rows = duck.execute(query, [first, today]).fetchall()
        duck_times.append((time.perf_counter() - began) * 1000)
    engine = make_engine(f"sqlite:///{path}")
    from core.db import session_scope

    our_times = []
    for _ in range(repeats):
        began = time.perf_counter()
        with session_scope(engine) as session:
            ours = analytics.revenue_series(session, first, today, "day")
        our_times.append((time.perf_counter() - began) * 1000)
    engine.dispose()
    ours_map = {p.period: (p.orders, p.gross, p.refunds) for p in ours if p.orders or p.refunds}
    duck_map = {d: (int(o), int(g), int(r)) for d, o, g, r in duck_rows}
    if ours_map != duck_map:
        raise SystemExit("DuckDB and core.analytics disagree on the daily revenue series")
    return statistics.median(our_times), statistics.median(duck_times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=5, help="cold runs per size (3 warm runs after each)")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files under bench/.data/")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    results = {}
    for size in args.sizes:
        path = DATA / f"analytics_{size}.db"
        if not (args.reuse and path.exists()):
            began = time.perf_counter()
            generate(path, size)
            print(f"[{size:,}] generated in {time.perf_counter() - began:.1f} s -> {path}")
            engine = make_engine(f"sqlite:///{path}")
            began = time.perf_counter()
            counts = analytics.rebuild_rollups(engine)
            engine.dispose()
            print(f"[{size:,}] rollups rebuilt in {time.perf_counter() - began:.1f} s {counts}")
        # The worker's 10-minute job: add what came since the watermark (today's sales so far).
        engine = make_engine(f"sqlite:///{path}")
        began = time.perf_counter()
        counts = analytics.refresh_rollups(engine, clock.now())
        engine.dispose()
        print(
            f"[{size:,}] worker job (incremental rollup) in {(time.perf_counter() - began) * 1000:.0f} ms {counts}"
        )
        times = time_page(path, args.runs)
        ours, duck = duckdb_ratio(path)
        med = {kind: statistics.median(values) for kind, values in times.items()}
        results[size] = med
        print(
            f"[{size:,} orders] page cold median {med['cold']:.0f} ms wall (min {min(times['cold']):.0f}), "
            f"{med['cold_cpu']:.0f} ms CPU; warm median {med['warm']:.0f} ms wall (min {min(times['warm']):.0f}), "
            f"{med['warm_cpu']:.0f} ms CPU"
        )
        print(
            f"[{size:,} orders] daily revenue series (2 years): ours {ours:.1f} ms, DuckDB {duck:.1f} ms "
            f"-> ours = {ours / duck:.2f}x DuckDB's time"
        )
    if len(results) >= 2:
        small, large = min(results), max(results)
        print(
            f"growth {small:,} -> {large:,} orders: "
            + ", ".join(
                f"{kind} {results[large][kind] / results[small][kind]:.2f}x" for kind in results[large]
            )
        )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
