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


# What an order's payments took: the approved ones, whatever was refunded of them since.
COLLECTED_SQL = (
    "(SELECT COALESCE(SUM(p3.amount), 0) FROM payment p3 WHERE p3.order_id = o.id "
    "AND p3.status IN ('approved', 'partially_refunded', 'refunded'))"
)


def counted_refunds(
    session: Session, rows: Sequence[tuple[int, int, int, int, int]]
) -> dict[int, int]:
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
    overpaid = {order_id: (total, collected) for _r, order_id, total, collected, _a in rows if collected > total}
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


def _sold_sql(session: Session, where: str) -> str:
    """The sold orders matching `where` (on orders o) with their KST day and method, as a CTE."""
    return (
        f"WITH sold AS (SELECT o.id, o.customer_id, o.total_amount AS total, o.paid_at, "
        f"{_kst_sql(session, 'o.paid_at', 'day')} AS day, "
        f"COALESCE({_first_method_sql('o.id')}, '{OTHER_METHOD}') AS method "
        f"FROM orders o WHERE {where} AND o.status IN :statuses) "
    )


def _split_sql(session: Session) -> str:
    """CTEs `parts` / `shares` after `sold`: each sold order's total split over its items in
    proportion to their amounts (floor, the remainder on the last item: rules.split_amount; item
    amounts are >= 0, so SQL's integer division is the floor)."""
    wide = "BIGINT" if session.get_bind().dialect.name != "sqlite" else "INTEGER"
    return (
        ", parts AS (SELECT s.id AS order_id, s.day, s.method, s.total, "
        f"COALESCE(i.product_id, {DELETED_PRODUCT_ID}) AS pid, i.product_name AS name, i.quantity, "
        f"CASE WHEN SUM(i.amount) OVER w <= 0 THEN 0 ELSE CAST(s.total AS {wide}) * i.amount / SUM(i.amount) OVER w "
        "END AS fl, ROW_NUMBER() OVER (PARTITION BY s.id ORDER BY i.id DESC) AS rn "
        "FROM sold s JOIN order_item i ON i.order_id = s.id WINDOW w AS (PARTITION BY s.id)), "
        "shares AS (SELECT order_id, day, method, pid, name, quantity, "
        "fl + CASE WHEN rn = 1 THEN total - SUM(fl) OVER (PARTITION BY order_id) ELSE 0 END AS share FROM parts) "
    )


def _add_sales(session: Session, facts: Facts, where: str, params: dict[str, Any]) -> None:
    """Add the sold orders matching `where` to the facts, grouped in SQL (no per-order Python):
    per day and method, per day, product and method (totals split over the items), per customer
    and KST month."""
    params = {**params, "statuses": list(SOLD_STATUSES)}
    sold = _sold_sql(session, where)

    def run(sql: str) -> Any:
        return session.execute(text(sql).bindparams(bindparam("statuses", expanding=True)), params)

    days: dict[str, date] = {}

    def as_day(value: Any) -> date:
        if isinstance(value, date):
            return value
        found = days.get(value)
        if found is None:
            found = days[value] = date.fromisoformat(value)
        return found

    for day, method, orders, gross in run(
        f"{sold}SELECT day, method, COUNT(*), SUM(total) FROM sold GROUP BY day, method"
    ):
        row = facts.daily[(as_day(day), method)]
        row[0] += int(orders)
        row[1] += int(gross)
    names: dict[int, str] = {}
    for day, pid, method, orders, units, gross, name in run(
        f"{sold}{_split_sql(session)}SELECT day, pid, method, COUNT(DISTINCT order_id), SUM(quantity), "
        "SUM(share), MAX(name) FROM shares GROUP BY day, pid, method"
    ):
        row = facts.product[(as_day(day), int(pid), method)]
        row[0] += int(orders)
        row[1] += int(units)
        row[2] += int(gross)
        names[pid] = max(names.get(pid, name), name)
    for pid, name in names.items():
        facts.product_names[pid] = DELETED_PRODUCT_NAME if pid == DELETED_PRODUCT_ID else name
    month = _kst_sql(session, "paid_at", "month")
    for customer_id, paid_month, orders, gross, first, last in run(
        f"SELECT customer_id, {month}, COUNT(*), SUM(total_amount), MIN(paid_at), MAX(paid_at) FROM orders o "
        f"WHERE {where} AND o.status IN :statuses GROUP BY customer_id, 2"
    ):
        first, last = _as_utc(first), _as_utc(last)
        customer = facts.customer(customer_id)
        customer[0] += int(orders)
        customer[1] += int(gross)
        customer[3] = first if customer[3] is None else min(customer[3], first)
        customer[4] = last if customer[4] is None else max(customer[4], last)
        facts.customer_months.add((customer_id, as_day(f"{paid_month}-01")))


def collect_facts(session: Session, start: datetime, end: datetime, facts: Facts | None = None) -> Facts:
    """Add the sales paid and the refunds completed in [start, end) (UTC instants) to `facts`.

    Sales are grouped in SQL (`_add_sales`); refunds, a few per hundred sales, are read one by one
    because the double-charge rule (`counted_refunds`) looks at each order's other refunds."""
    facts = facts or Facts()
    s, e = _bind_instant(session, start), _bind_instant(session, end)
    _add_sales(session, facts, "o.paid_at >= :s AND o.paid_at < :e", {"s": s, "e": e})
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
    items = _items_of(session, [row[2] for row in refunds])
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
    sold = (
        f"FROM orders{scan} WHERE paid_at IS NOT NULL AND paid_at < :e AND status IN :statuses GROUP BY customer_id"
    )
    params = {"e": e, "statuses": list(SOLD_STATUSES)}
    for customer_id, orders, gross, first, last in session.execute(
        text(f"SELECT customer_id, COUNT(*), SUM(total_amount), MIN(paid_at), MAX(paid_at) {sold}").bindparams(
            bindparam("statuses", expanding=True)
        ),
        params,
    ):
        facts.customers[customer_id] = [int(orders), int(gross), 0, _as_utc(first), _as_utc(last)]
    months: dict[str, date] = {}
    for customer_id, paid_month in session.execute(
        text(f"SELECT customer_id, {month} {sold}, 2").bindparams(bindparam("statuses", expanding=True)), params
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
    day = _kst_sql(session, "o.paid_at", "day")
    scan = " NOT INDEXED" if session.get_bind().dialect.name == "sqlite" else ""  # every item: in order
    if session.get_bind().dialect.name == "sqlite":
        gap = "CAST(julianday(day) - julianday(LAG(day) OVER w) AS INTEGER)"
    else:
        gap = "CAST(day AS date) - CAST(LAG(day) OVER w AS date)"
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
    gaps, latest = _repurchase_scan(session, start=start, end=end, last=last)
    if changed_only:
        latest = {key: day for key, day in latest.items() if last.get(key) != day}
    return gaps, latest


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
