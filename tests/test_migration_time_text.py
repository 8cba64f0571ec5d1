"""Stores that imported history before the fix hold whole-second times without the fraction; the
migration mends them so they compare equal to the same instant (see import_store.bulk_insert)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from core.db import alembic_config, make_engine
from core.models import Order


def test_whole_second_sqlite_times_gain_the_fraction_and_are_found_again(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO customer (name, is_channel_friend, public_id, created_at) "
            "VALUES ('가져온 고객', 0, 'c-import-1', '2026-11-01 01:00:00')"
        ))
        connection.execute(text(
            "INSERT INTO orders (order_number, customer_id, total_amount, tax_free_amount, source, status, "
            "ordered_at, paid_at, refunded_amount, delivered_at) VALUES ('A1', 1, 1000, 0, 'import', 'paid', "
            "'2026-11-01 01:12:05', '2026-11-01 01:12:40', 0, '2026-11-01 01:12:40.250000')"
        ))
    command.upgrade(config, "head")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT ordered_at, paid_at, delivered_at FROM orders")).one()
    assert tuple(row) == ("2026-11-01 01:12:05.000000", "2026-11-01 01:12:40.000000", "2026-11-01 01:12:40.250000")
    with Session(engine) as session:
        paid = datetime(2026, 11, 1, 1, 12, 40, tzinfo=UTC)
        assert session.exec(select(Order.order_number).where(Order.paid_at == paid)).all() == ["A1"]
    engine.dispose()
