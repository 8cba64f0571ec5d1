"""The 매출 page's figures computed by DuckDB from the same rows, to compare ours against (bench only).

`load(sqlite_path, duck_path)` copies the raw rows into a DuckDB file (not timed); `figures(con,
first, last)` computes, in DuckDB SQL only, what the page shows for [first, last]: revenue summary
(with the previous range), the daily series, top products by revenue and by units (order totals
and refunds split over items pro rata, remainder on the last item, like core.analytics), the
method mix, the link funnel (and its previous range), LTV and repeat rate, monthly cohorts with
retention, VIPs and per-product repurchase intervals. `ours(session, first, last)` asks
core.analytics for the same, in the same shape, so the two can be compared value for value.
Subscription figures (MRR, churn) are left out of both: they come from other tables and cost ours
~15 ms at any size.

Not modelled in DuckDB: a double charge's refund (the bench data has none).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SOLD = "('paid', 'partially_refunded', 'refunded')"


def load(sqlite_path: Path, duck_path: Path) -> None:
    """The raw rows of the SQLite store into a DuckDB file (timestamps as naive UTC)."""
    import duckdb
    import pandas as pd

    if duck_path.exists():
        duck_path.unlink()
    source = sqlite3.connect(sqlite_path)
    tables = {
        "orders": ("SELECT id, customer_id, total_amount AS total, status, paid_at FROM orders", ["paid_at"]),
        "pay": ("SELECT id, order_id, method, approved_at FROM payment", ["approved_at"]),
        "items": ("SELECT id, order_id, product_id, quantity, amount FROM order_item", []),
        "refunds": (
            "SELECT id, payment_id, order_id, amount, status, completed_at, created_at FROM refund",
            ["completed_at", "created_at"],
        ),
        "links": ("SELECT id, product_id, status, created_at, opened_at, paid_at FROM payment_link", [
            "created_at", "opened_at", "paid_at"
        ]),
    }
    duck = duckdb.connect(str(duck_path))
    for name, (query, stamps) in tables.items():
        frame = pd.read_sql_query(query, source)
        for column in stamps:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        duck.register("frame", frame)
        duck.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        duck.unregister("frame")
    duck.close()
    source.close()


_SOLD_VIEW = f"""
    WITH first_pay AS (
        SELECT order_id, arg_min(method, id) AS method FROM pay WHERE approved_at IS NOT NULL GROUP BY order_id
    )
    SELECT o.id, o.customer_id, o.total, o.paid_at, CAST(o.paid_at + INTERVAL 9 HOUR AS DATE) AS day,
           COALESCE(f.method, 'OTHER') AS method
    FROM orders o LEFT JOIN first_pay f ON f.order_id = o.id
    WHERE o.paid_at IS NOT NULL AND o.status IN {SOLD}
"""
_REFUND_VIEW = """
    WITH first_pay AS (
        SELECT order_id, arg_min(method, id) AS method FROM pay WHERE approved_at IS NOT NULL GROUP BY order_id
    )
    SELECT r.id, r.amount, o.id AS order_id, o.customer_id,
           CAST(COALESCE(r.completed_at, r.created_at) + INTERVAL 9 HOUR AS DATE) AS day,
           COALESCE(f.method, p.method, 'OTHER') AS method
    FROM refunds r JOIN pay p ON p.id = r.payment_id JOIN orders o ON o.id = COALESCE(r.order_id, p.order_id)
    LEFT JOIN first_pay f ON f.order_id = o.id
    WHERE r.status = 'succeeded'
"""


def _previous(first: date, last: date) -> tuple[date, date]:
    days = (last - first).days + 1
    return first - timedelta(days=days), first - timedelta(days=1)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def figures(con: Any, first: date, last: date, today: date) -> dict[str, Any]:
    """Every figure of the page for [first, last] from DuckDB SQL (one query per figure)."""
    out: dict[str, Any] = {}
    prev_first, prev_last = _previous(first, last)
    # Sales and refunds with their KST day and method, once per computation (timed with the rest).
    con.execute(f"CREATE OR REPLACE TEMP TABLE sold_now AS {_SOLD_VIEW}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE refund_now AS {_REFUND_VIEW}")
    sold, refund = "sold_now", "refund_now"
    totals = f"""
        SELECT (SELECT COUNT(*) FROM {sold} s WHERE day BETWEEN $1 AND $2),
               (SELECT COALESCE(SUM(total), 0) FROM {sold} s WHERE day BETWEEN $1 AND $2),
               (SELECT COALESCE(SUM(amount), 0) FROM {refund} r WHERE day BETWEEN $1 AND $2)
    """
    out["summary"] = tuple(
        tuple(int(v) for v in con.execute(totals, [a, b]).fetchone()) for a, b in ((first, last), (prev_first, prev_last))
    )
    series = con.execute(
        f"""
        WITH s AS (SELECT day, COUNT(*) AS orders, SUM(total) AS gross FROM {sold} s WHERE day BETWEEN $1 AND $2 GROUP BY day),
             r AS (SELECT day, SUM(amount) AS refunds FROM {refund} r WHERE day BETWEEN $1 AND $2 GROUP BY day)
        SELECT COALESCE(s.day, r.day), COALESCE(orders, 0), COALESCE(gross, 0), COALESCE(refunds, 0)
        FROM s FULL OUTER JOIN r ON s.day = r.day ORDER BY 1
        """,
        [first, last],
    ).fetchall()
    out["series"] = [(d, int(o), int(g), int(r)) for d, o, g, r in series]
    products = con.execute(
        f"""
        WITH s AS (SELECT id AS order_id, total AS amount, 0 AS refund_id FROM {sold} s WHERE day BETWEEN $1 AND $2),
             r AS (SELECT order_id, amount, id AS refund_id FROM {refund} r WHERE day BETWEEN $1 AND $2),
             money AS (SELECT *, FALSE AS is_refund FROM s UNION ALL SELECT *, TRUE FROM r),
             parts AS (
                 SELECT m.order_id, m.refund_id, m.is_refund, m.amount AS total, i.id, COALESCE(i.product_id, 0) AS pid,
                        i.quantity, i.amount,
                        SUM(i.amount) OVER (PARTITION BY m.is_refund, m.refund_id, m.order_id) AS wsum,
                        ROW_NUMBER() OVER (PARTITION BY m.is_refund, m.refund_id, m.order_id ORDER BY i.id DESC) AS rn
                 FROM money m JOIN items i ON i.order_id = m.order_id),
             floors AS (SELECT *, CASE WHEN wsum <= 0 THEN 0 ELSE total * amount // wsum END AS fl FROM parts),
             shares AS (
                 SELECT *, fl + CASE WHEN rn = 1 THEN total - SUM(fl) OVER (PARTITION BY is_refund, refund_id, order_id)
                                     ELSE 0 END AS share FROM floors)
        SELECT pid,
               COUNT(DISTINCT CASE WHEN NOT is_refund THEN order_id END) AS orders,
               SUM(CASE WHEN NOT is_refund THEN quantity ELSE 0 END) AS units,
               SUM(CASE WHEN NOT is_refund THEN share ELSE 0 END) AS gross,
               SUM(CASE WHEN is_refund THEN share ELSE 0 END) AS refunds
        FROM shares GROUP BY pid
        """,
        [first, last],
    ).fetchall()
    rows = [(int(p), int(o), int(u), int(g), int(r)) for p, o, u, g, r in products if o or r]
    out["top_gross"] = sorted(rows, key=lambda r: (-r[3], r[0]))[:10]
    out["top_units"] = [(r[0], r[2]) for r in sorted(rows, key=lambda r: (-r[2], r[0]))[:10]]
    methods = con.execute(
        f"SELECT method, COUNT(*), SUM(total) FROM {sold} s WHERE day BETWEEN $1 AND $2 GROUP BY method",
        [first, last],
    ).fetchall()
    out["methods"] = sorted(((m, int(o), int(g)) for m, o, g in methods if o), key=lambda r: (-r[2], r[0]))
    funnel = """
        SELECT COUNT(*),
               COALESCE(SUM(CASE WHEN opened_at IS NOT NULL OR paid_at IS NOT NULL
                            OR status IN ('opened', 'method_selected', 'paid', 'failed') THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN paid_at IS NOT NULL OR status IN ('method_selected', 'paid', 'failed')
                            THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN paid_at IS NOT NULL OR status = 'paid' THEN 1 ELSE 0 END), 0)
        FROM links WHERE CAST(created_at + INTERVAL 9 HOUR AS DATE) BETWEEN $1 AND $2
    """
    out["funnel"] = tuple(
        tuple(int(v) for v in con.execute(funnel, [a, b]).fetchone()) for a, b in ((first, last), (prev_first, prev_last))
    )
    customers = f"""
        WITH c AS (SELECT customer_id, COUNT(*) AS orders, SUM(total) AS gross, MIN(paid_at) AS first_paid,
                          MAX(paid_at) AS last_paid
                   FROM {sold} s GROUP BY customer_id),
             r AS (SELECT customer_id, SUM(amount) AS refunds FROM {refund} r GROUP BY customer_id)
        SELECT c.customer_id, c.orders, c.gross - COALESCE(r.refunds, 0) AS net, c.first_paid
        FROM c LEFT JOIN r ON r.customer_id = c.customer_id
    """
    value = con.execute(
        f"SELECT COUNT(*), SUM(CASE WHEN orders >= 2 THEN 1 ELSE 0 END), SUM(net) FROM ({customers})"
    ).fetchone()
    out["value"] = tuple(int(v or 0) for v in value)
    since = _add_months(_month_start(last), -11)
    cohort_rows = con.execute(
        f"""
        WITH c AS ({customers}),
             k AS (SELECT customer_id, CAST(date_trunc('month', first_paid + INTERVAL 9 HOUR) AS DATE) AS cohort, net FROM c)
        SELECT cohort, COUNT(*), SUM(net) FROM k WHERE cohort >= $1 GROUP BY cohort ORDER BY cohort
        """,
        [since],
    ).fetchall()
    cells = con.execute(
        f"""
        WITH f AS (SELECT customer_id, CAST(date_trunc('month', MIN(paid_at) + INTERVAL 9 HOUR) AS DATE) AS cohort
                   FROM {sold} s GROUP BY customer_id),
             m AS (SELECT DISTINCT customer_id, CAST(date_trunc('month', day) AS DATE) AS month FROM {sold} s)
        SELECT f.cohort, m.month, COUNT(*) FROM m JOIN f USING (customer_id) WHERE f.cohort >= $1 GROUP BY 1, 2
        """,
        [since],
    ).fetchall()
    retained = {(c, _months_between(c, m)): int(n) for c, m, n in cells}
    this_month = _month_start(today)
    out["cohorts"] = [
        (
            cohort,
            int(size),
            int(net),
            [retained.get((cohort, k), 0) / size for k in range(max(0, _months_between(cohort, this_month)) + 1)],
        )
        for cohort, size, net in cohort_rows
    ]
    vips = con.execute(
        f"SELECT customer_id, orders, net FROM ({customers}) ORDER BY net DESC, customer_id LIMIT 10"
    ).fetchall()
    out["vips"] = [(int(c), int(o), int(n)) for c, o, n in vips]
    intervals = con.execute(
        f"""
        WITH d AS (SELECT DISTINCT i.product_id, s.customer_id, s.day FROM items i JOIN {sold} s ON s.id = i.order_id
                   WHERE i.product_id IS NOT NULL),
             g AS (SELECT product_id, day - LAG(day) OVER (PARTITION BY product_id, customer_id ORDER BY day) AS gap FROM d)
        SELECT product_id, quantile_cont(gap, 0.5), COUNT(*) FROM g WHERE gap IS NOT NULL GROUP BY product_id
        """
    ).fetchall()
    out["intervals"] = {int(p): (float(m), int(n)) for p, m, n in intervals}
    return out


def ours(session: Any, first: date, last: date) -> dict[str, Any]:
    """The same figures from core.analytics, in the same shape (the page's own calls)."""
    from core import analytics

    out: dict[str, Any] = {}
    summary = analytics.revenue_summary(session, first, last)
    out["summary"] = tuple(
        (t.orders, t.gross, t.refunds) for t in (summary.current, summary.previous)
    )
    series = analytics.revenue_series(session, first, last, "day")
    out["series"] = [(p.period, p.orders, p.gross, p.refunds) for p in series if p.orders or p.gross or p.refunds]
    top = analytics.top_products(session, first, last, by="gross", limit=10)
    out["top_gross"] = [(p.product_id, p.orders, p.units, p.gross, p.refunds) for p in top]
    units = analytics.top_products(session, first, last, by="units", limit=10)
    out["top_units"] = [(p.product_id, p.units) for p in units]
    out["methods"] = [(m.method, m.orders, m.gross) for m in analytics.method_mix(session, first, last)]
    out["funnel"] = tuple(
        (f.sent, f.opened, f.method_selected, f.paid)
        for f in (
            analytics.link_funnel(session, first, last),
            analytics.link_funnel(session, summary.previous_first, summary.previous_last),
        )
    )
    value = analytics.customer_value(session)
    out["value"] = (value.customers, value.repeat_customers, value.net)
    since = analytics.add_months(analytics.month_start(last), -11)
    out["cohorts"] = [
        (c.cohort, c.customers, c.net, [r or 0.0 for r in c.retention]) for c in analytics.cohorts(session, since=since)
    ]
    out["vips"] = [(v.customer_id, v.orders, v.net) for v in analytics.vip_customers(session, limit=10)]
    out["intervals"] = analytics.product_repurchase_intervals(session)
    return out


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The names of the figures that differ (empty: the same figures)."""
    return [key for key in a if a[key] != b.get(key)]
