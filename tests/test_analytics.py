"""Every analytics figure against an independent computation from the plain records of the shop.

Each check runs with no rollup (all live), a rollup lagging two weeks, a current rollup, a
current rollup made stale by a backdated sale and a late refund (dirty days), and the same after
the repair of exactly those days and customers: the figures must be the same in all five, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from core import analytics, clock
from core.analytics import rollup, rules
from core.errors import ValidationFailed
from core.jobs import JOBS
from core.models import Order, Refund
from tests.analytics_data import NOW, SEOUL, SaleRecord, Shop, ShopWriter, build_shop, kst

SOLD = {"paid", "partially_refunded", "refunded"}
FIRST, LAST = date(2026, 1, 1), date(2026, 3, 15)


# ---------------------------------------------------------------- the independent computation


def kst_date(instant) -> date:  # type: ignore[no-untyped-def]
    return instant.astimezone(SEOUL).date()


def shares_of(total: int, amounts: list[int]) -> list[int]:
    """Same documented rule as the code (pro rata, floor, remainder last), written separately."""
    whole = sum(amounts)
    result = []
    for i, amount in enumerate(amounts):
        if i == len(amounts) - 1:
            result.append(total - sum(result))
        else:
            result.append(total * amount // whole if whole else 0)
    return result


def sold(shop: Shop) -> list[SaleRecord]:
    return [s for s in shop.sales if s.paid_at is not None and s.status in SOLD]


def product_share(sale: SaleRecord, amount: int, product_id: int) -> tuple[bool, int]:
    ids = [pid if pid is not None else 0 for pid, _, _ in sale.items]
    shares = shares_of(amount, [a for _, _, a in sale.items])
    return product_id in ids, sum(s for pid, s in zip(ids, shares, strict=True) if pid == product_id)


def expected_daily(
    shop: Shop, first: date, last: date, product_id=None, method=None
) -> dict[date, list[int]]:  # type: ignore[no-untyped-def]
    out: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for sale in sold(shop):
        m = sale.method or "OTHER"
        if method is not None and m != method:
            continue
        day = kst_date(sale.paid_at)
        if first <= day <= last:
            if product_id is None:
                out[day][0] += 1
                out[day][1] += sale.total
            else:
                has, share = product_share(sale, sale.total, product_id)
                out[day][0] += 1 if has else 0
                out[day][1] += share
        for amount, at in sale.refunds:
            rday = kst_date(at)
            if first <= rday <= last:
                out[rday][2] += amount if product_id is None else product_share(sale, amount, product_id)[1]
    return out


def bucket(day: date, grain: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return date(day.year, day.month, 1)


def expected_series(shop: Shop, first: date, last: date, grain: str, **filters) -> list[tuple]:  # type: ignore[no-untyped-def]
    daily = expected_daily(shop, first, last, **filters)
    buckets: dict[date, list[int]] = {}
    day = first
    while day <= last:
        buckets.setdefault(bucket(day, grain), [0, 0, 0])
        day += timedelta(days=1)
    for day, (o, g, r) in daily.items():
        b = buckets[bucket(day, grain)]
        b[0] += o
        b[1] += g
        b[2] += r
    return [(k, v[0], v[1], v[2]) for k, v in sorted(buckets.items())]


def expected_customers(shop: Shop) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for sale in sold(shop):
        c = out.setdefault(
            sale.customer_id,
            {"orders": 0, "net": 0, "first": sale.paid_at, "last": sale.paid_at, "months": set()},
        )
        c["orders"] += 1
        c["net"] += sale.total - sum(a for a, _ in sale.refunds)
        c["first"] = min(c["first"], sale.paid_at)
        c["last"] = max(c["last"], sale.paid_at)
        d = kst_date(sale.paid_at)
        c["months"].add((d.year, d.month))
    return out


def half_up(n: int, d: int) -> int:
    return int((n / d) + 0.5) if n >= 0 else -int((-n / d) + 0.5)


# ---------------------------------------------------------------- modes


MODES = ["live", "lagging", "current", "dirty", "repaired"]


def prepare(engine: Engine, mode: str) -> Shop:
    with Session(engine, expire_on_commit=False) as session:
        shop = build_shop(session)
    if mode == "lagging":
        analytics.rebuild_rollups(engine, date(2026, 3, 1))
    elif mode in ("current", "dirty", "repaired"):
        analytics.rebuild_rollups(engine, date(2026, 3, 15))
    if mode in ("dirty", "repaired"):
        with Session(engine, expire_on_commit=False) as session:
            writer = ShopWriter(session, first_key=10_000)
            late = writer.sale(
                shop, shop.customer_ids[11], kst(2026, 2, 10, 9), [(shop.product_ids[1], 1, 20_000)]
            )
            assert analytics.record_sale(session, session.get(Order, late.order_id))
            old = next(s for s in shop.sales if kst_date(s.paid_at or NOW) == date(2026, 1, 10))
            writer.payments[old.order_id] = session.execute(
                text("SELECT id FROM payment WHERE order_id = :o AND approved_at IS NOT NULL"),
                {"o": old.order_id},
            ).scalar()
            writer.refund(old, 1_000, kst(2026, 2, 20, 10))  # a late-recorded refund on a rolled-up day
            refund = session.execute(text("SELECT MAX(id) FROM refund")).scalar()
            assert analytics.record_refund(session, session.get(Refund, refund))
            session.commit()
    if mode == "repaired":
        # Day 2026-02-10 (the sale), 2026-02-20 (the refund); the buyer and the refunded customer.
        assert analytics.repair_dirty(engine) == {"repaired_days": 2, "repaired_customers": 2}
        with Session(engine) as session:
            assert analytics.coverage(session).dirty == frozenset()
    return shop


@pytest.mark.parametrize("mode", MODES)
def test_every_figure_matches_the_independent_computation(engine: Engine, mode: str) -> None:
    with clock.frozen(NOW):
        shop = prepare(engine, mode)
        with Session(engine) as session:
            check_revenue(session, shop)
            check_products_and_methods(session, shop)
            check_customers(session, shop)
            check_funnel(session, shop)
            check_subscriptions(session, shop)
            check_repurchase(session, shop)


def check_revenue(session: Session, shop: Shop) -> None:
    p = shop.product_ids
    for grain in ("day", "week", "month"):
        for filters in (
            {},
            {"product_id": p[0]},
            {"product_id": p[1]},
            {"product_id": 0},
            {"product_id": shop.deleted_product_id},
            {"method": "CARD"},
            {"method": "OTHER"},
            {"product_id": p[0], "method": "MONEY"},
        ):
            got = [
                (pt.period, pt.orders, pt.gross, pt.refunds)
                for pt in analytics.revenue_series(session, FIRST, LAST, grain, **filters)
            ]
            assert got == expected_series(shop, FIRST, LAST, grain, **filters), (grain, filters)
    # KST month boundary: 23:30 on 31 January is January, 00:10 on 1 February is February.
    months = {pt.period: pt for pt in analytics.revenue_series(session, FIRST, LAST, "month")}
    jan = expected_daily(shop, date(2026, 1, 1), date(2026, 1, 31))
    assert months[date(2026, 1, 1)].gross == sum(v[1] for v in jan.values())
    assert date(2026, 1, 31) in jan
    # Summary with the previous equal period.
    summary = analytics.revenue_summary(session, date(2026, 2, 1), date(2026, 2, 28))
    cur = expected_daily(shop, date(2026, 2, 1), date(2026, 2, 28))
    prev = expected_daily(shop, date(2026, 1, 4), date(2026, 1, 31))
    assert (summary.previous_first, summary.previous_last) == (date(2026, 1, 4), date(2026, 1, 31))
    cg, cr, co = (sum(v[i] for v in cur.values()) for i in (1, 2, 0))
    pg, pr, po = (sum(v[i] for v in prev.values()) for i in (1, 2, 0))
    assert (summary.current.gross, summary.current.refunds, summary.current.orders) == (cg, cr, co)
    assert (summary.previous.gross, summary.previous.refunds, summary.previous.orders) == (pg, pr, po)
    assert summary.current.net == cg - cr
    assert summary.current.aov == half_up(cg, co)
    assert summary.delta("gross") == pytest.approx((cg - pg) / pg)
    # Refunds larger than the day's sales: a negative net, no error.
    march3 = analytics.revenue_totals(session, date(2026, 3, 3), date(2026, 3, 3))
    exp3 = expected_daily(shop, date(2026, 3, 3), date(2026, 3, 3))[date(2026, 3, 3)]
    assert (march3.orders, march3.gross, march3.refunds) == tuple(exp3)
    assert march3.net < 0
    # An empty range: zeros, no AOV, no delta.
    empty = analytics.revenue_summary(session, date(2024, 1, 1), date(2024, 12, 31))
    assert empty.current == analytics.Totals() and empty.current.aov is None and empty.delta("gross") is None


def check_products_and_methods(session: Session, shop: Shop) -> None:
    first, last = date(2026, 1, 15), date(2026, 3, 15)
    by_product: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_method: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sale in sold(shop):
        ids = [pid if pid is not None else 0 for pid, _, _ in sale.items]
        amounts = [a for _, _, a in sale.items]
        if first <= kst_date(sale.paid_at) <= last:
            m = sale.method or "OTHER"
            by_method[m][0] += 1
            by_method[m][1] += sale.total
            for pid in set(ids):
                by_product[pid][0] += 1
            for (pid, (_, q, _)), share in zip(
                zip(ids, sale.items, strict=True), shares_of(sale.total, amounts), strict=True
            ):
                by_product[pid][1] += q
                by_product[pid][2] += share
        for amount, at in sale.refunds:
            if first <= kst_date(at) <= last:
                for pid, share in zip(ids, shares_of(amount, amounts), strict=True):
                    by_product[pid][3] += share
    top = analytics.top_products(session, first, last, by="gross", limit=20)
    assert {r.product_id: [r.orders, r.units, r.gross, r.refunds] for r in top} == {
        k: v for k, v in by_product.items() if v[0] or v[3]
    }
    assert [r.gross for r in top] == sorted((r.gross for r in top), reverse=True)
    by_units = analytics.top_products(session, first, last, by="units", limit=2)
    assert [r.units for r in by_units] == sorted((v[1] for v in by_product.values()), reverse=True)[:2]
    names = {r.product_id: r.name for r in top}
    assert names[0] == "(삭제된 상품)"
    assert names[shop.deleted_product_id] == f"상품{shop.deleted_product_id}"  # the name it was sold under
    mix = analytics.method_mix(session, first, last)
    assert {r.method: [r.orders, r.gross] for r in mix} == dict(by_method)
    total = sum(v[1] for v in by_method.values())
    assert sum(r.share for r in mix) == pytest.approx(1.0)
    assert {r.method: r.share for r in mix}["CARD"] == pytest.approx(by_method["CARD"][1] / total)
    assert analytics.top_products(session, date(2020, 1, 1), date(2020, 1, 2)) == []
    assert analytics.method_mix(session, date(2020, 1, 1), date(2020, 1, 2)) == []


def check_customers(session: Session, shop: Shop) -> None:
    exp = expected_customers(shop)
    value = analytics.customer_value(session)
    total_net = sum(c["net"] for c in exp.values())
    assert value.customers == len(exp)
    assert value.net == total_net
    assert value.ltv == half_up(total_net, len(exp))
    assert value.repeat_customers == sum(1 for c in exp.values() if c["orders"] >= 2)
    # Cohorts and retention.
    cohorts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for c in exp.values():
        d = kst_date(c["first"])
        cohorts[(d.year, d.month)].append(c)
    rows = analytics.cohorts(session)
    assert [(r.cohort.year, r.cohort.month) for r in rows] == sorted(cohorts)
    for row in rows:
        members = cohorts[(row.cohort.year, row.cohort.month)]
        assert row.customers == len(members)
        assert row.net == sum(c["net"] for c in members)
        assert row.retention[0] == 1.0
        span = (2026 - row.cohort.year) * 12 + 3 - row.cohort.month
        assert len(row.retention) == span + 1
        for k in range(span + 1):
            target = row.cohort.year * 12 + row.cohort.month - 1 + k
            ym = (target // 12, target % 12 + 1)
            assert row.retention[k] == pytest.approx(
                sum(1 for c in members if ym in c["months"]) / len(members)
            )
    # VIP: top spenders by lifetime net, with their last purchase.
    vip = analytics.vip_customers(session, limit=3)
    ranked = sorted(exp.items(), key=lambda kv: (-kv[1]["net"], kv[0]))[:3]
    assert [(v.customer_id, v.net, v.orders, v.last_paid_at) for v in vip] == [
        (cid, c["net"], c["orders"], c["last"]) for cid, c in ranked
    ]
    assert vip[0].name.startswith("고객")


def check_funnel(session: Session, shop: Shop) -> None:
    for first, last, product_id in (
        (date(2026, 2, 1), date(2026, 2, 28), None),
        (date(2026, 3, 1), date(2026, 3, 31), None),
        (date(2026, 2, 1), date(2026, 3, 31), shop.product_ids[0]),
        (date(2025, 1, 1), date(2025, 1, 31), None),
    ):
        links = [
            lk
            for lk in shop.links
            if first <= kst_date(lk["created"]) <= last
            and (product_id is None or lk["product_id"] == product_id)
        ]
        opened = [
            lk
            for lk in links
            if lk["opened"] or lk["paid"] or lk["status"] in ("opened", "method_selected", "paid", "failed")
        ]
        chose = [lk for lk in links if lk["paid"] or lk["status"] in ("method_selected", "paid", "failed")]
        paid = [lk for lk in links if lk["paid"] or lk["status"] == "paid"]
        funnel = analytics.link_funnel(session, first, last, product_id)
        assert (funnel.sent, funnel.opened, funnel.method_selected, funnel.paid) == (
            len(links),
            len(opened),
            len(chose),
            len(paid),
        )
        assert funnel.conversion == (len(paid) / len(links) if links else None)


def check_subscriptions(session: Session, shop: Shop) -> None:
    def monthly(s: dict) -> int:
        if s["unit"] == "week":
            return half_up(s["amount"] * 52, 12 * s["count"])
        return half_up(s["amount"], s["count"])

    months = analytics.subscription_months(session, date(2026, 1, 1), date(2026, 3, 31))
    assert [m.month for m in months] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    for m in months:
        start = kst(m.month.year, m.month.month, 1, 0, 0)
        nxt = date(m.month.year + m.month.month // 12, m.month.month % 12 + 1, 1)
        end = min(kst(nxt.year, nxt.month, 1, 0, 0), NOW)

        def active(at, subs=shop.subscriptions):  # type: ignore[no-untyped-def]
            return [s for s in subs if s["started"] < at and (s["canceled"] is None or s["canceled"] >= at)]

        month_end = kst(nxt.year, nxt.month, 1, 0, 0)
        assert m.mrr == sum(monthly(s) for s in active(end))
        assert m.active == len(active(end))
        assert m.new == sum(1 for s in shop.subscriptions if start <= s["started"] < month_end)
        assert m.churned == sum(
            1 for s in shop.subscriptions if s["canceled"] and start <= s["canceled"] < month_end
        )
        assert m.active_at_start == len(active(start))
        charges = [
            c
            for c in shop.charges
            if (c["period"].year, c["period"].month) == (m.month.year, m.month.month)
            and c["status"] in ("succeeded", "failed")
        ]
        failed = [c for c in charges if c["status"] == "failed"]
        assert (m.charges, m.failed_charges) == (len(charges), len(failed))
        assert m.failed_charge_rate == (len(failed) / len(charges) if charges else None)
        assert m.churn_rate == (m.churned / m.active_at_start if m.active_at_start else None)
    feb = months[1]
    assert feb.churned == 1 and feb.new == 2  # the quarterly one started 00:05 KST on 1 Feb


def check_repurchase(session: Session, shop: Shop) -> None:
    days: dict[tuple[int, int], set[date]] = defaultdict(set)
    for sale in sold(shop):
        for pid, _, _ in sale.items:
            if pid is not None:
                days[(pid, sale.customer_id)].add(kst_date(sale.paid_at))
    gaps: dict[int, list[int]] = defaultdict(list)
    for (pid, _), ds in days.items():
        ordered = sorted(ds)
        gaps[pid] += [(b - a).days for a, b in zip(ordered, ordered[1:], strict=False)]
    for pid in shop.product_ids:
        want = half_up(int(statistics.median(gaps[pid]) * 2), 2) if gaps[pid] else None
        assert analytics.repurchase_interval_days(session, pid) == want, pid
    assert analytics.product_repurchase_intervals(session) == {
        pid: (float(statistics.median(g)), len(g)) for pid, g in gaps.items() if g
    }


# ---------------------------------------------------------------- rollup mechanics and bad input


def test_rollup_table_repurchase_matches_the_function(engine: Engine) -> None:
    with clock.frozen(NOW):
        shop = prepare(engine, "current")
        with Session(engine) as session:
            table = analytics.product_repurchase_intervals(session)
            for pid in shop.product_ids:
                days = analytics.repurchase_interval_days(session, pid)
                assert (days is None) == (pid not in table)
                if days is not None:
                    assert abs(table[pid][0] - days) <= 0.5


def test_job_is_registered_idempotent_and_rolls_up_today_incrementally(engine: Engine) -> None:
    assert any(j.target == "core.analytics.jobs:analytics_rollup_job" for j in JOBS)
    with clock.frozen(NOW):
        shop = prepare(engine, "live")
    assert analytics.analytics_rollup_job(engine, NOW)["rebuilt"] == 1
    assert analytics.analytics_rollup_job(engine, NOW) == {"rebuilt": 0, "orders": 0, "chunks": 0, "days": 0, "repaired_days": 0, "repaired_customers": 0}
    # New sales and a refund after the watermark: the next run adds them to today's partial rows.
    later = NOW + timedelta(hours=1)
    with clock.frozen(later), Session(engine, expire_on_commit=False) as session:
        writer = ShopWriter(session, first_key=20_000)
        p = shop.product_ids
        writer.sale(
            shop, shop.customer_ids[3], kst(2026, 3, 15, 12, 30), [(p[0], 1, 30_000), (p[3], 1, 15_000)]
        )
        new = writer.sale(
            shop, shop.customer_ids[0], kst(2026, 3, 15, 12, 40), [(p[1], 2, 40_000)], method="MONEY"
        )
        writer.refund(new, 10_000, kst(2026, 3, 15, 12, 50))
        session.commit()
    assert analytics.analytics_rollup_job(engine, later) == {"rebuilt": 0, "orders": 2, "chunks": 1, "days": 0, "repaired_days": 0, "repaired_customers": 0}
    tomorrow = NOW + timedelta(days=1)
    assert analytics.analytics_rollup_job(engine, tomorrow) == {"rebuilt": 0, "orders": 0, "chunks": 0, "days": 1, "repaired_days": 0, "repaired_customers": 0}
    with clock.frozen(tomorrow), Session(engine) as session:
        assert analytics.coverage(session).until == tomorrow - analytics.ROLLUP_GRACE
        check_revenue_range(session, shop, FIRST, date(2026, 3, 16))
        check_products_and_methods(session, shop)
        check_customers_as_of(session, shop, date(2026, 3, 16))
        check_repurchase(session, shop)


def check_revenue_range(session: Session, shop: Shop, first: date, last: date) -> None:
    for filters in ({}, {"product_id": shop.product_ids[0]}, {"method": "MONEY"}):
        got = [
            (pt.period, pt.orders, pt.gross, pt.refunds)
            for pt in analytics.revenue_series(session, first, last, "day", **filters)
        ]
        assert got == expected_series(shop, first, last, "day", **filters), filters


def check_customers_as_of(session: Session, shop: Shop, today: date) -> None:
    exp = expected_customers(shop)
    value = analytics.customer_value(session)
    assert (value.customers, value.net) == (len(exp), sum(c["net"] for c in exp.values()))
    assert value.repeat_customers == sum(1 for c in exp.values() if c["orders"] >= 2)
    rows = analytics.cohorts(session)
    assert sum(r.customers for r in rows) == len(exp)
    assert sum(r.net for r in rows) == value.net
    del today


def test_record_sale_marks_only_rolled_up_days(engine: Engine) -> None:
    with clock.frozen(NOW):
        prepare(engine, "current")
        with Session(engine) as session:
            today = session.get(Order, 1)
            today.paid_at = NOW
            assert analytics.record_sale(session, today) is False
            today.paid_at = NOW - timedelta(days=3)
            assert analytics.record_sale(session, today) is True
            assert analytics.record_sale(session, today) is True  # idempotent: still one row
            session.commit()
            assert analytics.coverage(session).dirty == frozenset({date(2026, 3, 12)})


def test_empty_shop_and_bad_ranges(engine: Engine) -> None:
    with clock.frozen(NOW), Session(engine) as session:
        for _ in range(2):
            assert analytics.revenue_totals(session, FIRST, LAST) == analytics.Totals()
            series = analytics.revenue_series(session, date(2016, 3, 16), LAST, "month")  # ten years
            assert len(series) == 121 and all(p.gross == 0 for p in series)
            assert analytics.customer_value(session).ltv is None
            assert analytics.customer_value(session).repeat_rate is None
            assert analytics.cohorts(session) == [] and analytics.vip_customers(session) == []
            assert analytics.link_funnel(session, FIRST, LAST).conversion is None
            assert all(
                m.churn_rate is None and m.mrr == 0
                for m in analytics.subscription_months(session, FIRST, LAST)
            )
            with pytest.raises(ValidationFailed, match="종료일"):
                analytics.revenue_series(session, LAST, FIRST)
            with pytest.raises(ValidationFailed):
                analytics.revenue_series(session, FIRST, LAST, "year")
            session.commit()
            analytics.rebuild_rollups(engine, date(2026, 3, 15))


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (100, [1, 1, 1], [33, 33, 34]),
        (7001, [30000, 40000], [3000, 4001]),
        (5, [], []),
        (10, [0, 0], [0, 10]),
        (-9, [1, 2], [-3, -6]),
    ],
)
def test_split_amount(total: int, weights: list[int], shares: list[int]) -> None:
    assert analytics.split_amount(total, weights) == shares
    assert sum(shares) == (total if weights else 0)


@pytest.mark.parametrize(
    ("n", "d", "q"), [(10, 4, 3), (9, 4, 2), (-10, 4, -3), (0, 5, 0), (5, 0, None), (39000, 1, 39000)]
)
def test_rounded_div(n: int, d: int, q: int | None) -> None:
    assert analytics.rounded_div(n, d) == q


@pytest.mark.parametrize(
    ("first", "last", "prev"),
    [
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 1, 29), date(2026, 2, 28))),
        (date(2026, 3, 15), date(2026, 3, 15), (date(2026, 3, 14), date(2026, 3, 14))),
    ],
)
def test_previous_range(first: date, last: date, prev: tuple[date, date]) -> None:
    assert analytics.previous_range(first, last) == prev


def _rollup_rows(engine: Engine) -> dict[str, set[tuple]]:
    tables = ("daily_sales", "daily_product_sales", "customer_sales", "customer_month", "cohort_retention",
              "cohort_value", "repurchase_gap", "product_repurchase", "customer_product_last")
    with Session(engine) as session:
        return {t: {tuple(str(v) for v in row) for row in session.execute(text(f"SELECT * FROM {t}"))} for t in tables}


def test_backdated_import_marks_days_dirty_and_shows_at_once(engine: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    from core.payments.order_import import import_orders

    with clock.frozen(NOW):
        prepare(engine, "current")
        with Session(engine) as session:
            before = analytics.revenue_totals(session, date(2026, 2, 10), date(2026, 2, 10))
        text_csv = (
            "order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price\n"
            "IMP-1,2026-02-10 23:30,김민지,010-1234-5678,수분크림,2,15000\n"
        )
        with Session(engine) as session:
            assert import_orders(session, actors["owner"], text_csv.encode()).created == 1
            session.commit()
        with Session(engine) as session:
            assert analytics.coverage(session).dirty == frozenset({date(2026, 2, 10)})
            after = analytics.revenue_totals(session, date(2026, 2, 10), date(2026, 2, 10))
            assert (after.orders, after.gross) == (before.orders + 1, before.gross + 30_000)
            value = analytics.customer_value(session)
            cohorts = analytics.cohorts(session)
        counts = analytics.analytics_rollup_job(engine, NOW)
        assert (counts["rebuilt"], counts["repaired_days"], counts["repaired_customers"]) == (0, 1, 1)
        with Session(engine) as session:
            assert analytics.coverage(session).dirty == frozenset()
            assert analytics.revenue_totals(session, date(2026, 2, 10), date(2026, 2, 10)) == after
            assert analytics.customer_value(session) == value
            assert analytics.cohorts(session) == cohorts
        # The repair equals a rebuild from scratch, row for row.
        repaired = _rollup_rows(engine)
        analytics.rebuild_rollups(engine, NOW - analytics.ROLLUP_GRACE)
        assert _rollup_rows(engine) == repaired


def test_run_import_repairs_exactly_the_affected_days_and_customers(engine: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    """A backdated import by a known customer (before her first purchase: she moves to an earlier
    cohort) and by a new customer: only their rows, the two days and the cohort cells they move
    change; LTV and cohorts are current at once and equal a rebuild from scratch."""
    from core.models import Customer
    from core.payments.order_import import run_import

    with clock.frozen(NOW):
        shop = prepare(engine, "current")
        # Rolled forward to now, as the import's own rollup step would: it then only repairs.
        analytics.refresh_rollups(engine, NOW)
        old = _rollup_rows(engine)
        with Session(engine) as session:
            name = session.get(Customer, shop.customer_ids[3]).name  # no phone: matched by name
        text_csv = (
            "order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price\n"
            f"IMP-1,2025-12-20 08:00,{name},,수분크림,1,12000\n"
            "IMP-2,2026-02-28 23:59,새고객,010-5555-0001,토너,3,9000\n"
        )
        result = run_import(engine, actors["owner"], text_csv.encode())
        assert result.created == 2 and result.repaired == {"repaired_days": 2, "repaired_customers": 2}
        assert (result.rollup["rebuilt"], result.rolled_up, result.rollup_failed) == (0, 0, None)
        with Session(engine) as session:
            assert analytics.coverage(session).dirty == frozenset()
            new_id = session.execute(text("SELECT id FROM customer WHERE phone LIKE '%5555%0001'")).scalar()
            value = analytics.customer_value(session)
            cohorts = analytics.cohorts(session)
            assert (cohorts[0].cohort, cohorts[0].customers) == (date(2025, 12, 1), 1)
        new = _rollup_rows(engine)
        touched = {shop.customer_ids[3], new_id}
        for table in ("customer_sales", "customer_month"):
            changed = {row[0] for row in old[table] ^ new[table]}
            assert changed == {str(c) for c in touched}, table
        for table in ("daily_sales", "daily_product_sales"):
            assert {row[0] for row in old[table] ^ new[table]} == {"2025-12-20", "2026-02-28"}, table
        # Her old cohort loses her, the new month gains her, the new customer's month gains one.
        assert {row[0] for row in old["cohort_value"] ^ new["cohort_value"]} == {
            "2025-12-01",
            "2026-01-01",
            "2026-02-01",
        }
        assert old["repurchase_gap"] == new["repurchase_gap"]  # imported items name no product
        # The figures are those of a rebuild from scratch.
        analytics.rebuild_rollups(engine, NOW - analytics.ROLLUP_GRACE)  # the same watermark
        assert _rollup_rows(engine) == new
        with Session(engine) as session:
            assert analytics.customer_value(session) == value and analytics.cohorts(session) == cohorts


def test_rebuild_commits_chunk_by_chunk_and_keeps_writes_made_in_between(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each week is its own transaction: a writer gets in between chunks (with SQLite's BEGIN
    IMMEDIATE it could not while one transaction held the lock), and its sales, before or after
    the moving watermark, end up in the figures."""
    with clock.frozen(NOW):
        with Session(engine, expire_on_commit=False) as session:
            shop = build_shop(session)
        real_scope = rollup.session_scope
        scopes: list[int] = []

        @contextmanager
        def scope(bind: Engine):  # type: ignore[no-untyped-def]
            with real_scope(bind) as session:
                yield session
            scopes.append(1)
            if len(scopes) == 4:  # the reset and two weeks are committed: write as the UI would
                with Session(bind, expire_on_commit=False) as other:
                    writer = ShopWriter(other, first_key=20_000)
                    early = writer.sale(
                        shop, shop.customer_ids[5], kst(2026, 1, 3, 10), [(shop.product_ids[0], 2, 30_000)]
                    )
                    late = writer.sale(
                        shop, shop.customer_ids[6], kst(2026, 3, 2, 10), [(shop.product_ids[1], 1, 20_000)]
                    )
                    assert analytics.record_sale(other, other.get(Order, early.order_id))
                    assert not analytics.record_sale(other, other.get(Order, late.order_id))
                    other.commit()

        monkeypatch.setattr(rollup, "session_scope", scope)
        monkeypatch.setattr(rollup, "REBUILD_CHUNK_ORDERS", 3)  # chunks of this small shop's size
        counts = analytics.rebuild_rollups(engine, date(2026, 3, 15))
        monkeypatch.undo()
        assert counts["chunks"] == len(scopes) - 2 >= 10  # reset, chunks, the last look at the state
        assert analytics.repair_dirty(engine) == {"repaired_days": 1, "repaired_customers": 1}
        with Session(engine) as session:
            check_revenue(session, shop)
            check_products_and_methods(session, shop)
            check_customers(session, shop)
            check_repurchase(session, shop)


@pytest.mark.parametrize("values", [[5], [1, 9], [3, 1, 2], [7, 7, 7, 30], [1, 2, 3, 4, 100, 100]])
def test_median_of_counts_equals_the_median(values: list[int]) -> None:
    counts: dict[int, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    assert rules._median_of_counts(counts) == statistics.median(values)
