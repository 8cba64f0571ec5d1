"""The set-based first rollup (issue 19): customers, cohorts and repurchase gaps written by
INSERT ... SELECT ... GROUP BY per window (core/analytics/build.py) give exactly the figures read
live from the raw tables, and exactly the rollup rows of the per-customer recomputation in Python
(`repair_dirty`), whatever the chunking and wherever the watermark stands.

The store: five sparse years of multi-item sales, full, partial (two per order) and late refunds,
sentinel refunds of double charges, sales and refunds at 23:59:59.999999 and 00:00:00 KST (month
ends included), and imported orders (the shipped 스마트스토어 sample plus boundary lines, stored
without microseconds). SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from core import analytics, clock
from core.accounts.actor import Actor
from core.analytics import rollup
from core.models import Customer, Product
from core.payments.order_import import run_import
from tests.analytics_data import SEOUL, Shop, ShopWriter, forget_rollups
from tests.test_analytics import _rollup_rows
from tests.test_analytics_states import double_charge, snapshot

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "orders_smartstore_sample.csv"
TINY = timedelta(microseconds=1)


def _last_instant(day: date) -> datetime:
    """23:59:59.999999 KST of `day`."""
    return clock.kst_midnight(day + timedelta(days=1)) - TINY


def build_store(engine: Engine, owner: Actor, today: date) -> tuple[Shop, dict[date, tuple[int, int, int]]]:
    """The store described in the module docstring; returns the shop's records and the expected
    (orders, gross, refunds) of the KST boundary days, worked out from the records with zoneinfo."""
    rng = random.Random(19)
    with Session(engine, expire_on_commit=False) as session:
        products = [Product(name=f"상품{i}", price=10_000) for i in range(5)]
        customers = [Customer(name=f"고객{i}") for i in range(15)]
        session.add_all(products + customers)
        session.flush()
        shop = Shop([p.id for p in products], 0, [c.id for c in customers])
        writer = ShopWriter(session, first_key=500_000)
        now = clock.now()
        for back in sorted(rng.sample(range(60, 5 * 365), 40), reverse=True):
            day = today - timedelta(days=back)
            for _ in range(rng.randint(1, 4)):
                at = clock.kst_midnight(day) + timedelta(seconds=rng.randrange(86_400))
                items = [
                    (rng.choice(shop.product_ids + [None]), q, q * rng.choice([9_900, 15_000, 33_333]))
                    for q in (rng.randint(1, 3) for _ in range(rng.randint(1, 4)))
                ]
                sale = writer.sale(
                    shop, rng.choice(shop.customer_ids), at, items, method=rng.choice(["CARD", "MONEY", None])
                )
                roll = rng.random()
                if roll < 0.15:
                    writer.refund(sale, sale.total, min(at + timedelta(days=rng.randint(0, 30)), now))
                elif roll < 0.3:  # two partial refunds, the second days later
                    first = rng.randint(1, sale.total // 2)
                    writer.refund(sale, first, at + timedelta(hours=rng.randint(1, 48)))
                    later = min(at + timedelta(days=rng.randint(3, 90)), now)
                    writer.refund(sale, rng.randint(1, sale.total - first), later)
                elif roll < 0.35:
                    double_charge(session, writer, sale, refund_after=timedelta(minutes=rng.randint(2, 600)))
        # KST boundaries: the last microsecond of a day (a month's last day among them) and midnight.
        month_end = date(today.year, today.month, 1) - timedelta(days=1) - timedelta(days=31)
        month_end = date(month_end.year, month_end.month, 1) - timedelta(days=1)
        boundary_days = [today - timedelta(days=45), month_end]
        p = shop.product_ids
        for day in boundary_days:
            late = writer.sale(
                shop, shop.customer_ids[0], _last_instant(day), [(p[0], 1, 10_001), (p[1], 2, 20_000)]
            )
            writer.sale(
                shop, shop.customer_ids[1], clock.kst_midnight(day + timedelta(days=1)), [(p[2], 1, 7_000)]
            )
            writer.sale(
                shop, shop.customer_ids[2], clock.kst_midnight(day), [(p[0], 3, 29_999)], method="MONEY"
            )
            writer.refund(late, 3_001, _last_instant(day + timedelta(days=1)))
        writer.sale(shop, shop.customer_ids[3], clock.now() - timedelta(minutes=1), [(p[3], 1, 5_000)])
        session.commit()
    expected: dict[date, tuple[int, int, int]] = {}
    for day in [d + timedelta(days=k) for d in boundary_days for k in (0, 1)]:
        sold = [s for s in shop.sales if s.paid_at and s.paid_at.astimezone(SEOUL).date() == day]
        refunded = [a for s in shop.sales for a, at in s.refunds if at.astimezone(SEOUL).date() == day]
        expected[day] = (len(sold), sum(s.total for s in sold), sum(refunded))
    # Imported: the shipped sample (multi-item, partial refunds, a later cancellation row) and
    # two orders at the boundaries of one day, which the import stores without microseconds.
    day = today - timedelta(days=75)
    lines = SAMPLE.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    lines += [
        f"9900000000000001,99000001,{day} 23:59:59,{day} 23:59:59,한지민,010-9999-0001,구매확정,스마트스토어,"
        "P-1001,수분크림 50ml,,2,32000,64000,0,카카오페이,,,,한지민,0",
        f"9900000000000002,99000002,{day} 00:00:00,{day} 00:00:00,한지민,010-9999-0001,구매확정,스마트스토어,"
        "P-1002,비타민C 세럼,,1,28000,28000,0,신용카드,,,,한지민,0",
    ]
    result = run_import(engine, owner, ("\n".join(lines) + "\n").encode(), source_name=SAMPLE.name)
    assert result.created == 9 and result.refunds_created == 3
    assert result.rollup["rebuilt"] == 1 and result.rollup_failed is None  # the import rolled it all up
    forget_rollups(engine)  # these tests start from the raw rows alone
    expected[day] = (2, 92_000, 0)
    return shop, expected


def test_the_set_based_rollup_equals_the_live_figures_and_the_per_customer_recomputation(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    today = clock.today_kst()
    _shop, boundaries = build_store(engine, actors["owner"], today)
    until = clock.now() - analytics.ROLLUP_GRACE  # one watermark for every build: rows comparable
    with Session(engine) as session:
        assert analytics.coverage(session).until is None
        live = snapshot(session, today)
        for day, figures in boundaries.items():
            totals = analytics.revenue_totals(session, day, day)
            assert (totals.orders, totals.gross, totals.refunds) == figures, day

    # Everything in one window, then in windows of 3 sales (each upserted onto the last).
    monkeypatch.setattr(rollup, "REBUILD_CHUNK_ORDERS", 1_000_000)
    assert analytics.rebuild_rollups(engine, until)["chunks"] == 1
    whole = _rollup_rows(engine)
    with Session(engine) as session:
        assert snapshot(session, today) == live
    monkeypatch.setattr(rollup, "REBUILD_CHUNK_ORDERS", 3)
    assert analytics.rebuild_rollups(engine, until)["chunks"] > 20
    assert _rollup_rows(engine) == whole

    # A watermark in the middle of a day, then the worker rolls forward from it.
    analytics.rebuild_rollups(
        engine, clock.kst_midnight(today - timedelta(days=45)) + timedelta(hours=13, minutes=7)
    )
    analytics.refresh_rollups(engine, until + analytics.ROLLUP_GRACE)
    assert _rollup_rows(engine) == whole
    with Session(engine) as session:
        assert snapshot(session, today) == live

    # The per-customer recomputation in Python (repair of every day and customer) writes the same rows.
    with Session(engine) as session:
        instants = session.execute(
            text(
                "SELECT paid_at, customer_id FROM orders WHERE paid_at IS NOT NULL UNION ALL "
                "SELECT COALESCE(r.completed_at, r.created_at), o.customer_id FROM refund r "
                "JOIN orders o ON o.id = r.order_id"
            )
        ).all()
        marked = analytics.record_sales_at(session, [(clock.as_utc(_parsed(at)), c) for at, c in instants])
        session.commit()
    assert marked >= len(instants) - 1  # all but today's last sale lie before the watermark
    repaired = analytics.repair_dirty(engine)
    assert repaired["repaired_days"] > 40 and repaired["repaired_customers"] > 15
    assert _rollup_rows(engine) == whole
    with Session(engine) as session:
        assert snapshot(session, today) == live


def _parsed(value: object) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=clock.UTC) if isinstance(value, str) else value  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("utc_text", "kst"),
    [
        ("2026-01-31 14:59:59.999999", "2026-01-31"),  # 23:59:59.999999 KST, a month's last instant
        ("2026-01-31 14:59:59.999500", "2026-01-31"),  # SQLite's datetime() rounded this one to February
        ("2026-01-31 15:00:00.000000", "2026-02-01"),  # 00:00 KST
        ("2026-01-31 15:00:00", "2026-02-01"),  # an imported instant, no microseconds
        ("2026-12-31 15:00:00.000001", "2027-01-01"),
        ("2028-02-28 15:00:00.000000", "2028-02-29"),
    ],
)
def test_sqlite_reads_the_kst_day_and_month_from_the_stored_text(
    sqlite_engine: Engine, utc_text: str, kst: str
) -> None:
    from core.analytics.facts import _kst_sql

    with Session(sqlite_engine) as session:
        day, month = session.execute(
            text(f"SELECT {_kst_sql(session, ':t', 'day')}, {_kst_sql(session, ':t', 'month')}"),
            {"t": utc_text},
        ).one()
    assert (day, month) == (kst, kst[:7])
