"""매출 figures in every state of the rollups, and the work the first rollup does (issue 19).

- The same store gives the same figures with no rollup, a rollup lagging at any watermark, a
  current one, and after a backdated write (table of shops × watermarks, SQLite and PostgreSQL).
- A double charge refunded by the sentinel is not subtracted from revenue (the duplicate was never
  counted in it); refunds beyond the overpayment are, whichever payment they go back through.
- The first rollup over a sparse history does work for the days that have sales, not calendar days.
- ANALYZE runs after bulk writes (import, seed, rollup), so SQLite reads windows by paid time.
- The page's cache key changes at KST midnight.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from core import analytics, clock
from core.analytics import rollup
from core.models import Customer, Order, Payment, Product, Refund
from tests.analytics_data import SEOUL, Shop, ShopWriter, kst

# ---------------------------------------------------------------- one snapshot of every figure


def snapshot(session: Session, today: date) -> dict[str, object]:
    """Every figure the 매출 page shows, over the ranges and filters it offers."""
    figures: dict[str, object] = {}
    ranges = [(today - timedelta(days=29), today), (today - timedelta(days=400), today), (today, today)]
    for first, last in ranges:
        key = f"{first}..{last}"
        figures[f"summary {key}"] = analytics.revenue_summary(session, first, last)
        for grain in ("day", "week", "month"):
            figures[f"series {grain} {key}"] = analytics.revenue_series(session, first, last, grain)
        for method in ("CARD", "MONEY"):
            figures[f"totals {method} {key}"] = analytics.revenue_totals(session, first, last, method=method)
        for by in ("gross", "net", "units"):
            figures[f"top {by} {key}"] = analytics.top_products(session, first, last, by=by, limit=50)
        figures[f"methods {key}"] = analytics.method_mix(session, first, last)
    figures["value"] = analytics.customer_value(session)
    figures["cohorts"] = analytics.cohorts(session)
    figures["vips"] = analytics.vip_customers(session, limit=50)
    figures["intervals"] = analytics.product_repurchase_intervals(session)
    return figures


def random_history(session: Session, seed: int, today: date) -> Shop:
    """Sales spread over three years with long gaps, refunds (some late), double charges."""
    rng = random.Random(seed)
    products = [Product(name=f"상품{i}", price=10_000) for i in range(4)]
    customers = [Customer(name=f"고객{i}") for i in range(9)]
    session.add_all(products + customers)
    session.flush()
    shop = Shop([p.id for p in products], products[3].id, [c.id for c in customers])
    writer = ShopWriter(session, first_key=seed * 100_000)
    days = sorted(rng.sample(range(1, 3 * 365), 25))
    now = clock.now()
    for back in days:
        day = today - timedelta(days=back)
        for _ in range(rng.randint(1, 3)):
            at = datetime(day.year, day.month, day.day, rng.randint(0, 23), rng.randint(0, 59), tzinfo=SEOUL)
            items = [
                (rng.choice(shop.product_ids + [None]), q, q * rng.choice([9_900, 15_000, 33_333]))
                for q in (rng.randint(1, 3) for _ in range(rng.randint(1, 3)))
            ]
            sale = writer.sale(
                shop, rng.choice(shop.customer_ids), at, items, method=rng.choice(["CARD", "MONEY", None])
            )
            roll = rng.random()
            if roll < 0.2:
                when = min(at + timedelta(days=rng.randint(0, 40)), now - timedelta(minutes=10))
                writer.refund(sale, rng.randint(1, sale.total), when)
            elif roll < 0.3:
                double_charge(session, writer, sale, refund_after=timedelta(minutes=rng.randint(2, 600)))
    # today's sales: after any rollup
    writer.sale(shop, shop.customer_ids[0], clock.now() - timedelta(minutes=1), [(shop.product_ids[0], 1, 7_000)])
    session.commit()
    return shop


def double_charge(
    session: Session, writer: ShopWriter, sale, *, refund_after: timedelta, refund_original: bool = False
) -> int:  # type: ignore[no-untyped-def]
    """A second approved payment of the same order a minute later, refunded in full as the
    double-charge sentinel does (refund row on the later payment; the order stays paid)."""
    order = session.get(Order, sale.order_id)
    duplicate = Payment(
        order_id=order.id,
        customer_id=order.customer_id,
        gateway="sandbox",
        method=sale.method,
        amount=sale.total,
        status="refunded",
        approved_at=sale.paid_at + timedelta(minutes=1),
        idempotency_key=writer._key("DUP"),
    )
    session.add(duplicate)
    session.flush()
    refunded = writer.payments[order.id] if refund_original else duplicate.id
    at = min(sale.paid_at + refund_after, clock.now() - timedelta(minutes=10))
    session.add(
        Refund(
            payment_id=refunded,
            order_id=order.id,
            amount=sale.total,
            reason="이중 결제 자동 환불",
            status="succeeded",
            idempotency_key=f"double_charge_refund:{duplicate.id}",
            created_at=at,
            completed_at=at,
        )
    )
    session.flush()
    return duplicate.id


# ---------------------------------------------------------------- same figures in every state


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_figures_are_the_same_with_no_rollup_any_watermark_and_after_a_backdated_write(
    engine: Engine, seed: int
) -> None:
    today = clock.today_kst()
    with Session(engine, expire_on_commit=False) as session:
        random_history(session, seed, today)
    with Session(engine) as session:
        assert analytics.coverage(session).until is None
        live = snapshot(session, today)
    rng = random.Random(seed)
    watermarks = [
        clock.kst_midnight(today - timedelta(days=rng.randint(1, 1000))),
        clock.kst_midnight(today - timedelta(days=3)) + timedelta(hours=5, minutes=7),
        clock.now() - analytics.ROLLUP_GRACE,
    ]
    for until in watermarks:
        analytics.rebuild_rollups(engine, until)
        with Session(engine) as session:
            assert analytics.coverage(session).until == until
            rolled = snapshot(session, today)
        assert {k: v for k, v in rolled.items() if v != live[k]} == {}, f"watermark {until}"
    # A backdated sale and refund: read live on their days until the repair, then rolled up.
    with Session(engine, expire_on_commit=False) as session:
        shop = Shop([], 0, [c for (c,) in session.execute(text("SELECT id FROM customer"))])
        writer = ShopWriter(session, first_key=9_000_000)
        late = writer.sale(shop, shop.customer_ids[1], kst(2026, 2, 10, 9), [(None, 1, 20_000)])
        analytics.record_sale(session, session.get(Order, late.order_id))
        session.commit()
    with Session(engine) as session:
        dirty = snapshot(session, today)
    analytics.repair_dirty(engine)
    with Session(engine) as session:
        assert snapshot(session, today) == dirty
    analytics.rebuild_rollups(engine, clock.kst_midnight(today - timedelta(days=500)))
    with Session(engine) as session:
        assert snapshot(session, today) == dirty


# ---------------------------------------------------------------- double charges


# (what happens after the double charge, expected refunds of revenue in the order's net)
DOUBLE_CHARGE_CASES = [
    ("sentinel refunds the later payment", [], False, 0),
    ("CS refunds the original payment instead", [], True, 0),
    ("then a real partial refund of 5,000", [5_000], False, 5_000),
    ("then the rest of the price", [30_000], False, 30_000),
]


@pytest.mark.parametrize(("case", "later", "original", "expected"), DOUBLE_CHARGE_CASES)
@pytest.mark.parametrize("state", ["live", "rolled up", "repaired"])
def test_a_refunded_double_charge_is_not_subtracted_from_revenue(
    engine: Engine, case: str, later: list[int], original: bool, expected: int, state: str
) -> None:
    today = clock.today_kst()
    day = today - timedelta(days=3)
    with Session(engine, expire_on_commit=False) as session:
        product = Product(name="원두", price=30_000)
        customer = Customer(name="김민지")
        session.add_all([product, customer])
        session.flush()
        shop = Shop([product.id], 0, [customer.id])
        writer = ShopWriter(session)
        if state == "repaired":
            session.commit()
            analytics.rebuild_rollups(engine, clock.now() - analytics.ROLLUP_GRACE)
        paid = clock.kst_midnight(day) + timedelta(hours=10)
        sale = writer.sale(shop, customer.id, paid, [(product.id, 1, 30_000)])
        double_charge(session, writer, sale, refund_after=timedelta(minutes=30), refund_original=original)
        for amount in later:
            session.add(
                Refund(
                    payment_id=writer.payments[sale.order_id],
                    order_id=sale.order_id,
                    amount=amount,
                    reason="변심",
                    status="succeeded",
                    idempotency_key=writer._key("REF"),
                    created_at=paid + timedelta(days=1),
                    completed_at=paid + timedelta(days=1),
                )
            )
        if state == "repaired":
            session.flush()
            analytics.record_sales_at(session, [(paid, customer.id), (paid + timedelta(days=1), customer.id)])
        session.commit()
    if state == "rolled up":
        analytics.rebuild_rollups(engine, clock.now() - analytics.ROLLUP_GRACE)
    elif state == "repaired":
        assert analytics.repair_dirty(engine)["repaired_days"] >= 1
    with Session(engine) as session:
        totals = analytics.revenue_totals(session, day - timedelta(days=1), today)
        assert (totals.orders, totals.gross, totals.refunds, totals.net) == (
            1, 30_000, expected, 30_000 - expected
        ), case
        assert analytics.customer_value(session).net == 30_000 - expected
        [top] = analytics.top_products(session, day, today)
        assert (top.gross, top.refunds) == (30_000, expected)
        [vip] = analytics.vip_customers(session)
        assert vip.net == 30_000 - expected


# ---------------------------------------------------------------- the first rollup over a sparse history


def test_first_rollup_over_a_sparse_history_works_only_on_days_with_sales(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 years of history with orders on 200 days: at most one chunk (one read of the raw
    tables) per day with sales, whatever the calendar span; the figures equal the live ones."""
    today = clock.today_kst()
    rng = random.Random(5)
    sale_days = sorted(rng.sample(range(1, 5 * 365), 200))
    with Session(engine, expire_on_commit=False) as session:
        product = Product(name="원두", price=10_000)
        customers = [Customer(name=f"고객{i}") for i in range(30)]
        session.add_all([product, *customers])
        session.flush()
        shop = Shop([product.id], 0, [c.id for c in customers])
        writer = ShopWriter(session)
        for back in sale_days:
            at = clock.kst_midnight(today - timedelta(days=back)) + timedelta(hours=rng.randint(0, 23))
            writer.sale(shop, rng.choice(shop.customer_ids), at, [(product.id, 1, 10_000)])
        session.commit()
    with Session(engine) as session:
        live = snapshot(session, today)
    reads: list[tuple[datetime, datetime]] = []
    real = rollup.collect_facts

    def counted(session, start, end, facts=None):  # type: ignore[no-untyped-def]
        reads.append((start, end))
        return real(session, start, end, facts)

    monkeypatch.setattr(rollup, "collect_facts", counted)
    counts = analytics.rebuild_rollups(engine, clock.now() - analytics.ROLLUP_GRACE)
    assert counts["chunks"] == len(reads)
    assert len(reads) <= len(sale_days)  # was one per two calendar days: 913 for these 5 years
    assert counts["orders"] == 200
    # every window holds a sale: no read of an empty stretch
    with Session(engine) as session:
        for start, end in reads:
            assert session.execute(
                text("SELECT COUNT(*) FROM orders WHERE paid_at >= :s AND paid_at < :e"),
                {"s": analytics.facts._bind_instant(session, start), "e": analytics.facts._bind_instant(session, end)},
            ).scalar()
        assert snapshot(session, today) == live
    # the worker's next run has nothing to read
    reads.clear()
    analytics.refresh_rollups(engine, clock.now() + timedelta(minutes=20))
    assert reads == []


# ---------------------------------------------------------------- planner statistics after bulk writes


def _stat_tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        exists = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        ).scalar()
        if not exists:
            return set()
        return {row[0] for row in connection.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}


WINDOW_QUERY = (
    "EXPLAIN QUERY PLAN SELECT o.id FROM orders o WHERE o.paid_at >= :s AND o.paid_at < :e "
    "AND o.status IN ('paid', 'partially_refunded', 'refunded')"
)


def test_import_analyzes_so_sqlite_reads_a_window_by_paid_time(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from core.payments.order_import import run_import

    assert "orders" not in _stat_tables(sqlite_engine)
    lines = ["order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price"]
    start = datetime(2024, 1, 1, 9)
    for i in range(3_000):
        at = start + timedelta(hours=7 * i)
        lines.append(f"IMP-{i},{at:%Y-%m-%d %H:%M},고객{i % 300},010-5555-{i % 300:04d},원두,1,{10_000 + i}")
    result = run_import(sqlite_engine, sqlite_actors["owner"], "\n".join(lines).encode())
    assert result.created == 3_000
    assert {"orders", "order_item", "payment", "customer"} <= _stat_tables(sqlite_engine)
    with Session(sqlite_engine) as session:
        plan = " ".join(
            str(row[-1])
            for row in session.execute(
                text(WINDOW_QUERY), {"s": "2025-01-01 00:00:00.000000", "e": "2025-01-02 00:00:00.000000"}
            )
        )
    assert "ix_orders_paid_at" in plan, plan


def test_seed_and_first_rollup_analyze(sqlite_engine: Engine) -> None:
    from core.demo.seed import seed_demo

    seed_demo(sqlite_engine, customers=30, orders=200, seed=3)
    assert {"orders", "order_item", "payment"} <= _stat_tables(sqlite_engine)
    with sqlite_engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM sqlite_stat1")
    analytics.rebuild_rollups(sqlite_engine)
    assert {"orders", "order_item", "refund"} <= _stat_tables(sqlite_engine)


@pytest.mark.postgres
def test_analyze_on_postgresql_refreshes_the_statistics(pg_engine: Engine) -> None:
    from core.db import analyze

    with Session(pg_engine) as session:
        session.add(Customer(name="고객"))
        session.commit()
    analyze(pg_engine)
    with pg_engine.connect() as connection:
        analyzed = connection.exec_driver_sql(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'customer'"
        ).scalar()
    assert analyzed is not None


# ---------------------------------------------------------------- the page's cache key


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("2026-11-20T23:59:59+09:00", "2026-11-21T00:00:00+09:00"),  # KST midnight (UTC 15:00)
        ("2026-11-30T23:59:30+09:00", "2026-12-01T00:00:10+09:00"),  # and a month's end
    ],
)
def test_the_cache_key_changes_at_kst_midnight_with_no_new_data(engine: Engine, before: str, after: str) -> None:
    with Session(engine) as session:
        with clock.frozen(clock.parse_instant(before)):
            old = analytics.data_version(session)
        with clock.frozen(clock.parse_instant(after)):
            new = analytics.data_version(session)
    assert old != new
    assert clock.parse_instant(before).astimezone(SEOUL).date() in old


def test_data_version_is_the_page_cache_key() -> None:
    """The page passes data_version as the first argument of its cached figures function."""
    import inspect

    from ui import sales_view

    assert "_figures(version," in inspect.getsource(sales_view.render)

