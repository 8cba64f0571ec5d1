"""Owner sales analytics: revenue, the Power Trio (conversion, AOV, LTV), cohorts, products, MRR.

Definitions (one rule each, the same in the rollups, the live tail and the tests):
- A sale is an order with `paid_at` set and status paid / partially_refunded / refunded; it counts
  on the KST day of `paid_at`, for its `total_amount` (gross), with the method of its first approved
  payment ("OTHER" when none).
- A refund is a succeeded refund row; it counts on the KST day its money went back
  (`completed_at`, else `created_at`), so a day can have more refunds than sales (net < 0).
- Per product, an order's total and each refund are split over its items in proportion to the
  item amounts (floor, the remainder on the last item), so product figures add up to order figures.
- AOV = gross / orders; LTV = lifetime net revenue / customers who paid at least once.

Speed: everything before the watermark `analytics_state.covered_until_at` comes from rollup
tables (core/models/analytics.py) that the worker job `analytics_rollup` keeps (every 10 minutes,
up to now minus 5 minutes, today included); everything after it (minutes, or more while the
worker lags) and the days marked dirty by `record_sale` / `record_refund` are computed live from
the raw tables with the same code that builds the rollups. Reads are cheap at a
million orders because they touch a few thousand rollup rows, not the orders.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import clock
from core.db import is_postgres, session_scope
from core.errors import ValidationFailed
from core.models import (
    AnalyticsDirtyCustomer,
    AnalyticsDirtyDay,
    AnalyticsState,
    CohortRetention,
    CohortValue,
    CustomerMonth,
    CustomerProductLast,
    CustomerSales,
    DailyProductSales,
    DailySales,
    Order,
    ProductRepurchase,
    Refund,
    RepurchaseGap,
)

SOLD_STATUSES = ("paid", "partially_refunded", "refunded")
OTHER_METHOD = "OTHER"
DELETED_PRODUCT_ID = 0
DELETED_PRODUCT_NAME = "(삭제된 상품)"
METHOD_LABELS = {"CARD": "카드", "MONEY": "카카오페이머니", OTHER_METHOD: "기타"}
GRAINS = ("day", "week", "month")
MAX_RANGE_DAYS = 366 * 20
_KST_OFFSET = timedelta(hours=9)
_CHUNK = 500


# ---------------------------------------------------------------- small pure helpers


def kst_day(instant: datetime) -> date:
    """KST calendar day of an instant (Korea has no DST: a fixed +9h is exact and fast)."""
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return (instant + _KST_OFFSET).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start(day: date, grain: str) -> date:
    """The first day of the day / week (Monday) / month bucket holding `day`."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ValidationFailed(f"알 수 없는 단위입니다: {grain} (day, week, month)")


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return None if not denominator else numerator / denominator


def rounded_div(numerator: int, denominator: int) -> int | None:
    """Integer KRW division rounded half up (away from zero); None when dividing by zero."""
    if not denominator:
        return None
    sign = -1 if (numerator < 0) != (denominator < 0) else 1  # pragma: no mutate (equivalent: 0 / d rounds to 0 with either sign; d == 0 returned above)
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))


def change(current: int | float | None, previous: int | float | None) -> float | None:
    """Relative change against the previous period; None when there was nothing before."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def check_range(first: date, last: date) -> None:
    if last < first:
        raise ValidationFailed("종료일이 시작일보다 빠릅니다. 기간을 다시 선택해 주세요.")
    if (last - first).days > MAX_RANGE_DAYS:
        raise ValidationFailed("기간은 20년 이내로 선택해 주세요.")


def previous_range(first: date, last: date) -> tuple[date, date]:
    """The equal-length period right before [first, last]."""
    length = (last - first).days + 1
    return first - timedelta(days=length), first - timedelta(days=1)


def split_amount(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights`: floor each share, the remainder on the last one."""
    if not weights:
        return []
    weight_sum = sum(weights)
    shares = [0] * len(weights) if weight_sum <= 0 else [total * w // weight_sum for w in weights]  # pragma: no mutate (equivalent: <= 1 also gives all to the one weight of 1)
    shares[-1] += total - sum(shares)
    return shares


# ---------------------------------------------------------------- facts from raw tables


@dataclass
class Facts:
    """Sales facts of a time window, built from the raw tables (the rollups hold the same)."""

    # (day, method) -> [orders, gross, refunds, refund_count]
    daily: dict[tuple[date, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    # (day, product_id, method) -> [orders, units, gross, refunds]
    product: dict[tuple[date, int, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    product_names: dict[int, str] = field(default_factory=dict)
    # customer -> [orders, gross, refunds, first_paid_at, last_paid_at]
    customers: dict[int, list[Any]] = field(default_factory=dict)
    customer_months: set[tuple[int, date]] = field(default_factory=set)

    def customer(self, customer_id: int) -> list[Any]:
        row = self.customers.get(customer_id)
        if row is None:
            row = self.customers[customer_id] = [0, 0, 0, None, None]
        return row


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bind_instant(engine_or_session: Any, instant: datetime) -> Any:
    """Bind an instant the way UtcDateTime stores it (naive UTC text on SQLite)."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    if bind.dialect.name == "sqlite":
        return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return instant


def _items_of(session: Session, order_ids: Iterable[int]) -> dict[int, list[tuple[int, str, int, int]]]:
    """order -> [(product_id, product_name, quantity, amount)] in item id order."""
    result: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    ids = sorted(set(order_ids))
    statement = text(
        "SELECT order_id, product_id, product_name, quantity, amount FROM order_item "
        "WHERE order_id IN :ids ORDER BY order_id, id"
    ).bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(ids), _CHUNK):
        for order_id, product_id, name, quantity, amount in session.execute(
            statement, {"ids": ids[start : start + _CHUNK]}
        ):
            result[order_id].append((product_id or DELETED_PRODUCT_ID, name, quantity, amount))
    return result


def collect_facts(session: Session, start: datetime, end: datetime, facts: Facts | None = None) -> Facts:
    """Add the sales paid and the refunds completed in [start, end) (UTC instants) to `facts`."""
    facts = facts or Facts()
    s, e = _bind_instant(session, start), _bind_instant(session, end)
    statuses = {"statuses": list(SOLD_STATUSES)}
    orders = session.execute(
        text(
            "SELECT o.id, o.customer_id, o.total_amount, o.paid_at, "
            "(SELECT p.method FROM payment p WHERE p.order_id = o.id AND p.approved_at IS NOT NULL "
            " ORDER BY p.id LIMIT 1) "
            "FROM orders o WHERE o.paid_at >= :s AND o.paid_at < :e AND o.status IN :statuses"
        ).bindparams(bindparam("statuses", expanding=True)),
        {"s": s, "e": e, **statuses},
    ).all()
    refunds = session.execute(
        text(
            "SELECT r.amount, COALESCE(r.completed_at, r.created_at), o.id, o.customer_id, o.total_amount, "
            "(SELECT p2.method FROM payment p2 WHERE p2.order_id = o.id AND p2.approved_at IS NOT NULL "
            " ORDER BY p2.id LIMIT 1), p.method "
            "FROM refund r JOIN payment p ON p.id = r.payment_id "
            "JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id) "
            "WHERE r.status = 'succeeded' AND ((r.completed_at >= :s AND r.completed_at < :e) "
            "OR (r.completed_at IS NULL AND r.created_at >= :s AND r.created_at < :e))"
        ),
        {"s": s, "e": e},
    ).all()
    items = _items_of(session, [row[0] for row in orders] + [row[2] for row in refunds])

    for order_id, customer_id, total, paid_at, method in orders:
        paid_at = _as_utc(paid_at)
        day = kst_day(paid_at)
        method = method or OTHER_METHOD
        daily = facts.daily[(day, method)]
        daily[0] += 1
        daily[1] += total
        order_items = items.get(order_id, [])
        seen: set[int] = set()
        for (product_id, name, quantity, _), share in zip(
            order_items, split_amount(total, [item[3] for item in order_items]), strict=True
        ):
            facts.product_names[product_id] = (
                DELETED_PRODUCT_NAME if product_id == DELETED_PRODUCT_ID else name
            )
            row = facts.product[(day, product_id, method)]
            if product_id not in seen:
                row[0] += 1
                seen.add(product_id)
            row[1] += quantity
            row[2] += share
        customer = facts.customer(customer_id)
        customer[0] += 1
        customer[1] += total
        customer[3] = paid_at if customer[3] is None else min(customer[3], paid_at)
        customer[4] = paid_at if customer[4] is None else max(customer[4], paid_at)
        facts.customer_months.add((customer_id, month_start(day)))

    for amount, refunded_at, order_id, customer_id, _total, order_method, payment_method in refunds:
        day = kst_day(_as_utc(refunded_at))
        method = order_method or payment_method or OTHER_METHOD
        daily = facts.daily[(day, method)]
        daily[2] += amount
        daily[3] += 1
        order_items = items.get(order_id, [])
        for (product_id, name, _, _), share in zip(
            order_items, split_amount(amount, [item[3] for item in order_items]), strict=True
        ):
            facts.product_names.setdefault(
                product_id, DELETED_PRODUCT_NAME if product_id == DELETED_PRODUCT_ID else name
            )
            facts.product[(day, product_id, method)][3] += share
        facts.customer(customer_id)[2] += amount
    return facts


# ---------------------------------------------------------------- rollup state and write-path hooks


ROLLUP_GRACE = timedelta(minutes=5)  # a sale committed a little late still lands before the watermark
_TINY = timedelta(microseconds=1)


@dataclass(frozen=True)
class Coverage:
    """What the rollups answer: every sale and refund before `until`, except on the dirty days.

    The day holding `until` is partly rolled up (from its midnight to `until`); the rest of it and
    everything after is read live, and so is every dirty day.
    """

    until: datetime | None
    dirty: frozenset[date]

    def split(
        self, first: date, last: date
    ) -> tuple[tuple[date, date] | None, list[tuple[datetime, datetime, date, date]]]:
        """([rollup first day, last day] or None, live windows (start, end, first day, last day))."""
        range_start, range_end = clock.kst_day_range(first, last)
        if self.until is None or self.until <= range_start:
            return None, [(range_start, range_end, first, last)]
        rollup_last = min(last, kst_day(self.until - _TINY))
        live = [
            (clock.kst_midnight(d), clock.kst_midnight(d + timedelta(days=1)), d, d)
            for d in sorted(d for d in self.dirty if first <= d <= rollup_last)
        ]
        tail_start = self.until
        if kst_day(tail_start) in self.dirty:
            tail_start = clock.kst_midnight(kst_day(tail_start) + timedelta(days=1))
        if tail_start < range_end:
            live.append((tail_start, range_end, kst_day(tail_start), last))
        return (first, rollup_last), live


def coverage(session: Session) -> Coverage:
    return _memo(session, ("coverage",), lambda: _read_coverage(session))


def _state_until(state: AnalyticsState) -> datetime:
    if state.covered_until_at is not None:
        return clock.as_utc(state.covered_until_at)
    return clock.kst_midnight(state.covered_until)


def _read_coverage(session: Session) -> Coverage:
    state = session.get(AnalyticsState, 1)
    if state is None:
        return Coverage(None, frozenset())
    dirty = frozenset(row[0] for row in session.execute(text("SELECT day FROM analytics_dirty_day")))
    return Coverage(_state_until(state), frozenset(_as_date(d) for d in dirty))


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _lock_state(session: Session, *, share: bool = False) -> AnalyticsState | None:
    """The state row, locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers).

    Writers that mark dirty rows take it shared; the rollup steps take it exclusively, so a repair
    never reads the raw tables before a concurrent backdated write is committed and then clears
    the mark that write left (its sale would be lost from the rollups)."""
    if is_postgres(session.get_bind()):
        mode = "SHARE" if share else "UPDATE"
        session.execute(text(f"SELECT id FROM analytics_state WHERE id = 1 FOR {mode}"))
    return session.get(AnalyticsState, 1)


def _insert_ignoring(session: Session, model: Any, key: str, rows: list[dict[str, Any]]) -> None:
    table = model.__table__
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    for start in range(0, len(rows), 5000):
        session.execute(
            dialect.insert(table).on_conflict_do_nothing(index_elements=[key]), rows[start : start + 5000]
        )


def record_sales_at(session: Session, sales: Iterable[tuple[datetime | None, int | None]]) -> int:
    """Bulk writers (order import) call this with the (paid_at or refund instant, customer) they wrote.

    Instants before the rollups' watermark mark their KST day and their customer dirty (read live
    until `repair_dirty` recomputes exactly those days and customers); later ones need nothing.
    Returns how many of the instants were backdated.
    """
    session.flush()
    state = _lock_state(session, share=True)
    if state is None:
        return 0
    until = _state_until(state)
    backdated = [(clock.as_utc(i), c) for i, c in sales if i is not None and clock.as_utc(i) < until]
    now = clock.now()
    _insert_ignoring(
        session,
        AnalyticsDirtyDay,
        "day",
        [{"day": d, "marked_at": now} for d in sorted({kst_day(i) for i, _ in backdated})],
    )
    _insert_ignoring(
        session,
        AnalyticsDirtyCustomer,
        "customer_id",
        [{"customer_id": c, "marked_at": now} for c in sorted({c for _, c in backdated if c is not None})],
    )
    return len(backdated)


def record_sale(session: Session, order: Order) -> bool:
    """Call in the transaction that marks an order paid (or imports one): keeps the rollups honest.

    A sale before the rollups' watermark (a backdated import) marks its day and customer dirty, so
    the page reads live until the repair; a sale now needs nothing (the live tail). Returns True
    when something was marked.
    """
    return record_sales_at(session, [(order.paid_at, order.customer_id)]) > 0


def record_refund(session: Session, refund: Refund) -> bool:
    """Call in the transaction that completes a refund (same reasoning as record_sale); the refund
    belongs to the customer of its order (the payment's order when the refund names none)."""
    order_id = refund.order_id
    if order_id is None:
        order_id = session.execute(
            text("SELECT order_id FROM payment WHERE id = :p"), {"p": refund.payment_id}
        ).scalar()
    customer_id = (
        session.execute(text("SELECT customer_id FROM orders WHERE id = :o"), {"o": order_id}).scalar()
        if order_id is not None
        else None
    )
    return record_sales_at(session, [(refund.completed_at or refund.created_at, customer_id)]) > 0


# ---------------------------------------------------------------- rollup build (worker)


def _first_sale_day(session: Session) -> date | None:
    row = session.execute(text("SELECT MIN(paid_at) FROM orders WHERE paid_at IS NOT NULL")).scalar()
    refund_row = session.execute(text("SELECT MIN(COALESCE(completed_at, created_at)) FROM refund")).scalar()
    candidates = [kst_day(_as_utc(v)) for v in (row, refund_row) if v is not None]
    return min(candidates) if candidates else None


def _insert_many(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany on the table (not the ORM bulk path: ~3x less CPU per row)."""
    table = model.__table__
    for start in range(0, len(rows), 5000):
        session.execute(insert(table), rows[start : start + 5000])


def _write_day_facts(session: Session, facts: Facts, *, add: bool = False) -> None:
    """Insert the facts' day rows; with add=True, add them to the rows already there (partial day)."""
    if add:
        _absorb_existing_days(session, facts)
    _insert_many(
        session,
        DailySales,
        [
            {"day": d, "method": m, "orders": v[0], "gross": v[1], "refunds": v[2], "refund_count": v[3]}
            for (d, m), v in facts.daily.items()
        ],
    )
    _insert_many(
        session,
        DailyProductSales,
        [
            {
                "day": d,
                "product_id": p,
                "method": m,
                "product_name": facts.product_names.get(p, "")[:120],
                "orders": v[0],
                "units": v[1],
                "gross": v[2],
                "refunds": v[3],
            }
            for (d, p, m), v in facts.product.items()
        ],
    )


def _absorb_existing_days(session: Session, facts: Facts) -> None:
    """Fold the stored rows of the facts' days into the facts, then delete them (to be rewritten)."""
    days = sorted({d for d, _ in facts.daily} | {d for d, _, _ in facts.product})
    if not days:
        return
    params = {"days": days}
    for day, method, orders, gross, refunds, count in session.execute(
        text(
            "SELECT day, method, orders, gross, refunds, refund_count FROM daily_sales WHERE day IN :days"
        ).bindparams(bindparam("days", expanding=True)),
        params,
    ):
        row = facts.daily[(_as_date(day), method)]
        for i, value in enumerate((orders, gross, refunds, count)):
            row[i] += int(value)
    for day, pid, method, name, orders, units, gross, refunds in session.execute(
        text(
            "SELECT day, product_id, method, product_name, orders, units, gross, refunds "
            "FROM daily_product_sales WHERE day IN :days"
        ).bindparams(bindparam("days", expanding=True)),
        params,
    ):
        row = facts.product[(_as_date(day), pid, method)]
        for i, value in enumerate((orders, units, gross, refunds)):
            row[i] += int(value)
        facts.product_names.setdefault(pid, name)
    session.execute(delete(DailySales).where(DailySales.day.in_(days)))  # type: ignore[attr-defined]
    session.execute(delete(DailyProductSales).where(DailyProductSales.day.in_(days)))  # type: ignore[attr-defined]


def _repurchase_scan(
    session: Session,
    product_id: int | None = None,
    *,
    products: Sequence[int] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    last: dict[tuple[int, int], date] | None = None,
) -> tuple[dict[int, list[int]], dict[tuple[int, int], date]]:
    """Day gaps between consecutive purchase days of a product by the same customer.

    Reads the sales paid in [start, end) (all by default) of one product (all by default),
    continuing from `last` ((customer, product) -> last purchase day before start). Returns
    (product -> new gaps, (customer, product) -> last purchase day). Same-day purchases count once.
    """
    where = "AND i.product_id = :product_id" if product_id is not None else "AND i.product_id IS NOT NULL"
    params: dict[str, Any] = {"statuses": list(SOLD_STATUSES), "product_id": product_id}
    if products is not None:
        where += " AND i.product_id IN :products"
        params["products"] = list(products)
    if start is not None:
        where += " AND o.paid_at >= :start"
        params["start"] = _bind_instant(session, start)
    if end is not None:
        where += " AND o.paid_at < :end"
        params["end"] = _bind_instant(session, end)
    rows = session.execute(
        text(
            "SELECT i.product_id, o.customer_id, o.paid_at FROM order_item i JOIN orders o ON o.id = i.order_id "
            f"WHERE o.paid_at IS NOT NULL AND o.status IN :statuses {where} "
            "ORDER BY i.product_id, o.customer_id, o.paid_at"
        ).bindparams(
            bindparam("statuses", expanding=True),
            *([bindparam("products", expanding=True)] if products is not None else []),
        ),
        params,
    )
    gaps: dict[int, list[int]] = defaultdict(list)
    latest: dict[tuple[int, int], date] = dict(last or {})
    for pid, customer_id, paid_at in rows:
        day = kst_day(_as_utc(paid_at))
        previous = latest.get((customer_id, pid))
        if previous is not None:
            if day <= previous:
                continue
            gaps[pid].append((day - previous).days)
        latest[(customer_id, pid)] = day
    return gaps, latest


def _repurchase_gaps(session: Session, product_id: int | None = None) -> dict[int, list[int]]:
    """product -> every day gap between consecutive purchases of it by the same customer (live)."""
    return _repurchase_scan(session, product_id)[0]


def _median_of_counts(counts: dict[int, int]) -> float:
    """The median of a multiset given as value -> count (same as statistics.median of the list)."""
    total = sum(counts.values())
    wanted = {(total - 1) // 2, total // 2}  # pragma: no mutate (equivalent: a half index falls in the same value's run as its floor)
    found: list[int] = []
    seen = 0
    for value in sorted(counts):
        count = counts[value]
        for index in sorted(wanted):
            if seen <= index < seen + count:
                found.append(value)
        seen += count
    return sum(found) / len(found)


def _write_repurchase_rows(session: Session, gaps: dict[int, list[int]]) -> None:
    """Add gaps to the repurchase histogram and refresh the per-product medians they touch."""
    products = sorted(pid for pid, values in gaps.items() if values)
    if not products:
        return
    added: dict[tuple[int, int], int] = defaultdict(int)
    for pid in products:
        for gap in gaps[pid]:
            added[(pid, gap)] += 1
    rows = [{"product_id": p, "gap_days": g, "intervals": n} for (p, g), n in added.items()]
    # Add to the stored counts: only the (product, gap) cells that grew are written.
    table = RepurchaseGap.__table__  # type: ignore[attr-defined]
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["product_id", "gap_days"],
        set_={"intervals": table.c.intervals + statement.excluded.intervals},
    )
    for i in range(0, len(rows), 5000):
        session.execute(statement, rows[i : i + 5000])
    session.execute(delete(ProductRepurchase).where(ProductRepurchase.product_id.in_(products)))  # type: ignore[attr-defined]
    histogram: dict[int, dict[int, int]] = defaultdict(dict)
    statement = text(
        "SELECT product_id, gap_days, intervals FROM repurchase_gap WHERE product_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    for pid, gap, count in session.execute(statement, {"ids": products}):
        histogram[pid][int(gap)] = int(count)
    _insert_many(
        session,
        ProductRepurchase,
        [
            {
                "product_id": p,
                "median_days": _median_of_counts(histogram[p]),
                "intervals": sum(histogram[p].values()),
            }
            for p in products
        ],
    )


def _refresh_repurchase(session: Session, start: datetime, end: datetime) -> None:
    """Continue the repurchase histogram with the sales paid in [start, end); only the
    (customer, product) pairs bought in the window get a new last-purchase day (upserted)."""
    gaps, latest = _repurchase_after(session, start, end, changed_only=True)
    _write_repurchase_rows(session, gaps)
    table = CustomerProductLast.__table__  # type: ignore[attr-defined]
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id", "product_id"], set_={"last_day": statement.excluded.last_day}
    )
    rows = [{"customer_id": c, "product_id": p, "last_day": d} for (c, p), d in latest.items()]
    for i in range(0, len(rows), 5000):
        session.execute(statement, rows[i : i + 5000])


def _repurchase_after(
    session: Session, start: datetime, end: datetime, *, changed_only: bool = False
) -> tuple[dict[int, list[int]], dict[tuple[int, int], date]]:
    """The gaps the sales paid in [start, end) add, continuing from the stored last purchases;
    with the last purchase days of those customers (only the pairs that moved if changed_only)."""
    window = session.execute(
        text(
            "SELECT DISTINCT o.customer_id, i.product_id FROM orders o JOIN order_item i ON i.order_id = o.id "
            "WHERE o.paid_at >= :start AND o.paid_at < :end AND o.status IN :statuses "
            "AND i.product_id IS NOT NULL"
        ).bindparams(bindparam("statuses", expanding=True)),
        {
            "start": _bind_instant(session, start),
            "end": _bind_instant(session, end),
            "statuses": list(SOLD_STATUSES),
        },
    ).all()
    pairs = sorted(window)
    if not pairs:
        return {}, {}
    last: dict[tuple[int, int], date] = {}
    wanted = set(pairs)
    customers = sorted({c for c, _ in pairs})
    statement = text(
        "SELECT customer_id, product_id, last_day FROM customer_product_last "
        "WHERE customer_id IN :ids AND product_id IN :products"
    ).bindparams(bindparam("ids", expanding=True), bindparam("products", expanding=True))
    products = sorted({p for _, p in pairs})
    for i in range(0, len(customers), _CHUNK):
        for c, p, d in session.execute(statement, {"ids": customers[i : i + _CHUNK], "products": products}):
            if (c, p) in wanted:
                last[(c, p)] = _as_date(d)
    gaps, latest = _repurchase_scan(session, start=start, end=end, last=last)
    if changed_only:
        latest = {key: day for key, day in latest.items() if last.get(key) != day}
    return gaps, latest


def repurchase_interval_days(session: Session, product_id: int) -> int | None:
    """Median days between purchases of this product by the same customer (None: nobody rebought).

    The repurchase reminder uses it as its default cycle when a product has no replenishment_days.
    Purchases on the same KST day count once; the median is rounded half up to whole days.
    """
    gaps = _repurchase_gaps(session, product_id).get(product_id)
    if not gaps:
        return None
    return int(statistics.median(gaps) * 2 + 1) // 2


REBUILD_CHUNK_DAYS = 2  # one short transaction per two days of sales: writers wait at most one chunk


def rebuild_rollups(engine: Engine, until: date | datetime | None = None) -> dict[str, int]:
    """Recompute every rollup from the raw tables up to `until`, in short transactions.

    `until` is a KST day (its midnight), an instant, or by default now minus ROLLUP_GRACE. One
    transaction empties the rollups and moves the watermark back to the first sale (the page reads
    live meanwhile: right, only slower); then each REBUILD_CHUNK_DAYS of sales is rolled forward
    in its own transaction, so the UI and the worker keep writing between chunks. A sale written
    meanwhile lands after the watermark (rolled up by a later chunk) or before it (marked dirty,
    repaired by `repair_dirty`).
    """
    if until is None:
        until = clock.now() - ROLLUP_GRACE
    elif not isinstance(until, datetime):
        until = clock.kst_midnight(until)
    with session_scope(engine) as session:
        _lock_state(session)
        for model in (
            CohortValue,
            DailySales,
            DailyProductSales,
            CustomerSales,
            CustomerMonth,
            CohortRetention,
            ProductRepurchase,
            RepurchaseGap,
            CustomerProductLast,
            AnalyticsDirtyDay,
            AnalyticsDirtyCustomer,
        ):
            session.execute(delete(model))
        first = _first_sale_day(session)
        start = until if first is None else min(until, clock.kst_midnight(first))
        _set_state(session, start)
    counts = _roll_forward(engine, until)
    return counts


def _roll_forward(engine: Engine, target: datetime) -> dict[str, int]:
    """Move the watermark to `target` chunk by chunk, one transaction each (the state row locked)."""
    totals = {"days": 0, "orders": 0, "chunks": 0, "longest_chunk_ms": 0}
    while True:
        began = time.perf_counter()
        with session_scope(engine) as session:
            state = _lock_state(session)
            if state is None:
                return totals
            start = _state_until(state)
            if start >= target:
                return totals
            end = min(target, clock.kst_midnight(kst_day(start) + timedelta(days=REBUILD_CHUNK_DAYS)))
            facts = collect_facts(session, start, end)
            days = len({d for d, _ in facts.daily})
            orders = sum(v[0] for v in facts.daily.values())
            _write_day_facts(session, facts, add=True)  # folds the stored partial day into facts
            _write_customers(session, facts.customers, facts.customer_months)
            _refresh_repurchase(session, start, end)
            if not _set_state(session, end, expected=start):
                raise RuntimeError("analytics rollup advanced by another worker")
        totals["days"] += days
        totals["orders"] += orders
        totals["longest_chunk_ms"] = max(totals["longest_chunk_ms"], round((time.perf_counter() - began) * 1000))
        totals["chunks"] += 1


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
        "SELECT r.id, r.amount, COALESCE(r.completed_at, r.created_at), o.customer_id "
        "FROM refund r JOIN payment p ON p.id = r.payment_id "
        "JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id) "
        "WHERE r.status = 'succeeded' AND (r.order_id IN :ids OR (r.order_id IS NULL AND p.order_id IN :ids))"
    ).bindparams(bindparam("ids", expanding=True))
    seen: set[int] = set()
    for i in range(0, len(order_ids), _CHUNK):
        for refund_id, amount, at, cid, in session.execute(refunds, {"ids": order_ids[i : i + _CHUNK]}):
            if refund_id in seen or _as_utc(at) >= until or cid not in rows:
                continue
            seen.add(refund_id)
            rows[cid][2] += amount
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


def _merge_customers(into: dict[int, list[Any]], rows: dict[int, list[Any]]) -> None:
    for customer_id, (orders, gross, refunds, first, last) in rows.items():
        row = into.get(customer_id)
        if row is None:
            into[customer_id] = [orders, gross, refunds, first, last]
            continue
        row[0] += orders
        row[1] += gross
        row[2] += refunds
        if first is not None:
            row[3] = first if row[3] is None else min(row[3], first)
            row[4] = last if row[4] is None else max(row[4], last)


def _write_customers(
    session: Session, customers: dict[int, list[Any]], months: set[tuple[int, date]]
) -> None:
    """Add a window's customer totals (only customers who ever paid) and cohort activity."""
    existing: dict[int, list[Any]] = {}
    if customers:
        ids = sorted(customers)
        statement = text(
            "SELECT customer_id, orders, gross, refunds, first_paid_at, last_paid_at FROM customer_sales "
            "WHERE customer_id IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        for start in range(0, len(ids), _CHUNK):
            for cid, orders, gross, refunds, first, last in session.execute(
                statement, {"ids": ids[start : start + _CHUNK]}
            ):
                existing[cid] = [orders, gross, refunds, _as_utc(first), _as_utc(last)]
        for start in range(0, len(existing), _CHUNK):
            chunk = sorted(existing)[start : start + _CHUNK]
            session.execute(delete(CustomerSales).where(CustomerSales.customer_id.in_(chunk)))  # type: ignore[attr-defined]
    before = {cid: list(row) for cid, row in existing.items()}
    merged = existing
    _merge_customers(merged, customers)
    _update_cohort_values(session, before, merged)
    rows = [
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
        for cid, v in merged.items()
        if v[3] is not None
    ]
    _insert_many(session, CustomerSales, rows)
    first_month = {row["customer_id"]: row["first_month"] for row in rows}
    if months:
        # Only pairs not yet counted (the window may repeat a month already recorded).
        ids = sorted({cid for cid, _ in months})
        statement = text(
            "SELECT customer_id, month FROM customer_month WHERE customer_id IN :ids AND month IN :months"
        ).bindparams(bindparam("ids", expanding=True), bindparam("months", expanding=True))
        window_months = sorted({m for _, m in months})
        known: set[tuple[int, date]] = set()
        for start in range(0, len(ids), _CHUNK):
            known |= {
                (c, _as_date(m))
                for c, m in session.execute(
                    statement, {"ids": ids[start : start + _CHUNK], "months": window_months}
                )
            }
        months = months - known
        missing = {cid for cid, _ in months} - set(first_month)
        if missing:
            statement = text(
                "SELECT customer_id, first_month FROM customer_sales WHERE customer_id IN :ids"
            ).bindparams(bindparam("ids", expanding=True))
            first_month.update(
                {c: _as_date(m) for c, m in session.execute(statement, {"ids": sorted(missing)})}
            )
    _insert_many(session, CustomerMonth, [{"customer_id": c, "month": m} for c, m in months])
    cells: dict[tuple[date, int], int] = defaultdict(int)
    for cid, month in months:
        cohort = first_month[cid]
        cells[(cohort, months_between(cohort, month))] += 1
    if cells:
        for row in session.execute(
            text("SELECT cohort_month, month_offset, customers FROM cohort_retention")
        ):
            cells[(_as_date(row[0]), row[1])] += row[2]
        session.execute(delete(CohortRetention))
    _insert_many(
        session,
        CohortRetention,
        [{"cohort_month": c, "month_offset": o, "customers": n} for (c, o), n in cells.items()],
    )


def _update_cohort_values(
    session: Session, before: dict[int, list[Any]], after: dict[int, list[Any]]
) -> None:
    """Keep cohort_value in step with customer_sales: take out the old rows, add the new ones."""
    values: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for month, customers, repeat, net in session.execute(
        text("SELECT cohort_month, customers, repeat_customers, net FROM cohort_value")
    ):
        values[_as_date(month)] = [int(customers), int(repeat), int(net)]
    for rows, sign in ((before, -1), (after, 1)):
        for orders, gross, refunds, first, _last in rows.values():
            if first is None:
                continue
            row = values[month_start(kst_day(first))]
            row[0] += sign
            row[1] += sign if orders >= 2 else 0
            row[2] += sign * (gross - refunds)
    session.execute(delete(CohortValue))
    _insert_many(
        session,
        CohortValue,
        [
            {"cohort_month": m, "customers": v[0], "repeat_customers": v[1], "net": v[2]}
            for m, v in values.items()
            if v[0]
        ],
    )


def _set_state(session: Session, until: datetime, expected: datetime | None = None) -> bool:
    state = session.get(AnalyticsState, 1)
    if state is None:
        session.add(
            AnalyticsState(
                id=1, covered_until=kst_day(until), covered_until_at=until, refreshed_at=clock.now()
            )
        )
        session.flush()
        return True
    if expected is not None and _state_until(state) != expected:
        return False
    state.covered_until = kst_day(until)
    state.covered_until_at = until
    state.refreshed_at = clock.now()
    session.add(state)
    session.flush()
    return True


def refresh_rollups(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: repair what backdated writes changed (`repair_dirty`), then add the sales and
    refunds since the last run to the rollups (up to now minus ROLLUP_GRACE, so today is rolled up
    too and the page's live tail stays a few minutes long), REBUILD_CHUNK_DAYS per transaction. Only a store
    that was never rolled up (or a clock moved back) is rebuilt from scratch (chunked as well)."""
    target = now - ROLLUP_GRACE
    with session_scope(engine) as session:
        cov = _read_coverage(session)
    if cov.until is None or cov.until > target:
        return {"rebuilt": 1, "repaired_days": 0, "repaired_customers": 0, **rebuild_rollups(engine, target)}
    repaired = repair_dirty(engine)
    counts = _roll_forward(engine, target)
    return {
        "rebuilt": 0,
        **repaired,
        "orders": counts["orders"],
        "days": (kst_day(target) - kst_day(cov.until)).days,
    }


def analytics_rollup_job(engine: Engine, now: datetime) -> dict[str, int]:
    """The JobSpec target: idempotent (a second run the same day finds nothing to do)."""
    try:
        return refresh_rollups(engine, now)
    except RuntimeError:
        return {"rebuilt": 0, "days": 0, "skipped": 1}


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


def _memo(session: Session, key: tuple[Any, ...], compute: Any) -> Any:
    """Remember a read for the rest of the transaction: one page run asks for the same tail many times."""
    if not session.info.get("analytics_memo_listening"):
        event.listen(session, "after_transaction_end", _forget_memo)
        session.info["analytics_memo_listening"] = True
    memo = session.info.setdefault("analytics_memo", {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _forget_memo(session: Session, _transaction: Any) -> None:
    session.info.pop("analytics_memo", None)


def _live_facts(session: Session, start: datetime, end: datetime) -> Facts:
    """Facts of [start, end) from the raw tables, once per transaction."""
    return _memo(session, ("facts", start, end), lambda: collect_facts(session, start, end))


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
        facts = collect_facts(session, datetime(1970, 1, 1, tzinfo=UTC), end)
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
            pid: (float(statistics.median(g)), len(g)) for pid, g in _repurchase_gaps(session).items() if g
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
