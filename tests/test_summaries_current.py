"""Every path that writes orders or payments leaves customer_summary equal to what the raw orders say.

The expected values are computed here, in Python, from the orders themselves (not by the module's
own rebuild): a paid order is paid or partially refunded; its value is total minus refunded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core import billing, clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.demo import seed
from core.inquiries.jobs import double_charge_sentinel
from core.models import (
    CustomerProductSummary,
    CustomerSummary,
    Inquiry,
    InquiryStatus,
    InquiryType,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
)
from core.payments.link_approval import pay_link
from core.payments.link_checkout import open_link, select_method, start_payment
from core.payments.links import create_payment_link
from core.payments.order_import import run_import
from core.payments.refunds import order_refunded_amount, refund_payment
from tests.payments.helpers import sandbox_router

SEEDED_AT = clock.parse_instant("2026-11-23T10:00:00+09:00")
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "orders_sample.csv"
PAID = {OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value}


def _from_orders(session: Session) -> tuple[dict[int, tuple[Any, ...]], set[tuple[int, int]]]:
    """customer -> (paid orders, paid total, first, last ordered_at); and the (customer, product) pairs."""
    per_customer: dict[int, list[Any]] = {}
    paid_ids: dict[int, int] = {}
    for order_id, customer_id, total, refunded, ordered_at, status in session.execute(
        select(Order.id, Order.customer_id, Order.total_amount, Order.refunded_amount, Order.ordered_at,
               Order.status)
    ):
        if status not in PAID:
            continue
        paid_ids[order_id] = customer_id
        at = clock.as_utc(ordered_at)
        row = per_customer.setdefault(customer_id, [0, 0, at, at])
        row[0] += 1
        row[1] += total - refunded
        row[2], row[3] = min(row[2], at), max(row[3], at)
    pairs = {
        (paid_ids[order_id], product_id)
        for order_id, product_id in session.execute(select(OrderItem.order_id, OrderItem.product_id))
        if order_id in paid_ids and product_id is not None
    }
    return {cid: tuple(row) for cid, row in per_customer.items()}, pairs


def assert_summaries_current(engine: Engine, after: str) -> None:
    with Session(engine) as session:
        expected, pairs = _from_orders(session)
        stored = {
            s.customer_id: (s.paid_orders, s.paid_total, clock.as_utc(s.first_ordered_at),
                            clock.as_utc(s.last_ordered_at))
            for s in session.execute(select(CustomerSummary)).scalars()
        }
        stored_pairs = {
            (p.customer_id, p.product_id) for p in session.execute(select(CustomerProductSummary)).scalars()
        }
    wrong = {cid: (stored.get(cid), want) for cid, want in expected.items() if stored.get(cid) != want}
    extra = set(stored) - set(expected)
    assert not wrong and not extra, f"after {after}: stale summaries {wrong} {extra}"
    assert stored_pairs == pairs, f"after {after}: product summaries differ"


def _actor(engine: Engine, username: str) -> Actor:
    from core.models import Role, StaffUser

    with Session(engine) as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one()
        return Actor(user.id, user.display_name, Role(user.role))


def test_every_write_path_keeps_customer_summaries_current(engine: Engine) -> None:
    seed.seed_demo(engine, customers=50, orders=400, seed=5, now=SEEDED_AT)
    assert_summaries_current(engine, "the seed")
    cs, owner = _actor(engine, "cs"), _actor(engine, "owner")
    now: datetime = SEEDED_AT + timedelta(minutes=1)

    # The sentinel refunds the seeded double charge: the customer still bought the order once.
    with Session(engine) as session:
        doubled = session.execute(
            select(Inquiry).where(Inquiry.type == InquiryType.DOUBLE_CHARGE, Inquiry.status == InquiryStatus.OPEN)
        ).scalar_one()
    assert double_charge_sentinel(engine, now)["refunded"] == 1
    with Session(engine) as session:
        order = session.get(Order, doubled.order_id)
        assert order is not None and (order.status, order.refunded_amount) == (OrderStatus.PAID, 0)
    assert_summaries_current(engine, "the sentinel's refund")

    # A payment link paid through the sandbox (a new order for a seeded customer).
    _sandbox, router = sandbox_router(engine)
    with clock.frozen(now), session_scope(engine) as session:
        customer_id = session.execute(select(CustomerSummary.customer_id).limit(1)).scalar_one()
        link = create_payment_link(session, cs, item_name="맞춤 세트", amount=45_000, customer_id=customer_id,
                                   router=router)
        open_link(session, link.code, router=router)
        start = start_payment(session, link.code, router=router)
        token = select_method(session, link.code, "CARD", router=router, tid=start.tid)
        paid = pay_link(session, link.code, pg_token=token, attempt=start.attempt, router=router)
        assert paid.status == OrderStatus.PAID
    assert_summaries_current(engine, "a link payment")

    # A refund, partial then full, of a seeded payment (주문 → 환불).
    with session_scope(engine) as session:
        payment = session.execute(
            select(Payment).where(Payment.status == PaymentStatus.APPROVED, Payment.order_id.is_not(None),  # type: ignore[union-attr]
                                  Payment.amount >= 2_000).order_by(Payment.id)
        ).scalars().first()
        assert payment is not None
        with clock.frozen(now):
            refund_payment(session, cs, payment_id=payment.id, amount=1_000, reason="부분 환불",
                           idempotency_key="summary:part", router=router)
    assert_summaries_current(engine, "a partial refund")
    with clock.frozen(now), session_scope(engine) as session:
        refund_payment(session, cs, payment_id=payment.id, amount=payment.amount - 1_000, reason="전액 환불",
                       idempotency_key="summary:rest", router=router)
    assert_summaries_current(engine, "a full refund")

    # An import (paid, refunded and canceled rows; two customers already known by phone or not).
    run_import(engine, owner, SAMPLE.read_bytes())
    assert_summaries_current(engine, "an import")

    # The day's subscription charges, recorded in one batch (core.payments.orders.record_paid_orders).
    with Session(engine) as session:
        period = session.execute(
            select(Subscription.next_charge_date)
            .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.next_charge_date.is_not(None))  # type: ignore[union-attr]
            .order_by(Subscription.next_charge_date)
        ).scalars().first()
    assert period is not None
    billing.billing_notices(engine, clock.kst_midnight(period - timedelta(days=1)) + timedelta(hours=10))
    charged = billing.billing_charges(engine, clock.kst_midnight(period) + timedelta(hours=10))
    assert charged["succeeded"] >= 1, charged
    assert_summaries_current(engine, "a charge batch")


@pytest.mark.parametrize(
    ("total", "collected", "given_back", "refunded"),
    [
        (30_000, 30_000, 0, 0),  # paid once, nothing back
        (30_000, 30_000, 1, 1),  # the smallest partial refund
        (30_000, 30_000, 29_999, 29_999),
        (30_000, 30_000, 30_000, 30_000),  # all back: refunded
        (30_000, 60_000, 30_000, 0),  # charged twice, the extra charge returned: still bought
        (30_000, 60_000, 30_001, 1),  # ... and a won of the price on top
        (30_000, 60_000, 60_000, 30_000),  # both charges returned
    ],
)
def test_an_orders_refunded_amount_counts_only_money_back_of_its_price(
    total: int, collected: int, given_back: int, refunded: int
) -> None:
    assert order_refunded_amount(total, collected, given_back) == refunded
