"""The rollup tables: their watermark (coverage), the write-path hooks that mark backdated days
dirty (`record_sale` / `record_refund`), the writers, and the chunked build that moves the
watermark forward (`rebuild_rollups`). Repairs of dirty days are in repair.py.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import clock
from core.analytics.build import add_window
from core.analytics.facts import Facts, _bind_instant, _memo, collect_facts
from core.analytics.rules import (
    _as_date,
    _as_utc,
    _median_of_counts,
    kst_day,
    month_start,
)
from core.db import analyze, is_postgres, session_scope
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
    """Core executemany on the table (not the ORM bulk path: ~3x less CPU per row); on PostgreSQL
    a COPY in the same transaction: psycopg's executemany sends a statement per row, and the
    day-by-product rows of a first rollup (~100,000 at 100k imported lines) took 3.8 of the
    rollup's 7.3 s of SQL that way (bench/README.md, issue 19)."""
    if not rows:
        return
    table = model.__table__
    bind = session.get_bind()
    if is_postgres(bind):
        connection = session.connection()
        dialect = connection.dialect
        keys = list(rows[0])
        processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
        quote = dialect.identifier_preparer
        copy_sql = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(k) for k in keys)}) FROM STDIN"
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(
                    [row[k] if process is None else process(row[k]) for k, process in zip(keys, processors, strict=True)]
                )
        return
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
    _refresh_medians(session, products)


def _refresh_medians(session: Session, products: list[int]) -> None:
    """Recompute the stored median repurchase interval of these products from their histogram."""
    if not products:
        return
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


# One short transaction per chunk: at least two days of sales, more while they hold fewer than
# REBUILD_CHUNK_ORDERS sales (writers wait at most one chunk). 5,000: the per-chunk statements
# (cohort_value regrouped, the state row) stay small beside the sales; bench/README.md, issue 19.
REBUILD_CHUNK_DAYS = 2
REBUILD_CHUNK_ORDERS = 5_000


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
    # Statistics first: without them SQLite reads each chunk's window through the status index,
    # i.e. every paid order per chunk.
    analyze(engine)
    return _roll_forward(engine, until)


def _next_activity(session: Session, start: datetime, end: datetime) -> datetime | None:
    """The first instant in [start, end) where a sale was paid or a refund went back, or None.

    Index lookups only (MIN over ix_orders_paid_at / ix_refund_completed_at), so skipping an empty
    stretch of history costs the same for a day as for ten years. Any status counts: a window
    that turns out to hold no sale is merely one wasted chunk, a missed one would be a lost sale.
    """
    s, e = _bind_instant(session, start), _bind_instant(session, end)
    found = [
        session.execute(text(sql), {"s": s, "e": e}).scalar()
        for sql in (
            "SELECT MIN(paid_at) FROM orders WHERE paid_at >= :s AND paid_at < :e",
            "SELECT MIN(completed_at) FROM refund WHERE completed_at >= :s AND completed_at < :e",
            "SELECT MIN(created_at) FROM refund WHERE completed_at IS NULL AND created_at >= :s AND created_at < :e",
        )
    ]
    instants = [_as_utc(v) for v in found if v is not None]
    return min(instants) if instants else None


def _chunk_end(session: Session, start: datetime, following: datetime, target: datetime) -> datetime:
    """Where the chunk from `start` ends: the midnight after the day that holds the
    REBUILD_CHUNK_ORDERS-th sale from the next activity on, but at least REBUILD_CHUNK_DAYS days
    of it, and at most the target. A chunk's work (and a writer's wait) is then bounded by sales,
    not days: a sparse or slow history is rolled up in few chunks, a busy one in short ones."""
    end = clock.kst_midnight(kst_day(following) + timedelta(days=REBUILD_CHUNK_DAYS))
    nth = session.execute(
        text(
            "SELECT paid_at FROM orders WHERE paid_at >= :s AND paid_at < :e ORDER BY paid_at LIMIT 1 OFFSET :n"
        ),
        {"s": _bind_instant(session, start), "e": _bind_instant(session, target), "n": REBUILD_CHUNK_ORDERS},
    ).scalar()
    if nth is None:
        return target
    return min(target, max(end, clock.kst_midnight(kst_day(_as_utc(nth)))))


def _roll_forward(engine: Engine, target: datetime) -> dict[str, int]:
    """Move the watermark to `target` chunk by chunk, one transaction each (the state row locked).

    A chunk starts at the watermark and ends after the next REBUILD_CHUNK_ORDERS sales (at least
    REBUILD_CHUNK_DAYS days from the next sale or refund; `_chunk_end`), so the work is
    proportional to the sales and the days that have them, not to calendar days: an imported
    history with orders on 200 days of 5 years takes at most 200 chunks (fewer when they are
    small), and a stretch with none is passed in the same transaction as the chunk after it.
    Each chunk's day rows come from `collect_facts`; its customers, cohorts and repurchase gaps
    are upserted onto the stored ones by a few INSERT ... SELECT statements (build.py).
    """
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
            following = _next_activity(session, start, target)
            if following is None:  # nothing more up to the target: only the watermark moves
                if not _set_state(session, target, expected=start):
                    raise RuntimeError("analytics rollup advanced by another worker")
                return totals
            end = _chunk_end(session, start, following, target)
            facts = collect_facts(session, start, end)
            days = len({d for d, _ in facts.daily})
            orders = sum(v[0] for v in facts.daily.values())
            _write_day_facts(session, facts, add=True)  # folds the stored partial day into facts
            refunds = {cid: row[2] for cid, row in facts.customers.items() if row[2]}
            _refresh_medians(session, add_window(session, start, end, refunds))
            if not _set_state(session, end, expected=start):
                raise RuntimeError("analytics rollup advanced by another worker")
        totals["days"] += days
        totals["orders"] += orders
        totals["longest_chunk_ms"] = max(
            totals["longest_chunk_ms"], round((time.perf_counter() - began) * 1000)
        )
        totals["chunks"] += 1


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
