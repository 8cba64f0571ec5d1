"""An imported order's times are stored exactly as any other order's, so a query bound to the same
instant finds it: on SQLite, SQLAlchemy binds and stores "YYYY-MM-DD HH:MM:SS.ffffff" text, and an
import that wrote "...:SS" (no fraction) fell out of every range starting or ending on that second
(a sale paid at 00:00:00 KST vanished from its day on 매출)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.models import Order, Payment
from core.payments.order_import import run_import

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "orders_smartstore_sample.csv"
# The sample's first order: 주문일시 2026-11-01 10:12:05 KST, 결제일시 10:12:40 KST (whole seconds).
PAID = datetime(2026, 11, 1, 1, 12, 40, tzinfo=UTC)
ORDERED = datetime(2026, 11, 1, 1, 12, 5, tzinfo=UTC)


@pytest.fixture
def imported(engine, actors):
    run_import(engine, actors["owner"], SAMPLE.read_bytes(), source_name=SAMPLE.name)
    return engine


@pytest.mark.parametrize(
    ("column", "instant"),
    [(Order.paid_at, PAID), (Order.ordered_at, ORDERED), (Payment.approved_at, PAID)],
    ids=["paid_at", "ordered_at", "approved_at"],
)
def test_an_imported_time_is_found_at_its_exact_second(imported, column, instant):
    with Session(imported) as session:
        assert session.exec(select(column).where(column == instant)).all() == [instant]
        # A range that starts on that second (a KST day or month boundary, a rollup window) holds it.
        assert instant in session.exec(select(column).where(column >= instant)).all()


def test_sqlite_stores_imported_times_in_sqlalchemys_own_text(sqlite_engine, sqlite_actors):
    run_import(sqlite_engine, sqlite_actors["owner"], SAMPLE.read_bytes(), source_name=SAMPLE.name)
    with sqlite_engine.connect() as connection:
        stored = connection.execute(text("SELECT paid_at, ordered_at FROM orders ORDER BY id LIMIT 1")).one()
    assert tuple(stored) == ("2026-11-01 01:12:40.000000", "2026-11-01 01:12:05.000000")
