"""The 매출 page's customer figures: LTV and repeat rate, cohorts, VIPs, repurchase intervals,
and the subscriptions' monthly figures (MRR, churn).
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from core import clock
from core.analytics.facts import (
    Facts,
    _bind_instant,
    _live_facts,
    _memo,
    _repurchase_after,
    _repurchase_gaps,
    lifetime_customers,
    repurchase_histogram,
)
from core.analytics.rollup import Coverage, _merge_customers, coverage
from core.analytics.rules import (
    _CHUNK,
    _as_date,
    _as_utc,
    _median_of_counts,
    add_months,
    check_range,
    kst_day,
    month_start,
    months_between,
    ratio,
    rounded_div,
)


def repurchase_interval_days(session: Session, product_id: int) -> int | None:
    """Median days between purchases of this product by the same customer (None: nobody rebought).

    The repurchase reminder uses it as its default cycle when a product has no replenishment_days.
    Purchases on the same KST day count once; the median is rounded half up to whole days.
    """
    gaps = _repurchase_gaps(session, product_id).get(product_id)
    if not gaps:
        return None
    return int(statistics.median(gaps) * 2 + 1) // 2


# ---------------------------------------------------------------- customers: LTV, repeat, cohorts, VIP


def _tail_customers(session: Session) -> tuple[Facts, dict[int, list[Any]], dict[int, list[Any]], bool]:
    return _memo(session, ("tail", clock.today_kst()), lambda: _read_tail_customers(session))


def _read_tail_customers(
    session: Session,
) -> tuple[Facts, dict[int, list[Any]], dict[int, list[Any]], bool]:
    """Customers touched after the rollups end.

    Returns (tail facts, before, after, has_rollup): `before` holds their rollup rows, `after`
    their lifetime rows with the tail added; a row is [orders, gross, refunds, first_paid_at,
    last_paid_at].
    """
    cov = coverage(session)
    today = clock.today_kst()
    end = clock.kst_midnight(today + timedelta(days=1))
    if cov.dirty:
        # A backdated write changed a rolled-up customer: read everything live until the rebuild.
        cov = Coverage(None, frozenset())
    if cov.until is None:
        facts = lifetime_customers(session, end)
    elif cov.until >= end:
        facts = Facts()
    else:
        facts = _live_facts(session, cov.until, end)
    before: dict[int, list[Any]] = {}
    if cov.until is not None and facts.customers:
        ids = sorted(facts.customers)
        statement = text(
            "SELECT customer_id, orders, gross, refunds, first_paid_at, last_paid_at FROM customer_sales "
            "WHERE customer_id IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        for i in range(0, len(ids), _CHUNK):
            for cid, orders, gross, refunds, first, last in session.execute(
                statement, {"ids": ids[i : i + _CHUNK]}
            ):
                before[cid] = [orders, gross, refunds, _as_utc(first), _as_utc(last)]
    after = {cid: list(row) for cid, row in before.items()}
    _merge_customers(after, facts.customers)
    return facts, before, after, cov.until is not None


@dataclass(frozen=True)
class CustomerValue:
    customers: int  # who paid at least once
    repeat_customers: int  # who paid for two orders or more
    net: int  # lifetime net revenue of them all

    @property
    def ltv(self) -> int | None:
        """Lifetime net revenue per paying customer."""
        return rounded_div(self.net, self.customers)

    @property
    def repeat_rate(self) -> float | None:
        return ratio(self.repeat_customers, self.customers)


def customer_value(session: Session) -> CustomerValue:
    """Lifetime value (net revenue per paying customer) and the repeat-purchase rate, as of now."""
    _facts, before, after, has_rollup = _tail_customers(session)
    customers = repeat = net = 0
    if has_rollup:
        row = session.execute(
            text("SELECT SUM(customers), SUM(repeat_customers), SUM(net) FROM cohort_value")
        ).one()
        customers, repeat, net = int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)
    for cid, (orders, gross, refunds, first, _last) in after.items():
        old = before.get(cid)
        if old is not None:
            customers -= 1
            repeat -= 1 if old[0] >= 2 else 0
            net -= old[1] - old[2]
        if first is not None:
            customers += 1
            repeat += 1 if orders >= 2 else 0
            net += gross - refunds
    return CustomerValue(customers=customers, repeat_customers=repeat, net=net)


@dataclass(frozen=True)
class CohortRow:
    cohort: date
    customers: int
    net: int
    retention: list[float | None]  # share of the cohort buying in month 0, 1, 2, ... (up to now)

    @property
    def ltv(self) -> int | None:
        return rounded_div(self.net, self.customers)


def cohorts(session: Session, since: date | None = None) -> list[CohortRow]:
    """Monthly first-purchase cohorts (from `since`): size, net per customer, retention by month.

    retention[k] is the share of the cohort's customers who paid for an order in the k-th month
    after their first (k = 0 is always 100%).
    """
    facts, before, after, has_rollup = _tail_customers(session)
    size: dict[date, int] = defaultdict(int)
    net: dict[date, int] = defaultdict(int)
    cells: dict[tuple[date, int], int] = defaultdict(int)
    if has_rollup:
        for month, count, total in session.execute(
            text("SELECT cohort_month, customers, net FROM cohort_value")
        ):
            size[_as_date(month)] += int(count)
            net[_as_date(month)] += int(total or 0)
        for month, offset, count in session.execute(
            text("SELECT cohort_month, month_offset, customers FROM cohort_retention")
        ):
            cells[(_as_date(month), int(offset))] += int(count)
    cohort_of: dict[int, date] = {}
    for cid, row in after.items():
        old = before.get(cid)
        if old is not None:
            old_cohort = month_start(kst_day(old[3]))
            size[old_cohort] -= 1
            net[old_cohort] -= old[1] - old[2]
        if row[3] is not None:
            cohort = cohort_of[cid] = month_start(kst_day(row[3]))
            size[cohort] += 1
            net[cohort] += row[1] - row[2]
    pairs = set(facts.customer_months)
    if has_rollup and pairs:
        ids = sorted({cid for cid, _ in pairs})
        statement = text(
            "SELECT customer_id, month FROM customer_month WHERE customer_id IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        for i in range(0, len(ids), _CHUNK):
            pairs -= {(c, _as_date(m)) for c, m in session.execute(statement, {"ids": ids[i : i + _CHUNK]})}
    for cid, month in pairs:
        cohort = cohort_of[cid]
        cells[(cohort, months_between(cohort, month))] += 1
    this_month = month_start(clock.today_kst())
    rows = []
    for cohort in sorted(c for c, n in size.items() if n > 0 and (since is None or c >= since)):
        span = max(0, months_between(cohort, this_month))
        rows.append(
            CohortRow(
                cohort=cohort,
                customers=size[cohort],
                net=net[cohort],
                retention=[ratio(cells.get((cohort, k), 0), size[cohort]) for k in range(span + 1)],
            )
        )
    return rows


@dataclass(frozen=True)
class VipCustomer:
    customer_id: int
    name: str
    orders: int
    net: int
    last_paid_at: datetime


def vip_customers(session: Session, limit: int = 10) -> list[VipCustomer]:
    """The top spenders by lifetime net revenue, with their last purchase."""
    if limit <= 0:
        return []
    _facts, _before, after, has_rollup = _tail_customers(session)
    rows: dict[int, tuple[int, int, datetime]] = {}
    if has_rollup:
        for cid, orders, net, last in session.execute(
            text(
                "SELECT customer_id, orders, net, last_paid_at FROM customer_sales "
                "ORDER BY net DESC, customer_id LIMIT :n"
            ),
            {"n": limit + len(after)},
        ):
            rows[cid] = (int(orders), int(net), _as_utc(last))
    for cid, (orders, gross, refunds, first, last) in after.items():
        if first is not None:
            rows[cid] = (orders, gross - refunds, last)
    top = sorted(rows.items(), key=lambda item: (-item[1][1], item[0]))[:limit]
    names: dict[int, str] = {}
    if top:
        statement = text("SELECT id, name FROM customer WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        names = dict(session.execute(statement, {"ids": [cid for cid, _ in top]}).all())
    return [
        VipCustomer(customer_id=cid, name=names.get(cid, "-"), orders=o, net=n, last_paid_at=last)
        for cid, (o, n, last) in top
    ]


def product_repurchase_intervals(session: Session) -> dict[int, tuple[float, int]]:
    """product -> (median days between repurchases, number of intervals), as of now.

    From the rollup (a histogram of gaps) plus the gaps of the sales after its watermark; fully
    live before the first rollup or while a day is dirty.
    """
    cov = coverage(session)
    if cov.until is None or cov.dirty:
        return {
            pid: (_median_of_counts(counts), sum(counts.values()))
            for pid, counts in repurchase_histogram(session).items()
        }
    result = {
        int(pid): (float(median), int(n))
        for pid, median, n in session.execute(
            text("SELECT product_id, median_days, intervals FROM product_repurchase")
        ).all()
    }
    tail, _latest = _repurchase_after(session, cov.until, clock.now() + timedelta(days=1))
    products = sorted(pid for pid, gaps in tail.items() if gaps)
    if products:
        histogram: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        statement = text(
            "SELECT product_id, gap_days, intervals FROM repurchase_gap WHERE product_id IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        for pid, gap, count in session.execute(statement, {"ids": products}):
            histogram[pid][int(gap)] += int(count)
        for pid in products:
            for gap in tail[pid]:
                histogram[pid][gap] += 1
            result[pid] = (_median_of_counts(histogram[pid]), sum(histogram[pid].values()))
    return result


# ---------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class SubscriptionMonth:
    month: date
    mrr: int
    active: int
    new: int
    churned: int
    charges: int
    failed_charges: int
    active_at_start: int

    @property
    def churn_rate(self) -> float | None:
        return ratio(self.churned, self.active_at_start)

    @property
    def failed_charge_rate(self) -> float | None:
        return ratio(self.failed_charges, self.charges)


def monthly_amount(amount: int, interval_unit: str, interval_count: int) -> int:
    """A subscription's amount per month (MRR contribution), rounded half up."""
    count = max(1, interval_count)
    if interval_unit == "week":
        return rounded_div(amount * 52, 12 * count) or 0
    if interval_unit == "day":
        return rounded_div(amount * 365, 12 * count) or 0
    return rounded_div(amount, count) or 0


def subscription_months(session: Session, first: date, last: date) -> list[SubscriptionMonth]:
    """MRR, active, new, churned, churn and failed-charge rates for each KST month in the range.

    History comes from started_at / canceled_at (a subscription counts as active from its start
    until it is canceled); MRR and "active" are taken at the month's end, or now for this month.
    Churn rate = canceled in the month / active at its start. Failed-charge rate = charges of
    the month's periods that ended failed / those that ended succeeded or failed.
    """
    check_range(first, last)
    months: list[date] = []
    month = month_start(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    now = clock.now()
    # Instants where the figures are taken: each month's start, and its end (or now, this month).
    points: list[datetime] = []
    for month in months:
        start, end = clock.kst_midnight(month), clock.kst_midnight(add_months(month, 1))
        points += [start, min(end, now) if start <= now else end, end]
    # Each subscription's monthly amount is computed in SQL; instants are compared in their stored
    # form (text on SQLite, timestamptz on PostgreSQL), so no row is parsed in Python.
    monthly = (
        "CASE WHEN p.interval_unit = 'week' THEN (2 * s.amount * 52 + 12 * COALESCE(p.interval_count, 1)) "
        "/ (24 * COALESCE(p.interval_count, 1)) "
        "WHEN p.interval_unit = 'day' THEN (2 * s.amount * 365 + 12 * COALESCE(p.interval_count, 1)) "
        "/ (24 * COALESCE(p.interval_count, 1)) "
        "ELSE (2 * s.amount + COALESCE(p.interval_count, 1)) / (2 * COALESCE(p.interval_count, 1)) END"
    )
    rows = session.execute(
        text(
            f"SELECT s.started_at, s.canceled_at, {monthly} FROM subscription s "
            "LEFT JOIN subscription_plan p ON p.id = s.plan_id"
        )
    ).all()
    # Sweep: active at t = started before t minus canceled before t (a cancel never precedes its start).
    starts = sorted((started, int(m)) for started, _c, m in rows)
    cancels = sorted((max(c, started), int(m)) for started, c, m in rows if c is not None)
    start_times = [t for t, _ in starts]
    cancel_times = [t for t, _ in cancels]
    start_mrr = list(itertools.accumulate((m for _, m in starts), initial=0))
    cancel_mrr = list(itertools.accumulate((m for _, m in cancels), initial=0))
    raw_cancels = sorted(c for _s, c, _m in rows if c is not None)

    def figures_at(instant: datetime) -> tuple[int, int, int, int]:
        """(active, MRR, started before, canceled before) at an instant."""
        bound = _bind_instant(session, instant)
        i = bisect.bisect_left(start_times, bound)
        j = bisect.bisect_left(cancel_times, bound)
        return i - j, start_mrr[i] - cancel_mrr[j], i, bisect.bisect_left(raw_cancels, bound)

    at = [figures_at(instant) for instant in points]
    charges: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for period, status, count in session.execute(
        text(
            "SELECT period, status, COUNT(*) FROM subscription_charge WHERE period >= :a AND period < :b "
            "AND status IN ('succeeded', 'failed') GROUP BY period, status"
        ),
        {"a": month_start(first), "b": add_months(month_start(last), 1)},
    ):
        row = charges[month_start(_as_date(period))]
        row[0] += int(count)
        row[1] += int(count) if status == "failed" else 0

    result = []
    for k, month in enumerate(months):
        start, taken, end = at[3 * k], at[3 * k + 1], at[3 * k + 2]
        result.append(
            SubscriptionMonth(
                month=month,
                mrr=taken[1],
                active=taken[0],
                new=end[2] - start[2],
                churned=end[3] - start[3],
                charges=charges[month][0],
                failed_charges=charges[month][1],
                active_at_start=start[0],
            )
        )
    return result
