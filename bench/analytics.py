"""Benchmark of the 매출 figures against DuckDB at 100,000 and 1,000,000 orders (not part of the suite).

    .venv/bin/python -m bench.analytics --sizes 100000            # one size, SQLite files under bench/.data/
    .venv/bin/python -m bench.analytics --sizes 100000 --reuse    # keep the generated store and DuckDB file
    .venv/bin/python -m bench.analytics --sizes 100000 --page     # also the page script in AppTest
    .venv/bin/python -m bench.analytics --sizes --sparse 100000   # only: first rollup, 200 days of 5 years
    .venv/bin/python -m bench.analytics --sizes --copy-of /work/stores/1m.db   # first rollup of a copy of a store
    .venv/bin/python -m bench.analytics --sizes --after-import 100000   # only: right after run_import

For each size it bulk-inserts a shop (two years of orders, items, payments, refunds, payment
links, subscriptions and charges; ANALYZE at the end as the import does) and copies the same rows
into a DuckDB file (not timed). Then, on the page's default range (최근 30일), it computes every
figure of the page with core.analytics and with DuckDB SQL (bench/analytics_duckdb.py), checks
they are equal, and prints cold and warm medians and the ratios, wall and CPU:
- before the first rollup (a store bulk-loaded by this script, not by the import: everything read
  live from the raw tables; since issue 19 the order import and `seed --demo` roll up before they
  return, so a shop sees this state only if that step failed and the worker has not run yet),
- after the first rollup (timed too: the worker's job on such a store).
With --after-import LINES: a fresh store right after `run_import` of bench/import_lines.py's file
(import and rollup timed), its figures against DuckDB, and the same rows with the rollups emptied.
With --page it also times the whole 매출 page script in AppTest as the owner, cold (st.cache_data
cleared, new session) and warm (the same session again: a cache hit).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
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


def generate(path: Path, orders: int, seed: int = 42, *, sale_days: list[int] | None = None) -> None:
    """Bulk-insert a shop with `orders` orders ending now (raw sqlite3, executemany).

    With `sale_days` (days before today), every order is paid on one of those days only (a sparse
    imported history); otherwise over the last DAYS days, more of them recently."""
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(seed)
    now = clock.now()
    start = now - timedelta(days=max(sale_days) + 1 if sale_days else DAYS)
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
        if sale_days:
            day = clock.kst_midnight(clock.today_kst() - timedelta(days=rng.choice(sale_days)))
            paid = min(day + timedelta(seconds=rng.randrange(86_400)), now - timedelta(minutes=30))
        else:
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


def compare(path: Path, duck_path: Path, runs: int, state: str) -> dict[str, float]:
    """Ours (core.analytics, the page's figures) against DuckDB (bench/analytics_duckdb.py) on
    the same rows: cold = a new engine / a new DuckDB connection (process caches empty, the OS
    file cache warm) and its first computation; warm = the same again on that engine/connection
    (no result cache on either side). Medians of `runs`; refuses to print a ratio unless every
    figure is equal on both sides."""
    import duckdb

    from bench import analytics_duckdb
    from core.db import session_scope

    today = clock.today_kst()
    first = today - timedelta(days=29)  # the page's default range: 최근 30일
    times: dict[str, list[float]] = defaultdict(list)

    def timed(kind: str, compute):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        result = compute()
        times[kind].append((time.perf_counter() - wall) * 1000)
        times[f"{kind}_cpu"].append((time.process_time() - cpu) * 1000)
        return result

    ours = duck = None
    for _ in range(runs):
        engine = make_engine(f"sqlite:///{path}")

        def run_ours(engine=engine):  # type: ignore[no-untyped-def]
            with session_scope(engine) as session:
                return analytics_duckdb.ours(session, first, today)

        ours = timed("ours_cold", run_ours)
        for _ in range(2):
            timed("ours_warm", run_ours)
        engine.dispose()
        con = duckdb.connect(str(duck_path), read_only=True)
        duck = timed("duck_cold", lambda con=con: analytics_duckdb.figures(con, first, today, today))
        for _ in range(2):
            timed("duck_warm", lambda con=con: analytics_duckdb.figures(con, first, today, today))
        con.close()
    assert ours is not None and duck is not None
    differ = analytics_duckdb.differences(ours, duck)
    if differ:
        raise SystemExit(f"DuckDB and core.analytics disagree on: {', '.join(differ)}")
    med = {kind: statistics.median(values) for kind, values in times.items()}
    print(
        f"  {state}: ours cold {med['ours_cold']:.0f} ms ({med['ours_cold_cpu']:.0f} CPU), "
        f"warm {med['ours_warm']:.0f} ms ({med['ours_warm_cpu']:.0f} CPU); "
        f"DuckDB cold {med['duck_cold']:.0f} ms ({med['duck_cold_cpu']:.0f} CPU), "
        f"warm {med['duck_warm']:.0f} ms ({med['duck_warm_cpu']:.0f} CPU); "
        f"ratio cold {med['ours_cold'] / med['duck_cold']:.2f}x wall / "
        f"{med['ours_cold_cpu'] / med['duck_cold_cpu']:.2f}x CPU, "
        f"warm {med['ours_warm'] / med['duck_warm']:.2f}x wall / {med['ours_warm_cpu'] / med['duck_warm_cpu']:.2f}x CPU"
        f" (all {len(ours)} figures equal)"
    )
    return med


def sparse_first_rollup(orders: int, days: int = 200, years: int = 5) -> None:
    """The first rollup after importing `years` of history with orders on `days` days only."""
    path = DATA / f"analytics_sparse_{orders}.db"
    sale_days = sorted(random.Random(7).sample(range(1, years * 365), days))
    generate(path, orders, sale_days=sale_days)
    engine = make_engine(f"sqlite:///{path}")
    wall, cpu = time.perf_counter(), time.process_time()
    counts = analytics.rebuild_rollups(engine)
    print(
        f"[sparse] first rollup of {orders:,} orders on {days} days of {years} years: "
        f"{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, {counts}"
    )
    engine.dispose()


def first_rollup_of(store: Path) -> None:
    """The first rollup (a rebuild from scratch) of a copy of an existing store (the original is
    never written): CPU and wall, chunks, the longest chunk."""
    path = DATA / f"copy_of_{store.stem}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(store, path)
    engine = make_engine(f"sqlite:///{path}")
    wall, cpu = time.perf_counter(), time.process_time()
    counts = analytics.rebuild_rollups(engine)
    print(
        f"[copy of {store}] first rollup: {time.perf_counter() - wall:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU, {counts}"
    )
    engine.dispose()


def _by_period(data: bytes, parts: int) -> list[bytes]:
    """The export cut into `parts` files by period (the import takes at most 50 MB a file: a shop
    exports a long history a period at a time), in time order: each row keyed by its order time
    (a refund row by its refund time, so it comes after its order), cut only between two times."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = rows[0], sorted(rows[1:], key=lambda r: r[2] or r[16])
    cuts = [0]
    for k in range(1, parts):
        at = len(body) * k // parts
        while 0 < at < len(body) and (body[at][2] or body[at][16]) == (body[at - 1][2] or body[at - 1][16]):
            at += 1
        cuts.append(at)
    cuts.append(len(body))
    files = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        out = io.StringIO()
        csv.writer(out).writerows([header, *body[start:end]])
        files.append(out.getvalue().encode("utf-8-sig"))
    return files


def right_after_import(lines: int, runs: int, *, reuse: bool) -> None:
    """The store as a shop gets it: a fresh store, `run_import` of a 스마트스토어-style file
    (bench/import_lines.py's, `lines` lines; over 150,000 lines cut by period into files under the
    50 MB limit, imported in order), each ending with the rollup step (catch_up). The 매출
    figures right after it, against DuckDB on the same rows; then the same store with its
    rollups emptied (what the page read before the import rolled up) for contrast."""
    import importlib.util

    from core.accounts.actor import Actor
    from core.models import Role
    from core.payments.order_import import run_import

    spec = importlib.util.spec_from_file_location("import_lines", ROOT / "bench" / "import_lines.py")
    assert spec is not None and spec.loader is not None
    import_lines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(import_lines)
    path = DATA / f"analytics_import_{lines}.db"
    duck_path = DATA / f"analytics_import_{lines}.duckdb"
    if not (reuse and path.exists() and duck_path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        parts = _by_period(import_lines.make_file(lines), max(1, -(-lines // 150_000)))
        for k, data in enumerate(parts, 1):
            wall, cpu = time.perf_counter(), time.process_time()
            result = run_import(engine, Actor(id=None, name="bench", role=Role.OWNER), data, source_name="lines.csv")
            print(
                f"[import {lines:,} lines] file {k}/{len(parts)}: run_import {time.perf_counter() - wall:.1f} s wall, "
                f"{time.process_time() - cpu:.1f} s CPU: {result.created:,} orders, rollup {result.rollup}"
                f"{' FAILED ' + result.rollup_failed if result.rollup_failed else ''}"
            )
        engine.dispose()
        from bench import analytics_duckdb

        analytics_duckdb.load(path, duck_path)
    print(f"[import {lines:,} lines] 매출 figures, range 최근 30일, {runs} runs:")
    compare(path, duck_path, runs, "right after run_import")
    live = DATA / f"analytics_import_{lines}_live.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    shutil.copy(path, live)
    con = sqlite3.connect(live)
    for table in ("cohort_value", "daily_sales", "daily_product_sales", "customer_sales", "customer_month",
                  "cohort_retention", "product_repurchase", "repurchase_gap", "customer_product_last",
                  "analytics_dirty_day", "analytics_dirty_customer", "analytics_state"):
        con.execute(f"DELETE FROM {table}")
    con.commit()
    con.close()
    compare(live, duck_path, runs, "same rows, rollups emptied")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="cold runs per state (2 warm runs after each)")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files under bench/.data/")
    parser.add_argument("--page", action="store_true", help="also time the page script in AppTest (after)")
    parser.add_argument("--sparse", type=int, default=0, help="orders of the sparse-history first rollup run")
    parser.add_argument("--copy-of", type=Path, help="time the first rollup of a copy of this SQLite store")
    parser.add_argument(
        "--after-import", type=int, default=0, metavar="LINES",
        help="also: a fresh store right after run_import of a LINES-line file (the import rolls up)",
    )
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    if args.after_import:
        right_after_import(args.after_import, args.runs, reuse=args.reuse)
    if args.sparse:
        sparse_first_rollup(args.sparse)
    if args.copy_of:
        first_rollup_of(args.copy_of)
    for size in args.sizes:
        raw, path = DATA / f"analytics_{size}_raw.db", DATA / f"analytics_{size}.db"
        duck_path = DATA / f"analytics_{size}.duckdb"
        if not (args.reuse and raw.exists() and duck_path.exists()):
            began = time.perf_counter()
            generate(raw, size)  # ends with ANALYZE, as the import and the seed do
            print(f"[{size:,}] generated in {time.perf_counter() - began:.1f} s -> {raw}")
            from bench import analytics_duckdb

            analytics_duckdb.load(raw, duck_path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copy(raw, path)
        print(f"[{size:,} orders] 매출 figures, range 최근 30일, {args.runs} runs:")
        compare(path, duck_path, args.runs, "before the first rollup")
        engine = make_engine(f"sqlite:///{path}")
        wall, cpu = time.perf_counter(), time.process_time()
        counts = analytics.rebuild_rollups(engine)
        print(
            f"  first rollup in {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU {counts}"
        )
        engine.dispose()
        compare(path, duck_path, args.runs, "after the first rollup ")
        if args.page:
            times = time_page(path, args.runs)
            med = {kind: statistics.median(values) for kind, values in times.items()}
            print(
                f"  page script (AppTest, owner): cold {med['cold']:.0f} ms ({med['cold_cpu']:.0f} CPU), "
                f"warm {med['warm']:.0f} ms ({med['warm_cpu']:.0f} CPU)"
            )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
