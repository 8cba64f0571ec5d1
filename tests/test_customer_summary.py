"""The per-customer summaries answer every segment rule exactly as the raw orders do.

One deterministic shop with the awkward cases (refunded, partially refunded, canceled and pending
orders, items without a product, orders exactly on a rule's boundary, several subscriptions), then
a table of rules evaluated twice: from the summaries (what counts and campaigns use) and over the
raw orders (the definition). Both must select the same customers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core import campaigns
from core.customers import summary as customer_summary
from core.db import session_scope
from core.errors import ValidationFailed
from core.models import (
    Customer,
    CustomerProductSummary,
    CustomerSummary,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Subscription,
    SubscriptionPlan,
)
from core.payments.orders import record_paid_order

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
STATUSES = [OrderStatus.PAID] * 6 + [
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
    OrderStatus.CANCELED,
    OrderStatus.PENDING,
]
BOUNDARY_DAYS = (30, 60, 90, 180)  # some orders land exactly on these cutoffs


@pytest.fixture
def random_shop(engine: Engine) -> dict[str, list[int]]:
    rng = random.Random(8)
    with session_scope(engine) as s:
        products = [
            Product(
                name=f"상품{i}",
                category=f"분류{i % 3}",
                price=10000,
                replenishment_days=(30 if i % 2 else None),
            )
            for i in range(6)
        ]
        s.add_all(products)
        plan = SubscriptionPlan(name="월 구독", amount=39000)
        s.add(plan)
        s.flush()
        customer_ids = []
        for i in range(70):
            customer = Customer(name=f"고객{i}", phone=f"010-0000-{i:04d}", is_channel_friend=i % 5 != 0)
            s.add(customer)
            s.flush()
            customer_ids.append(customer.id)
        number = 0
        for customer_id in customer_ids[:60]:  # the last ten never ordered
            for _ in range(rng.randint(1, 7)):
                number += 1
                if rng.random() < 0.2:
                    at = NOW - timedelta(days=rng.choice(BOUNDARY_DAYS))
                else:
                    at = NOW - timedelta(seconds=rng.randint(0, 400 * 86400))
                status = rng.choice(STATUSES)
                total = rng.choice([10000, 50000, 100000, 300000])
                refunded = {OrderStatus.PARTIALLY_REFUNDED: total // 2, OrderStatus.REFUNDED: total}.get(
                    status, 0
                )
                order = Order(
                    order_number=f"r-{number}",
                    customer_id=customer_id,
                    total_amount=total,
                    refunded_amount=refunded,
                    status=status,
                    ordered_at=at,
                    paid_at=at if status != OrderStatus.PENDING else None,
                )
                s.add(order)
                s.flush()
                for product in rng.sample(products, rng.randint(0, 2)):
                    s.add(
                        OrderItem(
                            order_id=order.id,
                            product_id=product.id,
                            product_name=product.name,
                            quantity=1,
                            unit_price=total,
                            amount=total,
                        )
                    )
                if rng.random() < 0.1:
                    s.add(
                        OrderItem(
                            order_id=order.id, product_name="가져온 상품", quantity=1, unit_price=1, amount=1
                        )
                    )
        for customer_id in customer_ids[::7]:
            s.add(Subscription(customer_id=customer_id, plan_id=plan.id, amount=39000, anchor_day=1))
        for customer_id in customer_ids[::11]:
            s.add(
                Subscription(
                    customer_id=customer_id, plan_id=plan.id, amount=39000, anchor_day=2, status="canceled"
                )
            )
        s.flush()
        customer_summary.rebuild(s)
        return {"customers": customer_ids, "products": [p.id for p in products]}


RULES = [
    {"type": "spent", "min_amount": 100000},
    {"type": "spent", "min_amount": 300000, "days": 90},
    {"type": "spent", "min_amount": 50000, "start": "2026-06-01", "end": "2026-09-30"},
    {"type": "bought", "product_ids": [0, 1]},
    {"type": "bought", "product_ids": [2], "days": 60},
    {"type": "bought", "category": "분류1", "days": 30},
    {"type": "bought", "category": "분류2", "start": "2026-09-01"},
    {"type": "bought", "category": "분류0", "start": "2026-03-01", "end": "2026-08-31"},
    {"type": "repurchase_due", "within_days": 7},
    {"type": "repurchase_due", "within_days": 0, "overdue_days": 0},
    {"type": "repurchase_due", "within_days": 14, "product_ids": [1]},
    {"type": "dormant", "days": 90},
    {"type": "dormant", "days": 180, "include_never": True},
    {"type": "dormant", "days": 30},
    {"type": "subscription", "statuses": ["active"]},
    {"type": "subscription", "statuses": ["canceled", "none"]},
    {"type": "order_count", "min": 3},
    {"type": "order_count", "min": 0, "max": 2},
    {"type": "order_count", "max": 0},
    {"type": "order_count", "min": 2, "max": 4},
    {"type": "order_count", "min": 1, "days": 60},
    {"type": "first_purchase", "days": 90},
    {"type": "first_purchase", "start": "2026-01-01", "end": "2026-06-30"},
    {"type": "first_purchase", "end": "2026-03-31"},
]


def _real(rule: dict, shop: dict[str, list[int]]) -> dict:
    if "product_ids" in rule:
        return {**rule, "product_ids": [shop["products"][i] for i in rule["product_ids"]]}
    return rule


def _members(engine: Engine, rules: dict, *, raw: bool) -> set[int]:
    with Session(engine) as s:
        condition = campaigns.segment_condition(s, rules, NOW, raw=raw)
        return set(s.execute(select(Customer.__table__.c.id).where(condition)).scalars())


def test_summaries_select_exactly_the_raw_members(engine: Engine, random_shop: dict[str, list[int]]) -> None:
    """Every rule alone, as an exclusion, and combined: summary-based == raw-based."""
    cases = [{"include": [_real(rule, random_shop)]} for rule in RULES]
    cases += [
        {"include": [{"type": "channel_friend"}], "exclude": [_real(rule, random_shop)]} for rule in RULES
    ]
    cases += [
        {"include": [_real(a, random_shop), _real(b, random_shop)]}
        for a, b in zip(RULES, RULES[3:] + RULES[:3], strict=True)
    ]
    wrong, non_trivial = [], 0
    for rules in cases:
        try:
            summary = _members(engine, rules, raw=False)
        except ValidationFailed:
            continue  # contradictory combinations are refused the same way by both
        raw = _members(engine, rules, raw=True)
        non_trivial += 0 < len(raw) < len(random_shop["customers"])
        if summary != raw:
            wrong.append((rules, sorted(summary ^ raw)))
    assert not wrong, wrong
    assert non_trivial >= 40  # the shop really splits the customers, the comparison means something


def test_rebuild_equals_the_rows_kept_by_refreshes(engine: Engine, random_shop: dict[str, list[int]]) -> None:
    """Refreshing customer by customer (the write paths) gives the rows a full rebuild gives."""

    def snapshot(s: Session) -> tuple[list, list]:
        return (
            sorted(tuple(r) for r in s.execute(select(CustomerSummary.__table__)).all()),
            sorted(tuple(r) for r in s.execute(select(CustomerProductSummary.__table__)).all()),
        )

    with session_scope(engine) as s:
        rebuilt = snapshot(s)
        s.execute(CustomerSummary.__table__.delete())
        s.execute(CustomerProductSummary.__table__.delete())
        for customer_id in random_shop["customers"]:
            customer_summary.refresh(s, [customer_id])
        assert snapshot(s) == rebuilt
        assert len(rebuilt[0]) > 40


def test_a_recorded_paid_order_updates_the_summary_in_its_transaction(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as s:
        customer = Customer(name="김구매", phone="010-1111-2222")
        product = Product(name="원두", category="커피", price=30000)
        s.add_all([customer, product])
        s.flush()
        for number, days in (("p-1", 40), ("p-2", 3)):
            record_paid_order(
                s,
                order_number=number,
                customer_id=customer.id,
                product_id=product.id,
                item_name="원두 1kg",
                amount=30000,
                tax_free_amount=0,
                source="link",
                ordered_at=NOW - timedelta(days=days),
                paid_at=NOW - timedelta(days=days),
            )
        summary = s.get(CustomerSummary, customer.id)
        assert (summary.paid_orders, summary.paid_total, summary.last_product_name) == (2, 60000, "원두 1kg")
        assert (summary.first_ordered_at, summary.last_ordered_at) == (
            NOW - timedelta(days=40),
            NOW - timedelta(days=3),
        )
        per_product = s.get(CustomerProductSummary, (customer.id, product.id))
        assert per_product.last_paid_at == NOW - timedelta(days=3)


def test_two_orders_of_one_customer_at_once_both_count(pg_engine: Engine) -> None:
    """Two transactions record a paid order for the same customer concurrently: the row lock in
    refresh makes the second recompute see the first's order, so the summary ends with both."""
    with session_scope(pg_engine) as s:
        customer = Customer(name="동시구매", phone="010-2222-3333")
        s.add(customer)
        s.flush()
        customer_id = customer.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def buy(number: str) -> None:
        try:
            with session_scope(pg_engine) as s:
                barrier.wait(timeout=30)
                record_paid_order(
                    s,
                    order_number=number,
                    customer_id=customer_id,
                    product_id=None,
                    item_name="원두",
                    amount=10000,
                    tax_free_amount=0,
                    source="link",
                    ordered_at=NOW,
                    paid_at=NOW,
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(f"c-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with Session(pg_engine) as s:
        summary = s.get(CustomerSummary, customer_id)
        assert (summary.paid_orders, summary.paid_total) == (2, 20000)
