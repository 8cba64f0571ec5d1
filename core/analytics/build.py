"""The set-based roll-forward of one window of sales: customers, cohorts and repurchase gaps
written by INSERT ... SELECT ... GROUP BY in the database (SQLite and PostgreSQL), not walked in
Python, so a first rollup costs in proportion to the sales, in a few statements per window.

Each function adds the sales paid in [start, end) to rollups that already hold everything before
`start` (the watermark): the window's rows are upserted onto the stored ones. The definitions are
those of rules.py and facts.py (a sale by the KST day of paid_at; refunds by `counted_refunds`,
passed in from `collect_facts`, which the day rollups are built from as well).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from core.analytics.facts import _bind_instant, _kst_sql
from core.analytics.rules import SOLD_STATUSES


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name != "sqlite"


def _day_sql(session: Session, column: str) -> str:
    """The KST day of an instant, comparable with the rollups' date columns on either database."""
    if _postgres(session):
        return f"CAST({column} AT TIME ZONE 'Asia/Seoul' AS date)"
    return _kst_sql(session, column, "day")


def _month_sql(session: Session, column: str) -> str:
    """The first day of the KST month of an instant (a date column's value)."""
    if _postgres(session):
        return f"CAST(date_trunc('month', {column} AT TIME ZONE 'Asia/Seoul') AS date)"
    return f"({_kst_sql(session, column, 'month')} || '-01')"


def _month_index_sql(session: Session, column: str) -> str:
    """year * 12 + month of a date column (month offsets are differences of these)."""
    if _postgres(session):
        return f"CAST(EXTRACT(YEAR FROM {column}) * 12 + EXTRACT(MONTH FROM {column}) AS INTEGER)"
    return f"(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER))"


def _days_between_sql(session: Session, later: str, earlier: str) -> str:
    if _postgres(session):
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _stamp_sql(session: Session, value: str) -> str:
    """A stored instant as UtcDateTime writes it (bulk imports may leave out the microseconds)."""
    if _postgres(session):
        return value
    return f"(CASE WHEN length({value}) = 19 THEN {value} || '.000000' ELSE {value} END)"


def _least(session: Session, a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if _postgres(session) else f"min({a}, {b})"


def _greatest(session: Session, a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if _postgres(session) else f"max({a}, {b})"


def add_window(session: Session, start: datetime, end: datetime, refunds: dict[int, int]) -> list[int]:
    """Add the sales paid in [start, end) to customer_sales, customer_month, cohort_retention,
    cohort_value, repurchase_gap and customer_product_last; `refunds` (customer -> refunded
    revenue in the window) is subtracted from the customers who ever paid. Returns the products
    whose repurchase histogram grew (their medians are refreshed by the caller)."""
    params: dict[str, Any] = {
        "s": _bind_instant(session, start),
        "e": _bind_instant(session, end),
        "statuses": list(SOLD_STATUSES),
    }
    window = "o.paid_at >= :s AND o.paid_at < :e AND o.status IN :statuses"

    def run(sql: str, values: Any = None) -> Any:
        statement = text(sql)
        if values is None:
            statement = statement.bindparams(bindparam("statuses", expanding=True))
        return session.execute(statement, params if values is None else values)

    _add_customers(session, run, window, refunds)
    return _add_repurchase(session, run, window)


def _add_customers(session: Session, run: Any, window: str, refunds: dict[int, int]) -> None:
    """Lifetime rows of the window's buyers (added onto theirs), their months, the cohort cells
    those months are new in, and cohort_value regrouped from customer_sales."""
    first = "customer_sales.first_paid_at"
    earliest, latest = _stamp_sql(session, "MIN(o.paid_at)"), _stamp_sql(session, "MAX(o.paid_at)")
    run(
        "INSERT INTO customer_sales (customer_id, orders, gross, refunds, net, first_paid_at, last_paid_at, "
        f"first_month) SELECT customer_id, COUNT(*), SUM(total_amount), 0, SUM(total_amount), {earliest}, "
        f"{latest}, {_month_sql(session, 'MIN(o.paid_at)')} FROM orders o WHERE {window} GROUP BY customer_id "
        "ON CONFLICT (customer_id) DO UPDATE SET orders = customer_sales.orders + excluded.orders, "
        "gross = customer_sales.gross + excluded.gross, net = customer_sales.net + excluded.gross, "
        f"first_month = CASE WHEN excluded.first_paid_at < {first} THEN excluded.first_month "
        "ELSE customer_sales.first_month END, "
        f"first_paid_at = {_least(session, first, 'excluded.first_paid_at')}, "
        f"last_paid_at = {_greatest(session, 'customer_sales.last_paid_at', 'excluded.last_paid_at')}"
    )
    rows = [{"c": cid, "r": amount} for cid, amount in sorted(refunds.items()) if amount]
    if rows:
        run(
            "UPDATE customer_sales SET refunds = refunds + :r, net = net - :r WHERE customer_id = :c",
            rows,
        )
    # Months first counted in this window move their cohort's retention cells; then they are stored.
    pairs = f"SELECT DISTINCT customer_id, {_month_sql(session, 'o.paid_at')} AS month FROM orders o WHERE {window}"
    offset = f"{_month_index_sql(session, 'p.month')} - {_month_index_sql(session, 'c.first_month')}"
    run(
        f"WITH pairs AS ({pairs}) "
        "INSERT INTO cohort_retention (cohort_month, month_offset, customers) "
        f"SELECT c.first_month, {offset}, COUNT(*) FROM pairs p JOIN customer_sales c ON c.customer_id = p.customer_id "
        "WHERE NOT EXISTS (SELECT 1 FROM customer_month m WHERE m.customer_id = p.customer_id AND m.month = p.month) "
        "GROUP BY 1, 2 ON CONFLICT (cohort_month, month_offset) "
        "DO UPDATE SET customers = cohort_retention.customers + excluded.customers"
    )
    run(f"INSERT INTO customer_month (customer_id, month) {pairs} ON CONFLICT DO NOTHING")
    # cohort_value is a GROUP BY of customer_sales (one row per first-purchase month).
    run("DELETE FROM cohort_value", {})
    run(
        "INSERT INTO cohort_value (cohort_month, customers, repeat_customers, net) "
        "SELECT first_month, COUNT(*), SUM(CASE WHEN orders >= 2 THEN 1 ELSE 0 END), SUM(net) "
        "FROM customer_sales GROUP BY first_month",
        {},
    )


def _add_repurchase(session: Session, run: Any, window: str) -> list[int]:
    """Gaps between consecutive KST purchase days of a product by the same customer, continuing
    from the stored last purchase day (earlier than, or the same day as, every day of the window:
    UNION drops a same-day repeat, which counts once)."""
    bought = (
        f"SELECT DISTINCT i.product_id, o.customer_id, {_day_sql(session, 'o.paid_at')} AS day "
        f"FROM orders o JOIN order_item i ON i.order_id = o.id WHERE {window} AND i.product_id IS NOT NULL"
    )
    gap = _days_between_sql(
        session, "day", "LAG(day) OVER (PARTITION BY product_id, customer_id ORDER BY day)"
    )
    grown = run(
        f"WITH bought AS ({bought}), seq AS (SELECT product_id, customer_id, day FROM bought UNION "
        "SELECT l.product_id, l.customer_id, l.last_day FROM customer_product_last l "
        "JOIN (SELECT DISTINCT product_id, customer_id FROM bought) b "
        "ON b.product_id = l.product_id AND b.customer_id = l.customer_id), "
        f"gaps AS (SELECT product_id, {gap} AS gap FROM seq) "
        "INSERT INTO repurchase_gap (product_id, gap_days, intervals) "
        "SELECT product_id, gap, COUNT(*) FROM gaps WHERE gap IS NOT NULL GROUP BY product_id, gap "
        "ON CONFLICT (product_id, gap_days) DO UPDATE SET intervals = repurchase_gap.intervals + excluded.intervals "
        "RETURNING product_id"
    ).all()
    run(
        f"WITH bought AS ({bought}) INSERT INTO customer_product_last (customer_id, product_id, last_day) "
        "SELECT customer_id, product_id, MAX(day) FROM bought GROUP BY customer_id, product_id "
        "ON CONFLICT (customer_id, product_id) DO UPDATE SET last_day = excluded.last_day"
    )
    return sorted({int(pid) for (pid,) in grown})
