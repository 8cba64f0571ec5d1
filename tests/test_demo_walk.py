"""The demo as a new user meets it: seed, start the worker, refund, charge, see the double charge go.

Every seeded payment, refund and SID must exist at the sandbox gateway (its own tables), so every
demo action works; the rule checked after every step is that the gateway's books and ours agree:
the same payments, the same amounts taken and given back, nothing charged or refunded twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.demo import seed
from core.inquiries import service as inquiries
from core.models import (
    ChargeStatus,
    Inquiry,
    InquiryStatus,
    InquiryType,
    Order,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
    StaffUser,
    Subscription,
    SubscriptionCharge,
    SubscriptionStatus,
)
from core.models.sandbox import SandboxInstrument, SandboxPayment
from core.payments.gateways.registry import get_router
from core.payments.refunds import refund_payment

ROOT = Path(__file__).resolve().parent.parent
# The seed's instant is given, never the default test clock (CI shifts that years ahead).
SEEDED_AT = clock.parse_instant("2026-11-23T10:00:00+09:00")
SMALL = {"customers": 60, "orders": 600, "seed": 7}
# Our payment status -> what the gateway must say about the same payment (KakaoPay's states).
AGREES = {
    PaymentStatus.APPROVED: {"SUCCESS_PAYMENT"},
    PaymentStatus.PARTIALLY_REFUNDED: {"PART_CANCEL_PAYMENT"},
    PaymentStatus.REFUNDED: {"CANCEL_PAYMENT"},
    PaymentStatus.FAILED: {"FAIL_PAYMENT", "READY", "QUIT_PAYMENT"},
}
TAKEN = {"SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT"}


def _worker(engine: Engine, now: datetime) -> dict[str, Any]:
    """`python -m core.worker --once --now ...`, as the README tells a new user to run it."""
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    env.pop("PAYMENT_BACKUP_GATEWAY", None)
    env["PAYMENT_GATEWAY"] = "sandbox"
    result = subprocess.run(
        [sys.executable, "-m", "core.worker", "--once", "--now", now.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def assert_gateway_agrees(engine: Engine) -> None:
    """The sandbox's books and ours tell the same story, payment by payment and won by won."""
    with Session(engine) as session:
        ours = session.execute(select(Payment)).scalars().all()
        theirs = {row.tid: row for row in session.execute(select(SandboxPayment)).scalars()}
        refunded: dict[int, int] = defaultdict(int)
        for refund in session.execute(select(Refund).where(Refund.status == RefundStatus.SUCCEEDED)).scalars():
            refunded[refund.payment_id] += refund.amount
        tids = Counter(p.gateway_tid for p in ours)
        assert all(n == 1 for n in tids.values()), "one payment of ours per gateway payment"
        for payment in ours:
            row = theirs.get(payment.gateway_tid)
            assert row is not None, f"payment #{payment.id} ({payment.status}) is unknown to the gateway"
            assert row.status in AGREES[PaymentStatus(payment.status)], (payment.id, payment.status, row.status)
            assert row.total_amount == payment.amount and row.tax_free_amount == payment.tax_free_amount
            if row.status in TAKEN:
                assert row.canceled_amount == payment.refunded_amount == refunded[payment.id], payment.id
                cancels = [a for a in row.actions if a["payment_action_type"] == "CANCEL"]
                assert sum(a["amount"] for a in cancels) == row.canceled_amount
                assert len({a["idempotency_key"] for a in cancels}) == len(cancels), "a cancel twice"
        known = {p.gateway_tid for p in ours}
        taken_unknown = [tid for tid, row in theirs.items() if row.status in TAKEN and tid not in known]
        assert not taken_unknown, "the gateway took money we have no payment for"
        instruments = {i.sid: i for i in session.execute(select(SandboxInstrument)).scalars()}
        for sub in session.execute(select(Subscription)).scalars():
            instrument = instruments.get(sub.instrument_ref)
            assert instrument is not None, f"subscription #{sub.id} has no SID at the gateway"
            if sub.status != SubscriptionStatus.CANCELED:
                assert instrument.status == "ACTIVE", sub.id


def _actor(engine: Engine, username: str) -> Actor:
    with Session(engine) as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one()
        return Actor(user.id, user.display_name, Role(user.role))


def test_a_new_user_walks_the_demo(engine: Engine) -> None:
    seed.seed_demo(engine, now=SEEDED_AT, **SMALL)
    assert_gateway_agrees(engine)

    # Live lookup of payments of every kind answers what we recorded.
    router = get_router(engine=engine)
    with Session(engine) as session:
        by_status: dict[str, Payment] = {}
        for payment in session.execute(select(Payment).order_by(Payment.id)).scalars():
            by_status.setdefault(payment.status, payment)
    assert set(by_status) >= {"approved", "partially_refunded", "refunded", "failed"}
    for payment in by_status.values():
        found = router.lookup("sandbox", [], tid=payment.gateway_tid)
        assert found.total_amount == payment.amount
        if payment.status != PaymentStatus.FAILED:
            assert found.canceled_amount == payment.refunded_amount

    # The worker's first tick, a minute after the seed: the sentinel refunds the double charge.
    with Session(engine) as session:
        seeded = session.execute(select(Inquiry).where(Inquiry.type == InquiryType.DOUBLE_CHARGE,
                                                       Inquiry.status != InquiryStatus.RESOLVED)).scalars().all()
        assert len(seeded) == 1
        doubled = seeded[0]
        later = session.get(Payment, doubled.payment_id)
        assert later is not None
        first = session.execute(select(Payment).where(Payment.order_id == later.order_id,
                                                      Payment.id != later.id)).scalar_one()
    first_tick = SEEDED_AT + timedelta(minutes=1)
    summary = _worker(engine, first_tick)
    sentinel = summary["jobs"]["double_charge_sentinel"]
    assert sentinel["outcome"] == "ok"
    assert sentinel["counts"]["found"] == sentinel["counts"]["refunded"] == 1, sentinel
    assert sentinel["counts"]["opened"] == 0, "the seeded inquiry is taken over, not duplicated"
    with Session(engine) as session:
        inquiry = session.get(Inquiry, doubled.id)
        assert inquiry is not None and inquiry.status == InquiryStatus.RESOLVED
        target = timedelta(hours=1)  # the product's promise: a double charge is refunded within an hour
        assert clock.as_utc(inquiry.resolved_at) - clock.as_utc(inquiry.created_at) <= target
        assert clock.as_utc(inquiry.resolved_at) <= clock.as_utc(inquiry.resolution_due_at)
        refunds = session.execute(select(Refund).where(Refund.payment_id == later.id)).scalars().all()
        assert [(r.amount, r.status) for r in refunds] == [(later.amount, RefundStatus.SUCCEEDED)]
        kept = session.get(Payment, first.id)
        assert kept is not None and kept.status == PaymentStatus.APPROVED and kept.refunded_amount == 0
        order = session.get(Order, later.order_id)
        assert order is not None and (order.status, order.refunded_amount) == ("paid", 0), "bought once"
    assert_gateway_agrees(engine)
    assert _worker(engine, first_tick + timedelta(minutes=2))["jobs"]["double_charge_sentinel"]["counts"][
        "refunded"
    ] == 0, "nothing refunded twice"

    # 문의 → 환불 (part of a payment), then 주문 → 환불 (the rest), on seeded payments.
    cs = _actor(engine, "cs")
    clock.set_now(first_tick + timedelta(minutes=5))  # staff refund minutes after the first tick
    with session_scope(engine) as session:  # as the pages do (objects stay loaded across commits)
        request = session.execute(
            select(Inquiry)
            .join(Payment, Payment.id == Inquiry.payment_id)
            .where(Inquiry.type == InquiryType.REFUND_REQUEST, Inquiry.status != InquiryStatus.RESOLVED,
                   Payment.status == PaymentStatus.APPROVED, Payment.amount >= 2000)
            .order_by(Inquiry.id)
        ).scalars().first()
        assert request is not None, "the demo has a refund request on an approved payment"
        payment = session.get(Payment, request.payment_id)
        assert payment is not None
        part = payment.amount // 2
        inquiries.refund(session, cs, request.id, payment_id=payment.id, amount=part, reason="부분 환불 (고객 요청)")
    with session_scope(engine) as session:
        refund_payment(session, cs, payment_id=payment.id, amount=payment.amount - part,
                       reason="나머지 환불", idempotency_key=f"walk:{payment.id}:rest")
        done = session.get(Payment, payment.id)
        assert done is not None and done.status == PaymentStatus.REFUNDED
        assert done.refunded_amount == payment.amount
    with Session(engine) as session:
        gateway_row = session.get(SandboxPayment, payment.gateway_tid)
        assert gateway_row is not None and gateway_row.status == "CANCEL_PAYMENT"
        assert gateway_row.canceled_amount == payment.amount
    assert_gateway_agrees(engine)

    # A seeded subscription charged at its next date: its notice the day before, then one charge.
    with Session(engine) as session:
        sub = session.execute(
            select(Subscription)
            .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.next_charge_date.is_not(None))  # type: ignore[union-attr]
            .order_by(Subscription.next_charge_date, Subscription.id)
        ).scalars().first()
        assert sub is not None
        period, sub_id, amount = sub.next_charge_date, sub.id, sub.amount
    assert period is not None
    day_before = clock.kst_midnight(period - timedelta(days=1)) + timedelta(hours=10)
    if day_before > first_tick:
        _worker(engine, day_before)
    charged = _worker(engine, clock.kst_midnight(period) + timedelta(hours=10))
    assert charged["jobs"]["billing_charges"]["outcome"] == "ok"
    with Session(engine) as session:
        charges = session.execute(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sub_id,
                                             SubscriptionCharge.period == period)
        ).scalars().all()
        assert [(c.status, c.amount) for c in charges] == [(ChargeStatus.SUCCEEDED, amount)]
        payment = session.get(Payment, charges[0].payment_id)
        assert payment is not None and payment.status == PaymentStatus.APPROVED
        at_gateway = session.execute(
            select(SandboxPayment).where(SandboxPayment.sid == sub.instrument_ref,
                                         SandboxPayment.total_amount == amount,
                                         SandboxPayment.created_at >= clock.kst_midnight(period))
        ).scalars().all()
        assert [row.tid for row in at_gateway] == [payment.gateway_tid], "charged once, at the gateway too"
    assert_gateway_agrees(engine)


def test_every_demo_payment_can_be_refunded_and_looked_up(engine: Engine) -> None:
    """Not one seeded payment answers "없는 결제입니다": each refundable one is refunded (what is left
    of it, partially refunded ones included), each one is found by a live lookup."""
    seed.seed_demo(engine, now=SEEDED_AT, customers=20, orders=150, seed=4)  # seed 4: two partial refunds
    owner = _actor(engine, "owner")
    router = get_router(engine=engine)
    with Session(engine) as session:
        payments = [
            (p.id, p.amount - p.refunded_amount, p.gateway_tid, p.status)
            for p in session.execute(select(Payment).order_by(Payment.id)).scalars()
        ]
    refundable = [p for p in payments if p[3] in (PaymentStatus.APPROVED, PaymentStatus.PARTIALLY_REFUNDED)]
    assert any(p[3] == PaymentStatus.PARTIALLY_REFUNDED for p in refundable)
    for _id, _left, tid, _status in payments:
        assert router.lookup("sandbox", [], tid=tid).tid == tid
    with clock.frozen(SEEDED_AT + timedelta(minutes=5)):
        for payment_id, left, _tid, _status in refundable:
            with session_scope(engine) as session:
                refund = refund_payment(session, owner, payment_id=payment_id, amount=left, reason="전액 환불",
                                        idempotency_key=f"all:{payment_id}")
                assert refund.status == RefundStatus.SUCCEEDED, payment_id
    assert_gateway_agrees(engine)
