"""Repair of backdated writes: recompute exactly the dirty days, customers, cohort cells and
products' repurchase figures (the order import's callers and the rollup job run it).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, text
from sqlmodel import Session

from core import clock
from core.analytics.facts import (
    COLLECTED_SQL,
    Facts,
    _bind_instant,
    _repurchase_scan,
    collect_facts,
    counted_refunds,
)
from core.analytics.rollup import (
    _insert_many,
    _lock_state,
    _set_state,
    _state_until,
    _update_cohort_values,
    _write_day_facts,
    _write_repurchase_rows,
)
from core.analytics.rules import (
    _CHUNK,
    SOLD_STATUSES,
    _as_date,
    _as_utc,
    kst_day,
    month_start,
    months_between,
)
from core.db import session_scope
from core.models import (
    AnalyticsDirtyCustomer,
    AnalyticsDirtyDay,
    CohortRetention,
    CustomerMonth,
    CustomerProductLast,
    CustomerSales,
    DailyProductSales,
    DailySales,
    ProductRepurchase,
    RepurchaseGap,
)

# ---------------------------------------------------------------- repair of backdated writes


def repair_dirty(engine: Engine) -> dict[str, int]:
    """Recompute exactly what backdated writes changed, in one transaction: the dirty days' daily
    rows, the dirty customers' lifetime rows and months, the cohort cells those customers move
    between, and the repurchase figures of the products sold on the dirty days.

    The order import's callers run it right after their commit; the worker's rollup job runs it
    too (for any other backdated write, or a crash in between). Returns what it recomputed."""
    with session_scope(engine) as session:
        state = _lock_state(session)
        if state is None:
            return {"repaired_days": 0, "repaired_customers": 0}
        until = _state_until(state)
        days = sorted(_as_date(d) for (d,) in session.execute(text("SELECT day FROM analytics_dirty_day")))
        customers = sorted(
            int(c) for (c,) in session.execute(text("SELECT customer_id FROM analytics_dirty_customer"))
        )
        if not days and not customers:
            return {"repaired_days": 0, "repaired_customers": 0}
        products = _repair_days(session, days, until)
        _repair_customers(session, customers, until)
        _repair_repurchase(session, products, until)
        for model, column, keys in (
            (AnalyticsDirtyDay, AnalyticsDirtyDay.day, days),
            (AnalyticsDirtyCustomer, AnalyticsDirtyCustomer.customer_id, customers),
        ):
            for i in range(0, len(keys), _CHUNK):
                session.execute(delete(model).where(column.in_(keys[i : i + _CHUNK])))  # type: ignore[attr-defined]
        _set_state(session, until)  # refreshed_at moves: the page's cached figures are dropped
    return {"repaired_days": len(days), "repaired_customers": len(customers)}


def _day_windows(days: Sequence[date], until: datetime) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive days as [start, end) instants, cut at the watermark."""
    windows: list[tuple[datetime, datetime]] = []
    for _, run in itertools.groupby(enumerate(sorted(days)), key=lambda pair: pair[1].toordinal() - pair[0]):
        run_days = [d for _, d in run]
        start = clock.kst_midnight(run_days[0])
        end = min(until, clock.kst_midnight(run_days[-1] + timedelta(days=1)))
        if start < end:
            windows.append((start, end))
    return windows


def _repair_days(session: Session, days: list[date], until: datetime) -> list[int]:
    """Rewrite the daily rows of the dirty days from the raw tables; returns the products sold then."""
    if not days:
        return []
    facts = Facts()
    products: set[int] = set()
    for start, end in _day_windows(days, until):
        collect_facts(session, start, end, facts)
        products.update(
            int(p)
            for (p,) in session.execute(
                text(
                    "SELECT DISTINCT i.product_id FROM order_item i JOIN orders o ON o.id = i.order_id "
                    "WHERE o.paid_at >= :s AND o.paid_at < :e AND o.status IN :statuses "
                    "AND i.product_id IS NOT NULL"
                ).bindparams(bindparam("statuses", expanding=True)),
                {
                    "s": _bind_instant(session, start),
                    "e": _bind_instant(session, end),
                    "statuses": list(SOLD_STATUSES),
                },
            )
        )
    for i in range(0, len(days), _CHUNK):
        chunk = days[i : i + _CHUNK]
        session.execute(delete(DailySales).where(DailySales.day.in_(chunk)))  # type: ignore[attr-defined]
        session.execute(delete(DailyProductSales).where(DailyProductSales.day.in_(chunk)))  # type: ignore[attr-defined]
    _write_day_facts(session, facts)
    return sorted(products)


def _lifetime_customers(
    session: Session, ids: list[int], until: datetime
) -> tuple[dict[int, list[Any]], set[tuple[int, date]]]:
    """The customers' lifetime rows and paid months before `until`, from the raw tables (the same
    rules as collect_facts: sales by paid_at, refunds by when the money went back)."""
    rows: dict[int, list[Any]] = {cid: [0, 0, 0, None, None] for cid in ids}
    months: set[tuple[int, date]] = set()
    order_ids: list[int] = []
    orders = text(
        "SELECT id, customer_id, total_amount, paid_at, status FROM orders WHERE customer_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    for i in range(0, len(ids), _CHUNK):
        for order_id, cid, total, paid_at, status in session.execute(orders, {"ids": ids[i : i + _CHUNK]}):
            order_ids.append(order_id)
            if paid_at is None or status not in SOLD_STATUSES:
                continue
            paid_at = _as_utc(paid_at)
            if paid_at >= until:
                continue
            row = rows[cid]
            row[0] += 1
            row[1] += total
            row[3] = paid_at if row[3] is None else min(row[3], paid_at)
            row[4] = paid_at if row[4] is None else max(row[4], paid_at)
            months.add((cid, month_start(kst_day(paid_at))))
    refunds = text(
        "SELECT r.id, r.amount, COALESCE(r.completed_at, r.created_at), o.customer_id, o.id, o.total_amount, "
        f"{COLLECTED_SQL} "
        "FROM refund r JOIN payment p ON p.id = r.payment_id "
        "JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id) "
        "WHERE r.status = 'succeeded' AND (r.order_id IN :ids OR (r.order_id IS NULL AND p.order_id IN :ids))"
    ).bindparams(bindparam("ids", expanding=True))
    seen: set[int] = set()
    found: list[tuple[int, int, Any, int, int, int, int]] = []
    for i in range(0, len(order_ids), _CHUNK):
        for row in session.execute(refunds, {"ids": order_ids[i : i + _CHUNK]}):
            if row[0] in seen or _as_utc(row[2]) >= until or row[3] not in rows:
                continue
            seen.add(row[0])
            found.append(tuple(row))
    counted = counted_refunds(session, [(r[0], r[4], r[5], r[6], r[1]) for r in found])
    for refund_id, _amount, _at, cid, _order, _total, _collected in found:
        rows[cid][2] += counted[refund_id]
    return rows, months


def _repair_customers(session: Session, ids: list[int], until: datetime) -> None:
    """Replace the customers' rollup rows and move their cohort figures from the old to the new."""
    if not ids:
        return
    before: dict[int, list[Any]] = {}
    old_months: set[tuple[int, date]] = set()
    sales = text(
        "SELECT customer_id, orders, gross, refunds, first_paid_at, last_paid_at FROM customer_sales "
        "WHERE customer_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    months = text("SELECT customer_id, month FROM customer_month WHERE customer_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        for cid, orders, gross, refunds, first, last in session.execute(sales, {"ids": chunk}):
            before[cid] = [orders, gross, refunds, _as_utc(first), _as_utc(last)]
        old_months |= {(c, _as_date(m)) for c, m in session.execute(months, {"ids": chunk})}
        session.execute(delete(CustomerSales).where(CustomerSales.customer_id.in_(chunk)))  # type: ignore[attr-defined]
        session.execute(delete(CustomerMonth).where(CustomerMonth.customer_id.in_(chunk)))  # type: ignore[attr-defined]
    after, new_months = _lifetime_customers(session, ids, until)
    _update_cohort_values(session, before, after)
    _insert_many(
        session,
        CustomerSales,
        [
            {
                "customer_id": cid,
                "orders": v[0],
                "gross": v[1],
                "refunds": v[2],
                "net": v[1] - v[2],
                "first_paid_at": v[3],
                "last_paid_at": v[4],
                "first_month": month_start(kst_day(v[3])),
            }
            for cid, v in after.items()
            if v[3] is not None
        ],
    )
    _insert_many(session, CustomerMonth, [{"customer_id": c, "month": m} for c, m in sorted(new_months)])
    cells: dict[tuple[date, int], int] = defaultdict(int)
    for month, offset, count in session.execute(
        text("SELECT cohort_month, month_offset, customers FROM cohort_retention")
    ):
        cells[(_as_date(month), int(offset))] += int(count)
    for rows, pairs, sign in ((before, old_months, -1), (after, new_months, 1)):
        for cid, month in pairs:
            first = rows.get(cid, [None] * 5)[3]
            if first is None:
                continue
            cohort = month_start(kst_day(first))
            cells[(cohort, months_between(cohort, month))] += sign
    session.execute(delete(CohortRetention))
    _insert_many(
        session,
        CohortRetention,
        [{"cohort_month": c, "month_offset": o, "customers": n} for (c, o), n in cells.items() if n],
    )


def _repair_repurchase(session: Session, products: list[int], until: datetime) -> None:
    """Recompute the repurchase histogram and last purchases of these products up to `until`."""
    if not products:
        return
    gaps, latest = _repurchase_scan(session, products=products, end=until)
    for i in range(0, len(products), _CHUNK):
        chunk = products[i : i + _CHUNK]
        for model in (RepurchaseGap, ProductRepurchase, CustomerProductLast):
            session.execute(delete(model).where(model.product_id.in_(chunk)))  # type: ignore[attr-defined]
    _write_repurchase_rows(session, gaps)
    _insert_many(
        session,
        CustomerProductLast,
        [{"customer_id": c, "product_id": p, "last_day": d} for (c, p), d in latest.items()],
    )
