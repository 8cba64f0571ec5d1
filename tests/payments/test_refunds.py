"""Refunds: full, partial, idempotent, never more than refundable (two staff at once), told, audited."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import AuditLog, Customer, CustomerSummary, Message, Order, Payment, Refund, SandboxPayment
from core.payments.gateways.base import ChargeRequest
from core.payments.refunds import refund_payment, settle_pending_refund
from tests.payments.helpers import paid_order, sandbox_router, stored_actors


@pytest.fixture
def actors(engine):
    return stored_actors(engine)  # who asks, without hashing three passwords per test


@pytest.fixture
def sqlite_actors(sqlite_engine):
    return stored_actors(sqlite_engine)


def test_full_and_partial_refunds_update_totals_and_tell_the_customer(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000, tax_free=3_000)
    with Session(engine, expire_on_commit=False) as session:
        first = refund_payment(
            session,
            actors["cs"],
            payment_id=payment.id,
            amount=10_000,
            reason="부분 환불",
            idempotency_key="r1",
            router=router,
        )
        assert first.status == "succeeded"
        assert first.tax_free_amount == 1_000
        assert session.get(Payment, payment.id).status == "partially_refunded"
        assert session.get(Order, payment.order_id).status == "partially_refunded"
        summary = session.get(CustomerSummary, payment.customer_id)  # kept in the refund's transaction
        assert (summary.paid_orders, summary.paid_total) == (1, 20_000)
        second = refund_payment(
            session,
            actors["owner"],
            payment_id=payment.id,
            amount=20_000,
            reason="나머지",
            idempotency_key="r2",
            router=router,
        )
        assert second.tax_free_amount == 2_000
        paid = session.get(Payment, payment.id)
        assert (paid.status, paid.refunded_amount) == ("refunded", 30_000)
        order = session.get(Order, payment.order_id)
        assert (order.status, order.refunded_amount) == ("refunded", 30_000)
        session.expire_all()
        assert session.get(CustomerSummary, payment.customer_id) is None  # no paid order left
        keys = set(session.exec(select(Message.idempotency_key)).all())
        assert {f"refund:{first.id}", f"refund:{second.id}"} <= keys
        actions = set(session.exec(select(AuditLog.action)).all())
        assert {"refund.request", "refund.succeeded"} <= actions
        gateway_row = session.get(SandboxPayment, payment.gateway_tid)
        assert (gateway_row.status, gateway_row.canceled_amount) == ("CANCEL_PAYMENT", 30_000)
        with pytest.raises((Conflict, ValidationFailed)):
            refund_payment(
                session,
                actors["cs"],
                payment_id=payment.id,
                amount=1,
                reason="x",
                idempotency_key="r3",
                router=router,
            )


def test_same_key_refunds_once(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        a = refund_payment(
            session,
            actors["cs"],
            payment_id=payment.id,
            amount=5_000,
            reason="중복 클릭",
            idempotency_key="same",
            router=router,
        )
        b = refund_payment(
            session,
            actors["cs"],
            payment_id=payment.id,
            amount=5_000,
            reason="중복 클릭",
            idempotency_key="same",
            router=router,
        )
        assert a.id == b.id
        assert sandbox.calls.count("cancel") == 1
        assert session.get(Payment, payment.id).refunded_amount == 5_000
        with pytest.raises(ValidationFailed):
            refund_payment(
                session,
                actors["cs"],
                payment_id=payment.id,
                amount=6_000,
                reason="x",
                idempotency_key="same",
                router=router,
            )


@pytest.mark.parametrize("amount", [0, -1, 1.5, "1000", True, 10**12])
def test_bad_amounts_are_refused(sqlite_engine, sqlite_actors, amount):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox)
    with Session(sqlite_engine) as session, pytest.raises(ValidationFailed):
        refund_payment(
            session,
            sqlite_actors["cs"],
            payment_id=payment.id,
            amount=amount,
            reason="x",
            idempotency_key="k",
            router=router,
        )


def test_staff_role_may_not_refund(sqlite_engine, sqlite_actors):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox)
    with Session(sqlite_engine) as session, pytest.raises(PermissionDenied):
        refund_payment(
            session,
            sqlite_actors["staff"],
            payment_id=payment.id,
            amount=1_000,
            reason="x",
            idempotency_key="k",
            router=router,
        )


def test_declined_cancel_releases_the_reservation(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox)
    sandbox.inject("cancel", "decline")
    with Session(engine, expire_on_commit=False) as session:
        with pytest.raises(ValidationFailed, match="거절"):
            refund_payment(
                session,
                actors["cs"],
                payment_id=payment.id,
                amount=1_000,
                reason="x",
                idempotency_key="k",
                router=router,
            )
        assert session.get(Payment, payment.id).refunded_amount == 0
        assert session.exec(select(Refund)).one().status == "failed"


def test_lost_answer_leaves_refund_unknown_then_settles_once(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox)
    sandbox.inject("cancel", "timeout")  # the cancel happens, the answer is lost
    sandbox.inject("lookup", "busy", times=3)  # and the lookup cannot tell yet
    with Session(engine, expire_on_commit=False) as session:
        refund = refund_payment(
            session,
            actors["cs"],
            payment_id=payment.id,
            amount=4_000,
            reason="x",
            idempotency_key="k",
            router=router,
        )
        assert refund.status == "unknown" and "확인" in refund.unknown_reason  # the reason, for staff
        settled = settle_pending_refund(session, refund.id, router=router)
        assert settled.status == "succeeded"
        assert sandbox.calls.count("cancel") == 1  # confirmed by lookup, never sent twice
        assert session.get(SandboxPayment, payment.gateway_tid).canceled_amount == 4_000
        assert session.get(Payment, payment.id).refunded_amount == 4_000


def test_two_staff_at_once_never_refund_more_than_paid(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=10_000)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def refund(who: str) -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            try:
                refund_payment(
                    session,
                    actors[who],
                    payment_id=payment.id,
                    amount=7_000,
                    reason="동시",
                    idempotency_key=f"k-{who}",
                    router=router,
                )
                outcomes.append("ok")
            except (Conflict, ValidationFailed):
                outcomes.append("refused")

    threads = [threading.Thread(target=refund, args=(who,)) for who in ("cs", "owner")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    with Session(engine) as session:
        assert session.get(Payment, payment.id).refunded_amount == 7_000
        assert session.get(SandboxPayment, payment.gateway_tid).canceled_amount == 7_000


def test_same_key_clicked_twice_at_once_refunds_once(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=10_000)
    barrier = threading.Barrier(2)
    ids: list[int] = []

    def click() -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            ids.append(
                refund_payment(
                    session,
                    actors["cs"],
                    payment_id=payment.id,
                    amount=3_000,
                    reason="더블클릭",
                    idempotency_key="same-click",
                    router=router,
                ).id
            )

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 2 and ids[0] == ids[1]
    with Session(engine) as session:
        assert session.get(Payment, payment.id).refunded_amount == 3_000
        assert session.get(SandboxPayment, payment.gateway_tid).canceled_amount == 3_000


def test_refund_message_renders_from_its_template(sqlite_engine, sqlite_actors):
    from core.messaging import templates
    from core.models import Template

    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=8_000, number="M-1")
    with Session(sqlite_engine, expire_on_commit=False) as session:
        refund = refund_payment(
            session,
            sqlite_actors["cs"],
            payment_id=payment.id,
            amount=8_000,
            reason="취소",
            idempotency_key="m1",
            router=router,
        )
        message = session.exec(select(Message).where(Message.idempotency_key == f"refund:{refund.id}")).one()
        template = session.exec(select(Template).where(Template.key == message.template_key)).one()
        text = templates.preflight(template, message.variables)
        assert "김민지님, 주문 M-1의 8,000원 환불이 완료되었습니다" in text


@pytest.mark.parametrize(
    ("stored_cid", "refunded"), [("TCSUBSCRIP", True), (None, False), ("TC0ONETIME", False)]
)
def test_a_refund_is_sent_with_the_cid_the_payment_was_made_with(
    sqlite_engine, sqlite_actors, stored_cid, refunded
):
    """Issue 13 item 7: a charge made under the subscription CID is not found under the one-time CID
    (the sandbox answers -701 like KakaoPay); the payment's stored CID is what the cancel sends."""
    from core.models import SandboxInstrument

    sandbox, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        customer = Customer(name="정기", phone="01055556666")
        session.add(customer)
        session.add(SandboxInstrument(sid="S" * 20, partner_user_id="u"))
        session.commit()
        charged = sandbox.charge(ChargeRequest(
            instrument_ref="S" * 20,
            partner_order_id="SUB-1",
            partner_user_id="u",
            item_name="월회비",
            total_amount=29_000,
            tax_free_amount=0,
            idempotency_key="charge:1",
        ))
        payment = Payment(
            customer_id=customer.id,
            gateway="sandbox",
            gateway_tid=charged.tid,
            gateway_cid=stored_cid,  # None: an older row, inferred as a one-time payment (no order)
            amount=29_000,
            status="approved",
            idempotency_key="charge:1",
        )
        session.add(payment)
        session.commit()
        if refunded:
            refund = refund_payment(
                session,
                sqlite_actors["cs"],
                payment_id=payment.id,
                amount=29_000,
                reason="해지",
                idempotency_key="r",
                router=router,
            )
            assert refund.status == "succeeded"
        else:
            with pytest.raises(ValidationFailed, match="없는 결제"):
                refund_payment(
                    session,
                    sqlite_actors["cs"],
                    payment_id=payment.id,
                    amount=29_000,
                    reason="해지",
                    idempotency_key="r",
                    router=router,
                )
