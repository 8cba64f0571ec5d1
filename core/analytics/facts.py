"""Facts from the raw tables (orders, items, payments, refunds) over a window of instants.

The one code path both the rollup build and the page's live tail read through, so the rolled-up
and the live figures can never disagree; plus the repurchase scan and the per-transaction memo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, event, text
from sqlmodel import Session

from core.analytics.rules import (
    _CHUNK,
    DELETED_PRODUCT_ID,
    DELETED_PRODUCT_NAME,
    OTHER_METHOD,
    SOLD_STATUSES,
    _as_date,
    _as_utc,
    kst_day,
    month_start,
    split_amount,
)

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


def _bind_instant(engine_or_session: Any, instant: datetime) -> Any:
    """Bind an instant as naive UTC text on SQLite, compared as text with the stored values.

    UtcDateTime stores "YYYY-MM-DD HH:MM:SS.ffffff", but bulk imports store whole seconds without
    the fraction ("... 15:00:00"). A whole-second bound is therefore written without it: text order
    then equals time order for both forms ("15:00:00" < "15:00:00.000000" would otherwise drop an
    imported sale paid exactly at 00:00 KST from the day that starts then)."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    if bind.dialect.name == "sqlite":
        instant = instant.astimezone(UTC)
        return instant.strftime("%Y-%m-%d %H:%M:%S.%f" if instant.microsecond else "%Y-%m-%d %H:%M:%S")
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


# What an order's payments took: the approved ones, whatever was refunded of them since.
COLLECTED_SQL = (
    "(SELECT COALESCE(SUM(p3.amount), 0) FROM payment p3 WHERE p3.order_id = o.id "
    "AND p3.status IN ('approved', 'partially_refunded', 'refunded'))"
)


def counted_refunds(session: Session, rows: Sequence[tuple[int, int, int, int, int]]) -> dict[int, int]:
    """refund id -> the part of it that gives back revenue, for rows (refund id, order id, order
    total, collected by the order's payments, refund amount).

    The rule of core.payments.orders.order_refunded_amount, in time order: money collected over
    the order's price (a double charge) is not revenue, so the refunds that return it (the
    sentinel's refund of the later payment, or any refund while the order is overpaid) give back
    no revenue; only what goes back beyond the overpayment does, up to the price. Without this a
    double charge refunded by the sentinel would be subtracted from net revenue although the
    duplicate was never counted in it. Only overpaid orders need a look at their other refunds.
    """
    result = {refund_id: amount for refund_id, _o, _t, _c, amount in rows}
    overpaid = {
        order_id: (total, collected) for _r, order_id, total, collected, _a in rows if collected > total
    }
    if not overpaid:
        return result
    statement = text(
        "SELECT p.order_id, r.id, r.amount FROM refund r JOIN payment p ON p.id = r.payment_id "
        "WHERE r.status = 'succeeded' AND p.order_id IN :ids "
        "ORDER BY p.order_id, COALESCE(r.completed_at, r.created_at), r.id"
    ).bindparams(bindparam("ids", expanding=True))
    ids = sorted(overpaid)
    for start in range(0, len(ids), _CHUNK):
        given_back: dict[int, int] = defaultdict(int)
        for order_id, refund_id, amount in session.execute(statement, {"ids": ids[start : start + _CHUNK]}):
            total, collected = overpaid[order_id]
            before = min(total, max(0, total - collected + given_back[order_id]))
            given_back[order_id] += amount
            after = min(total, max(0, total - collected + given_back[order_id]))
            if refund_id in result:
                result[refund_id] = after - before
    return result


def _first_method_sql(order: str) -> str:
    """SQL for the method of an order's first approved payment (NULL when none)."""
    return (
        f"(SELECT p.method FROM payment p WHERE p.order_id = {order} AND p.approved_at IS NOT NULL "
        "ORDER BY p.id LIMIT 1)"
    )


def _kst_sql(session: Session, column: str, unit: str) -> str:
    """SQL for the KST day ('YYYY-MM-DD') or month ('YYYY-MM') of a stored instant (KST has no DST).

    SQLite stores naive UTC text: the KST day is the UTC date, or the next date from 15:00 UTC on.
    Read from the text, not through datetime(..., '+9 hours'): SQLite rounds to milliseconds, which
    put a sale at 23:59:59.9995 KST on the next day."""
    if session.get_bind().dialect.name == "sqlite":
        day = (
            f"(CASE WHEN substr({column}, 12, 2) >= '15' THEN date(substr({column}, 1, 10), '+1 day') "
            f"ELSE substr({column}, 1, 10) END)"
        )
        return day if unit == "day" else f"substr({day}, 1, 7)"
    return f"to_char({column} AT TIME ZONE 'Asia/Seoul', '{'YYYY-MM-DD' if unit == 'day' else 'YYYY-MM'}')"


def collect_facts(session: Session, start: datetime, end: datetime, facts: Facts | None = None) -> Facts:
    """Add the sales paid and the refunds completed in [start, end) (UTC instants) to `facts`.

    Per order in Python, on purpose: grouping the sales in SQL (the item split by window
    functions, the first payment's method per order) was measured 1.5x slower on SQLite for the
    page's 30-day windows (bench/README.md, issue 19). The lifetime figures are set-based
    (`lifetime_customers`, `repurchase_histogram`, build.py)."""
    facts = facts or Facts()
    s, e = _bind_instant(session, start), _bind_instant(session, end)
    statuses = {"statuses": list(SOLD_STATUSES)}
    orders = session.execute(
        text(
            f"SELECT o.id, o.customer_id, o.total_amount, o.paid_at, {_first_method_sql('o.id')} "
            "FROM orders o WHERE o.paid_at >= :s AND o.paid_at < :e AND o.status IN :statuses"
        ).bindparams(bindparam("statuses", expanding=True)),
        {"s": s, "e": e, **statuses},
    ).all()
    refund_rows = session.execute(
        text(
            "SELECT r.amount, COALESCE(r.completed_at, r.created_at), o.id, o.customer_id, o.total_amount, "
            f"{_first_method_sql('o.id')}, p.method, r.id, {COLLECTED_SQL} "
            "FROM refund r JOIN payment p ON p.id = r.payment_id "
            "JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id) "
            "WHERE r.status = 'succeeded' AND ((r.completed_at >= :s AND r.completed_at < :e) "
            "OR (r.completed_at IS NULL AND r.created_at >= :s AND r.created_at < :e))"
        ),
        {"s": s, "e": e},
    ).all()
    counted = counted_refunds(session, [(row[7], row[2], row[4], row[8], row[0]) for row in refund_rows])
    refunds = [(counted[row[7]], *row[1:7]) for row in refund_rows if counted[row[7]]]
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


def lifetime_customers(session: Session, end: datetime) -> Facts:
    """Every customer's lifetime row and paid months before `end`, set-based (GROUP BY in SQL).

    The same figures as `collect_facts` from the beginning of time gives for `customers` and
    `customer_months` (its day and product facts are left empty): what the page reads before the
    first rollup, or while a backdated write is not repaired yet. One pass over the orders grouped
    by customer and KST month, one over the refunds; no per-order Python.
    """
    facts = Facts()
    e = _bind_instant(session, end)
    month = _kst_sql(session, "paid_at", "month")
    # All of history: SQLite reads the table in order (2x less CPU than through the paid-time index).
    scan = " NOT INDEXED" if session.get_bind().dialect.name == "sqlite" else ""
    sold = f"FROM orders{scan} WHERE paid_at IS NOT NULL AND paid_at < :e AND status IN :statuses GROUP BY customer_id"
    params = {"e": e, "statuses": list(SOLD_STATUSES)}
    for customer_id, orders, gross, first, last in session.execute(
        text(
            f"SELECT customer_id, COUNT(*), SUM(total_amount), MIN(paid_at), MAX(paid_at) {sold}"
        ).bindparams(bindparam("statuses", expanding=True)),
        params,
    ):
        facts.customers[customer_id] = [int(orders), int(gross), 0, _as_utc(first), _as_utc(last)]
    months: dict[str, date] = {}
    for customer_id, paid_month in session.execute(
        text(f"SELECT customer_id, {month} {sold}, 2").bindparams(bindparam("statuses", expanding=True)),
        params,
    ):
        if paid_month not in months:
            months[paid_month] = date.fromisoformat(f"{paid_month}-01")
        facts.customer_months.add((customer_id, months[paid_month]))
    refunds = session.execute(
        text(
            f"SELECT r.id, o.id, o.total_amount, {COLLECTED_SQL}, r.amount, o.customer_id "
            "FROM refund r JOIN payment p ON p.id = r.payment_id "
            "JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id) "
            "WHERE r.status = 'succeeded' AND ((r.completed_at IS NOT NULL AND r.completed_at < :e) "
            "OR (r.completed_at IS NULL AND r.created_at < :e))"
        ),
        {"e": e},
    ).all()
    counted = counted_refunds(session, [tuple(row[:5]) for row in refunds])
    for refund_id, *_rest, customer_id in refunds:
        if counted[refund_id]:
            facts.customer(customer_id)[2] += counted[refund_id]
    return facts


def repurchase_histogram(session: Session) -> dict[int, dict[int, int]]:
    """product -> {day gap: intervals} over every sale, set-based (window function in SQL).

    The same gaps as `_repurchase_scan` (consecutive distinct KST purchase days of a product by
    the same customer), counted in the database instead of walked in Python.
    """
    scan = " NOT INDEXED" if session.get_bind().dialect.name == "sqlite" else ""  # every item: in order
    if session.get_bind().dialect.name == "sqlite":
        # A day number (integers sort and subtract ~25% cheaper than date text through julianday()).
        day = "CAST(julianday(substr(o.paid_at, 1, 10)) AS INTEGER) + (substr(o.paid_at, 12, 2) >= '15')"
    else:
        day = "CAST(o.paid_at AT TIME ZONE 'Asia/Seoul' AS date)"
    gap = "day - LAG(day) OVER w"
    rows = session.execute(
        text(
            f"SELECT product_id, gap, COUNT(*) FROM (SELECT product_id, {gap} AS gap FROM ("
            f"SELECT DISTINCT i.product_id AS product_id, o.customer_id AS customer_id, {day} AS day "
            f"FROM order_item i{scan} JOIN orders o ON o.id = i.order_id "
            "WHERE o.paid_at IS NOT NULL AND o.status IN :statuses AND i.product_id IS NOT NULL) d "
            "WINDOW w AS (PARTITION BY product_id, customer_id ORDER BY day)) g "
            "WHERE gap IS NOT NULL GROUP BY product_id, gap"
        ).bindparams(bindparam("statuses", expanding=True)),
        {"statuses": list(SOLD_STATUSES)},
    )
    histogram: dict[int, dict[int, int]] = defaultdict(dict)
    for product_id, days, count in rows:
        histogram[int(product_id)][int(days)] = int(count)
    return histogram


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


def _repurchase_after(
    session: Session, start: datetime, end: datetime
) -> tuple[dict[int, list[int]], dict[tuple[int, int], date]]:
    """The gaps the sales paid in [start, end) add, continuing from the stored last purchases;
    with the last purchase days of those customers."""
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
    pairs = sorted(tuple(row) for row in window)  # plain tuples: Row comparisons cost 10x
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
    return _repurchase_scan(session, start=start, end=end, last=last)


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
