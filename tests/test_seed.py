"""Demo data: deterministic, consistent, every status present, refuses to seed twice, never half-written."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, SQLModel

from core import clock
from core.accounts.auth import authenticate
from core.db import make_engine
from core.demo import generator, seed, writer
from core.models import (
    AuditLog,
    ChargeStatus,
    Customer,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    InquiryType,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    Review,
    StaffUser,
    Subscription,
    SubscriptionCharge,
    SubscriptionStatus,
)
from core.models.sandbox import SandboxInstrument, SandboxPayment

NOW = clock.parse_instant("2026-11-23T10:00:00+09:00")
SMALL = {"customers": 80, "orders": 800, "seed": 11, "now": NOW}
NOT_COMPARED = {"staff_user", "audit_log", "alembic_version"}  # argon2 salts and wall-clock stamps


def _rows(engine: Engine, model: type[SQLModel]) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)).scalars())  # type: ignore[attr-defined, call-overload]


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    dump = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in NOT_COMPARED:
                continue
            order = list(table.primary_key.columns)
            dump[table.name] = [tuple(row) for row in connection.execute(select(table).order_by(*order))]
    return dump


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed.seed_demo(engine, **SMALL)
    return engine


def _sqlite_copy(template: Path, tmp_path: Path, name: str) -> Engine:
    path = tmp_path / name
    shutil.copy(template, path)
    return make_engine(f"sqlite:///{path}")


# ----------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_data_on_sqlite_and_postgres(
    seeded: Engine, sqlite_template: Path, tmp_path: Path
) -> None:
    other = _sqlite_copy(sqlite_template, tmp_path, "again.db")
    seed.seed_demo(other, **SMALL)
    assert _dump(other) == _dump(seeded)
    different = _sqlite_copy(sqlite_template, tmp_path, "different.db")
    seed.seed_demo(different, **{**SMALL, "seed": 12})
    assert _dump(different)["customer"] != _dump(seeded)["customer"]
    for engine in (other, different):
        engine.dispose()


def test_counts_match_the_rows(engine: Engine) -> None:
    counts = seed.seed_demo(engine, **SMALL)
    with Session(engine) as session:

        def count(model: type[SQLModel]) -> int:
            return session.execute(select(func.count()).select_from(model)).scalar_one()

        assert counts["customers"] == count(Customer) == 80
        assert counts["orders"] == count(Order) >= 800
        assert counts["order_items"] == count(OrderItem)
        assert counts["payments"] == count(Payment)
        assert counts["refunds"] == count(Refund)
        assert counts["payment_links"] == count(PaymentLink)
        assert counts["subscriptions"] == count(Subscription)
        assert counts["subscription_charges"] == count(SubscriptionCharge)
        assert counts["inquiries"] == count(Inquiry)
        assert counts["inquiry_events"] == count(InquiryEvent)
        assert counts["reviews"] == count(Review)
        assert counts["staff_users_created"] == 3
        # Every payment and SID exists at the sandbox gateway too (its own tables).
        assert counts["sandbox_payments"] == count(SandboxPayment) == count(Payment)
        assert counts["sandbox_instruments"] == count(SandboxInstrument) == count(Subscription)


def test_every_status_is_present(seeded: Engine) -> None:
    def statuses(model: type[SQLModel]) -> set[str]:
        return {row.status for row in _rows(seeded, model)}

    assert statuses(Order) == set(OrderStatus)
    assert statuses(Payment) >= {
        PaymentStatus.APPROVED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
        PaymentStatus.FAILED,
    }
    assert statuses(PaymentLink) == set(PaymentLinkStatus)
    assert statuses(Subscription) == set(SubscriptionStatus)
    assert statuses(SubscriptionCharge) == {ChargeStatus.SUCCEEDED, ChargeStatus.FAILED}
    inquiries = _rows(seeded, Inquiry)
    open_types = {i.type for i in inquiries if i.status == InquiryStatus.OPEN}
    assert open_types == set(InquiryType)
    assert {i.status for i in inquiries} == set(InquiryStatus)
    ages = {clock.as_utc(NOW) - i.created_at for i in inquiries if i.status == InquiryStatus.OPEN}
    assert min(ages) < timedelta(minutes=5) and max(ages) > timedelta(days=1)


def test_money_and_refunds_are_consistent(seeded: Engine) -> None:
    orders = {o.id: o for o in _rows(seeded, Order)}
    items_by_order: dict[int, list[OrderItem]] = {}
    for item in _rows(seeded, OrderItem):
        items_by_order.setdefault(item.order_id, []).append(item)
        assert item.amount == item.unit_price * item.quantity
    products = {p.id: p for p in _rows(seeded, Product)}
    for order in orders.values():
        items = items_by_order[order.id]
        assert order.total_amount == sum(i.amount for i in items)
        assert order.tax_free_amount == sum(i.amount for i in items if products[i.product_id].is_tax_free)

    refunds_by_payment: Counter[int] = Counter()
    for refund in _rows(seeded, Refund):
        assert refund.status == RefundStatus.SUCCEEDED
        assert refund.amount > 0 and 0 <= refund.tax_free_amount <= refund.amount
        refunds_by_payment[refund.payment_id] += refund.amount
    expected_order_status = {
        PaymentStatus.APPROVED: OrderStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED: OrderStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED: OrderStatus.REFUNDED,
    }
    approved_per_order: Counter[int] = Counter()
    for payment in _rows(seeded, Payment):
        assert payment.gateway == "sandbox" and len(payment.gateway_tid) == 20
        assert payment.refunded_amount == refunds_by_payment[payment.id]
        if payment.status == PaymentStatus.FAILED:
            assert payment.approved_at is None and payment.refunded_amount == 0
            continue
        assert payment.method in {"CARD", "MONEY"}
        if payment.order_id is None:
            continue
        order = orders[payment.order_id]
        approved_per_order[order.id] += 1
        assert payment.amount == order.total_amount and payment.tax_free_amount == order.tax_free_amount
        assert order.refunded_amount == payment.refunded_amount
        assert order.status == expected_order_status[PaymentStatus(payment.status)]
        full = payment.refunded_amount == payment.amount
        assert (payment.status == PaymentStatus.REFUNDED) == full
        assert (payment.status == PaymentStatus.PARTIALLY_REFUNDED) == (
            0 < payment.refunded_amount < payment.amount
        )
    # The only orders with two approved payments are the double charges customers asked about.
    doubled = {order_id for order_id, n in approved_per_order.items() if n > 1}
    complained = {i.order_id for i in _rows(seeded, Inquiry) if i.type == InquiryType.DOUBLE_CHARGE}
    assert doubled and doubled <= complained
    for order in orders.values():
        if order.status in (OrderStatus.PENDING, OrderStatus.CANCELED):
            assert order.id not in approved_per_order and order.paid_at is None


def test_values_are_ints_aware_and_not_in_the_future(seeded: Engine) -> None:
    now = clock.as_utc(NOW)
    with Session(seeded) as session:
        for model in (
            Customer,
            Order,
            Payment,
            Refund,
            PaymentLink,
            Subscription,
            SubscriptionCharge,
            Inquiry,
            InquiryEvent,
            Review,
        ):
            for row in session.exec(select(model)).scalars():  # type: ignore[call-overload]
                for name, value in row.model_dump().items():
                    if isinstance(value, datetime):
                        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (model, name)
                        future_ok = name in {
                            "expires_at",
                            "next_retry_at",
                            "first_response_due_at",
                            "resolution_due_at",
                            "sla_due_at",  # deadlines: the SLA engine sets them after seeding
                            "sla_at_risk_at",
                            "sla_next_alert_at",
                        }
                        assert future_ok or value <= now, (model, name, value)
                    if name in {"amount", "total_amount", "tax_free_amount", "refunded_amount", "price"}:
                        assert type(value) is int, (model, name)


def test_customers_look_korean_and_consent_is_dated(seeded: Engine) -> None:
    customers = _rows(seeded, Customer)
    assert all(re.fullmatch(r"[가-힣]{2,4}", c.name) for c in customers)
    assert all(re.fullmatch(r"010-\d{4}-\d{4}", c.phone) for c in customers)
    assert len({c.phone for c in customers}) == len(customers)
    consented = [c for c in customers if c.ad_consent_at]
    assert 0 < len(consented) < len(customers)
    assert any(c.night_ad_consent_at for c in consented)
    assert any(c.ad_opt_out_at and c.ad_opt_out_at > c.ad_consent_at for c in consented)
    assert any(not c.is_channel_friend for c in customers)
    assert all(c.night_ad_consent_at is None or c.ad_consent_at for c in customers)


def test_repeat_buyers_products_and_subscriptions(seeded: Engine) -> None:
    per_customer = Counter(o.customer_id for o in _rows(seeded, Order))
    assert max(per_customer.values()) >= 5 * (sum(per_customer.values()) / len(per_customer)) / 2
    assert sum(1 for n in per_customer.values() if n >= 2) > len(per_customer) / 2
    products = {p.name: p for p in _rows(seeded, Product)}
    assert products["헬스장 월회비"].price == 39_000 and products["헬스장 월회비"].is_subscription
    assert products["드립백 커피 10개입"].replenishment_days == 30
    assert products["프로틴 쉐이크 초코 1kg"].replenishment_days == 45
    assert any(p.is_tax_free for p in products.values())
    subscriptions = _rows(seeded, Subscription)
    today = clock.today_kst(NOW)
    for sub in subscriptions:
        assert sub.instrument_ref.startswith("S") and len(sub.instrument_ref) == 20
        assert 1 <= sub.anchor_day <= 31
        if sub.status == SubscriptionStatus.CANCELED:
            assert sub.canceled_at is not None and sub.next_charge_date is None
        elif sub.status == SubscriptionStatus.ACTIVE:
            assert sub.next_charge_date > today
        elif sub.status == SubscriptionStatus.PAUSED:
            assert sub.paused_until > today and sub.next_charge_date >= sub.paused_until
        else:
            assert sub.next_charge_date <= today
    assert any(s.next_charge_date == today + timedelta(days=1) for s in subscriptions)
    charges = _rows(seeded, SubscriptionCharge)
    orders = {o.id: o for o in _rows(seeded, Order)}
    for charge in charges:
        if charge.status == ChargeStatus.SUCCEEDED:
            assert orders[charge.order_id].subscription_id == charge.subscription_id
            assert orders[charge.order_id].total_amount == charge.amount


def test_demo_users_can_log_in(seeded: Engine) -> None:
    for username, _name, role in seed.DEMO_USERS:
        actor = authenticate(seeded, username, seed.DEMO_PASSWORD)
        assert actor.role == role
    assert len(seed.DEMO_PASSWORD) >= 8


def test_second_seed_is_refused_and_changes_nothing(seeded: Engine) -> None:
    before = _dump(seeded)
    with pytest.raises(seed.SeedRefused, match="--reset"):
        seed.seed_demo(seeded, **{**SMALL, "seed": 99})
    assert _dump(seeded) == before


def test_reset_replaces_shop_data_and_keeps_staff_and_audit(seeded: Engine) -> None:
    staff_before = [(u.id, u.username, u.password_hash) for u in _rows(seeded, StaffUser)]
    audit_before = len(_rows(seeded, AuditLog))
    counts = seed.seed_demo(seeded, **{**SMALL, "customers": 40, "orders": 300, "seed": 5}, reset=True)
    assert counts["staff_users_created"] == 0
    assert [(u.id, u.username, u.password_hash) for u in _rows(seeded, StaffUser)] == staff_before
    assert len(_rows(seeded, AuditLog)) == audit_before + 1
    assert len(_rows(seeded, Customer)) == 40
    with Session(seeded) as session:  # new rows get fresh ids after the explicit-id load
        session.add(Customer(name="새고객", phone="010-0000-0001"))
        session.commit()


def test_a_failure_half_way_writes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: Any, n_orders: int) -> None:
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(generator.Generator, "_inquiries", explode)
    monkeypatch.setattr(generator, "BULK_INDEX_THRESHOLD", 0)  # the index drop must roll back too
    indexes_before = _index_names(engine)
    with pytest.raises(RuntimeError, match="simulated"):
        seed.seed_demo(engine, **SMALL)
    for model in (Customer, Order, Payment, StaffUser, AuditLog):
        assert _rows(engine, model) == []
    assert _index_names(engine) == indexes_before


def _index_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
        return {row[0] for row in connection.exec_driver_sql(sql)}


def test_big_load_path_rebuilds_every_index(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "BULK_INDEX_THRESHOLD", 0)
    before = _index_names(engine)
    seed.seed_demo(engine, **{**SMALL, "orders": 300})
    assert _index_names(engine) == before


def test_sqlite_foreign_keys_hold_and_pragma_is_restored(sqlite_engine: Engine) -> None:
    seed.seed_demo(sqlite_engine, **SMALL)
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        # Stored text matches what SQLAlchemy writes, so string range filters stay correct.
        stored = connection.exec_driver_sql("SELECT ordered_at FROM orders LIMIT 1").scalar_one()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored)
        cutoff = clock.as_utc(NOW) - timedelta(days=30)
        via_filter = connection.execute(
            select(func.count()).select_from(Order).where(Order.ordered_at >= cutoff)  # type: ignore[arg-type]
        ).scalar_one()
    in_python = sum(1 for o in _rows(sqlite_engine, Order) if o.ordered_at >= cutoff)
    assert via_filter == in_python > 0


@pytest.mark.parametrize("fails", [False, True], ids=["loaded", "failed half way"])
def test_a_big_load_on_sqlite_returns_the_store_to_wal(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    """A big load runs with a rollback journal (each page written once); the app's WAL comes back
    afterwards, whether the load committed or rolled back, and a rollback leaves nothing behind."""
    monkeypatch.setattr(generator, "BULK_INDEX_THRESHOLD", 0)
    if fails:

        def explode(self: Any, n_orders: int) -> None:
            raise RuntimeError("disk full (simulated)")

        monkeypatch.setattr(generator.Generator, "_inquiries", explode)
        with pytest.raises(RuntimeError, match="simulated"):
            seed.seed_demo(sqlite_engine, **SMALL)
    else:
        seed.seed_demo(sqlite_engine, **SMALL)
    sqlite_engine.dispose()
    # A plain connection (not the engine's, which asks for WAL itself) reads the mode stored in the file.
    plain = sqlite3.connect(str(sqlite_engine.url.database))
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        customers = plain.execute("SELECT COUNT(*) FROM customer").fetchone()[0]
    finally:
        plain.close()
    assert customers == (0 if fails else SMALL["customers"])


def test_bad_arguments_are_refused(sqlite_engine: Engine) -> None:
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        seed.seed_demo(sqlite_engine, customers=0, orders=10)
    with pytest.raises(ValidationFailed):
        seed.seed_demo(sqlite_engine, customers=10, orders=-1)
    with pytest.raises(ValidationFailed):
        seed.seed_demo(sqlite_engine, customers=10, orders=10, now=datetime(2026, 11, 1))
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM customer")).scalar_one() == 0


def test_a_writer_thread_error_surfaces_and_writes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = writer.Writer._write

    def failing(self: Any, table: str, columns: Any, rows: Any) -> None:
        if table == "review":
            raise RuntimeError("writer broke (simulated)")
        real_write(self, table, columns, rows)

    monkeypatch.setattr(writer.Writer, "_write", failing)
    monkeypatch.setattr(generator, "BACKGROUND_WRITER", True)
    with pytest.raises(RuntimeError, match="writer broke"):
        seed.seed_demo(engine, **SMALL)
    assert _rows(engine, Customer) == [] and _rows(engine, Order) == []


def test_background_writer_gives_the_same_data(
    seeded: Engine, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "BACKGROUND_WRITER", True)
    other = _sqlite_copy(sqlite_template, tmp_path, "background.db")
    seed.seed_demo(other, **SMALL)
    assert _dump(other) == _dump(seeded)
    other.dispose()


def test_seeded_open_inquiries_have_sla_deadlines(seeded: Engine) -> None:
    """The 문의 queue sorts by deadline: seeded inquiries are timed like ones made by the service."""
    from core.models import Inquiry, InquiryStatus

    with Session(seeded) as session:
        open_ones = (
            session.execute(select(Inquiry).where(Inquiry.status == InquiryStatus.OPEN)).scalars().all()
        )
        assert open_ones
        assert all(i.sla_due_at is not None for i in open_ones)
