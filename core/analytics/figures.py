"""The 매출 page's sales figures: revenue (totals, summary against the previous range, series),
products, payment methods and the payment-link conversion funnel; plus the data fingerprint the
page caches them under. Rolled-up days come from the rollups, the tail live (facts.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from core import clock
from core.analytics.facts import _bind_instant, _live_facts, _memo
from core.analytics.rollup import Coverage, coverage
from core.analytics.rules import (
    DELETED_PRODUCT_ID,
    DELETED_PRODUCT_NAME,
    GRAINS,
    METHOD_LABELS,
    _as_date,
    change,
    check_range,
    period_start,
    previous_range,
    ratio,
    rounded_div,
)
from core.errors import ValidationFailed

VERSION_SECONDS = 60


def data_version(session: Session) -> tuple[Any, ...]:
    """A cheap fingerprint of the data behind the figures (primary-key and indexed maxima only).

    The page caches its figures under it. A new or backdated sale, a refund, a new payment link,
    subscription or charge, and a rollup refresh change it at once; changes that touch no indexed
    column (a link opened, a subscription canceled, a charge failing on retry) show within
    VERSION_SECONDS, the time bucket that is part of the fingerprint.
    """
    row = session.execute(
        text(
            "SELECT (SELECT MAX(paid_at) FROM orders), (SELECT MAX(id) FROM orders), "
            "(SELECT MAX(id) FROM refund), (SELECT MAX(completed_at) FROM refund), "
            "(SELECT MAX(id) FROM payment_link), (SELECT MAX(id) FROM subscription), "
            "(SELECT MAX(id) FROM subscription_charge), (SELECT MAX(id) FROM product), "
            "(SELECT MAX(refreshed_at) FROM analytics_state), (SELECT COUNT(*) FROM analytics_dirty_day)"
        )
    ).one()
    return (clock.today_kst(), int(clock.now().timestamp()) // VERSION_SECONDS, *(str(v) for v in row))


# ---------------------------------------------------------------- revenue


@dataclass(frozen=True)
class Totals:
    gross: int = 0
    refunds: int = 0
    orders: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.refunds

    @property
    def aov(self) -> int | None:
        """Average order value (gross / orders); None when there were no orders."""
        return rounded_div(self.gross, self.orders)


@dataclass(frozen=True, kw_only=True)
class RevenuePoint(Totals):
    """The totals of one day, week or month of the revenue series."""

    period: date


@dataclass(frozen=True)
class RevenueSummary:
    current: Totals
    previous: Totals
    previous_first: date
    previous_last: date

    def delta(self, name: str) -> float | None:
        return change(getattr(self.current, name), getattr(self.previous, name))


def _filters_sql(product_id: int | None, method: str | None) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if product_id is not None:
        clauses.append("product_id = :product_id")
        params["product_id"] = product_id
    if method is not None:
        clauses.append("method = :method")
        params["method"] = method
    return "".join(f" AND {c}" for c in clauses), params


def _read_rollup(
    session: Session,
    cov: Coverage,
    rollup: tuple[date, date],
    columns: str,
    group_by: str,
    *,
    product_id: int | None = None,
    method: str | None = None,
    by_product: bool = False,
) -> Any:
    """Rows of the day rollups over the covered days `rollup`, grouped; days marked dirty are left
    out (their callers read those live). daily_product_sales when a product is asked for."""
    where, params = _filters_sql(product_id, method)
    table = "daily_product_sales" if by_product or product_id is not None else "daily_sales"
    dirty = sorted(d for d in cov.dirty if rollup[0] <= d <= rollup[1])
    skip = " AND day NOT IN :dirty" if dirty else ""
    statement = text(
        f"SELECT {columns} FROM {table} WHERE day >= :first AND day <= :last{where}{skip} GROUP BY {group_by}"
    )
    if dirty:
        statement = statement.bindparams(bindparam("dirty", expanding=True))
        params["dirty"] = dirty
    return session.execute(statement, {"first": rollup[0], "last": rollup[1], **params})


def _daily_values(
    session: Session, first: date, last: date, product_id: int | None = None, method: str | None = None
) -> dict[date, list[int]]:
    """day -> [orders, gross, refunds] for the KST days first..last (rollup + live tail)."""
    check_range(first, last)
    result: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    cov = coverage(session)
    rollup, live = cov.split(first, last)
    if rollup is not None:
        for day, orders, gross, refunds in _read_rollup(
            session, cov, rollup, "day, SUM(orders), SUM(gross), SUM(refunds)", "day",
            product_id=product_id, method=method,
        ):
            result[_as_date(day)] = [int(orders), int(gross), int(refunds)]
    for start, end, live_first, live_last in live:
        facts = _live_facts(session, start, end)
        if product_id is not None:
            for (day, pid, m), (orders, _units, gross, refunds) in facts.product.items():
                if pid == product_id and (method is None or m == method) and live_first <= day <= live_last:
                    row = result[day]
                    row[0] += orders
                    row[1] += gross
                    row[2] += refunds
        else:
            for (day, m), (orders, gross, refunds, _count) in facts.daily.items():
                if (method is None or m == method) and live_first <= day <= live_last:
                    row = result[day]
                    row[0] += orders
                    row[1] += gross
                    row[2] += refunds
    return result


def revenue_totals(
    session: Session, first: date, last: date, product_id: int | None = None, method: str | None = None
) -> Totals:
    values = _daily_values(session, first, last, product_id, method).values()
    return Totals(
        orders=sum(v[0] for v in values), gross=sum(v[1] for v in values), refunds=sum(v[2] for v in values)
    )


def revenue_summary(
    session: Session, first: date, last: date, product_id: int | None = None, method: str | None = None
) -> RevenueSummary:
    """Totals for [first, last] and for the equal period right before it (for the deltas)."""
    check_range(first, last)
    prev_first, prev_last = previous_range(first, last)
    return RevenueSummary(
        current=revenue_totals(session, first, last, product_id, method),
        previous=revenue_totals(session, prev_first, prev_last, product_id, method),
        previous_first=prev_first,
        previous_last=prev_last,
    )


def revenue_series(
    session: Session,
    first: date,
    last: date,
    grain: str = "day",
    product_id: int | None = None,
    method: str | None = None,
) -> list[RevenuePoint]:
    """One point per day / week / month bucket from first to last, empty buckets included."""
    if grain not in GRAINS:
        raise ValidationFailed(f"알 수 없는 단위입니다: {grain} (day, week, month)")
    daily = _daily_values(session, first, last, product_id, method)
    buckets: dict[date, list[int]] = {}
    day = first
    while day <= last:
        buckets.setdefault(period_start(day, grain), [0, 0, 0])
        day += timedelta(days=1)
    for day, (orders, gross, refunds) in daily.items():
        row = buckets[period_start(day, grain)]
        row[0] += orders
        row[1] += gross
        row[2] += refunds
    return [RevenuePoint(period=p, orders=v[0], gross=v[1], refunds=v[2]) for p, v in sorted(buckets.items())]


# ---------------------------------------------------------------- products and methods


@dataclass(frozen=True)
class ProductSales:
    product_id: int
    name: str
    orders: int
    units: int
    gross: int
    refunds: int

    @property
    def net(self) -> int:
        return self.gross - self.refunds


def _product_values(
    session: Session, first: date, last: date, method: str | None = None
) -> tuple[dict[int, list[int]], dict[int, str]]:
    return _memo(
        session, ("products", first, last, method), lambda: _read_product_values(session, first, last, method)
    )


def _read_product_values(
    session: Session, first: date, last: date, method: str | None = None
) -> tuple[dict[int, list[int]], dict[int, str]]:
    check_range(first, last)
    values: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    names: dict[int, str] = {}
    cov = coverage(session)
    rollup, live = cov.split(first, last)
    if rollup is not None:
        for pid, name, orders, units, gross, refunds in _read_rollup(
            session, cov, rollup,
            "product_id, MAX(product_name), SUM(orders), SUM(units), SUM(gross), SUM(refunds)", "product_id",
            method=method, by_product=True,
        ):
            values[pid] = [int(orders), int(units), int(gross), int(refunds)]
            names[pid] = name
    for start, end, live_first, live_last in live:
        facts = _live_facts(session, start, end)
        for (day, pid, m), row in facts.product.items():
            if (method is None or m == method) and live_first <= day <= live_last:
                target = values[pid]
                for i in range(4):
                    target[i] += row[i]
                names.setdefault(pid, facts.product_names.get(pid, ""))
    return values, names


def top_products(
    session: Session,
    first: date,
    last: date,
    *,
    by: str = "gross",
    limit: int = 10,
    method: str | None = None,
) -> list[ProductSales]:
    """Best sellers in the range by revenue ("gross" or "net") or by "units"; deleted products included."""
    if by not in ("gross", "net", "units"):
        raise ValidationFailed(f"알 수 없는 기준입니다: {by}")
    values, names = _product_values(session, first, last, method)
    current = _current_product_names(session, list(values))
    rows = [
        ProductSales(
            product_id=pid,
            name=current.get(pid) or names.get(pid) or DELETED_PRODUCT_NAME,
            orders=v[0],
            units=v[1],
            gross=v[2],
            refunds=v[3],
        )
        for pid, v in values.items()
        if v[0] or v[3]
    ]
    rows.sort(key=lambda r: (-getattr(r, by), r.product_id))
    return rows[:limit]


def _current_product_names(session: Session, product_ids: list[int]) -> dict[int, str]:
    """Today's product names (a renamed product shows under its new name); deleted ones keep old names."""
    ids = [p for p in product_ids if p != DELETED_PRODUCT_ID]
    if not ids:
        return {}
    statement = text("SELECT id, name, deleted_at FROM product WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    return {
        pid: name for pid, name, deleted_at in session.execute(statement, {"ids": ids}) if deleted_at is None
    }


@dataclass(frozen=True)
class MethodShare:
    method: str
    label: str
    orders: int
    gross: int
    share: float | None  # of gross in the range


def method_mix(session: Session, first: date, last: date, product_id: int | None = None) -> list[MethodShare]:
    """Payment method mix of the range (gross and orders per method, share of gross)."""
    check_range(first, last)
    values: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cov = coverage(session)
    rollup, live = cov.split(first, last)
    if rollup is not None:
        for m, orders, gross in _read_rollup(
            session, cov, rollup, "method, SUM(orders), SUM(gross)", "method", product_id=product_id
        ):
            values[m] = [int(orders), int(gross)]
    for start, end, live_first, live_last in live:
        facts = _live_facts(session, start, end)
        if product_id is None:
            for (day, m), row in facts.daily.items():
                if live_first <= day <= live_last:
                    values[m][0] += row[0]
                    values[m][1] += row[1]
        else:
            for (day, pid, m), row in facts.product.items():
                if pid == product_id and live_first <= day <= live_last:
                    values[m][0] += row[0]
                    values[m][1] += row[2]
    total = sum(v[1] for v in values.values())
    rows = [
        MethodShare(
            method=m, label=METHOD_LABELS.get(m, m), orders=v[0], gross=v[1], share=ratio(v[1], total)
        )
        for m, v in values.items()
        if v[0]
    ]
    return sorted(rows, key=lambda r: (-r.gross, r.method))


# ---------------------------------------------------------------- conversion (payment links)

FUNNEL_STAGES = ("sent", "opened", "method_selected", "paid")
FUNNEL_LABELS = {"sent": "발송", "opened": "열람", "method_selected": "수단 선택", "paid": "결제 완료"}


@dataclass(frozen=True)
class Funnel:
    sent: int = 0
    opened: int = 0
    method_selected: int = 0
    paid: int = 0

    @property
    def conversion(self) -> float | None:
        """Payment links paid / sent."""
        return ratio(self.paid, self.sent)

    def stages(self) -> list[tuple[str, str, int, float | None]]:
        """(stage, label, links that reached it, share of sent)."""
        return [
            (s, FUNNEL_LABELS[s], getattr(self, s), ratio(getattr(self, s), self.sent)) for s in FUNNEL_STAGES
        ]


def link_funnel(session: Session, first: date, last: date, product_id: int | None = None) -> Funnel:
    """Payment links sent in the range (KST days of created_at) and how far each got.

    A link reached "opened" if it has opened_at or a later state; "method_selected" if it is in
    method_selected, paid or failed; "paid" if it has paid_at or status paid.
    """
    check_range(first, last)
    start, end = clock.kst_day_range(first, last)
    product_sql = " AND product_id = :product_id" if product_id is not None else ""
    row = session.execute(
        text(
            "SELECT COUNT(*), "
            "SUM(CASE WHEN opened_at IS NOT NULL OR paid_at IS NOT NULL "
            "    OR status IN ('opened', 'method_selected', 'paid', 'failed') THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN paid_at IS NOT NULL OR status IN ('method_selected', 'paid', 'failed') "
            "    THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN paid_at IS NOT NULL OR status = 'paid' THEN 1 ELSE 0 END) "
            f"FROM payment_link WHERE created_at >= :s AND created_at < :e{product_sql}"
        ),
        {"s": _bind_instant(session, start), "e": _bind_instant(session, end), "product_id": product_id},
    ).one()
    return Funnel(*(int(v or 0) for v in row))
