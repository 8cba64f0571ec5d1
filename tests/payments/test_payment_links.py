"""Payment links: create, chat text, the funnel, paying once, wrong pg_token, expiry and reminders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core import clock
from core.errors import ValidationFailed
from core.models import Customer, Message, Order, Payment, PaymentLink, Product
from core.payments.jobs import payment_link_expiry, payment_link_reminders, reconcile_payments
from core.payments.link_approval import pay_link
from core.payments.link_checkout import open_link, quit_link, select_method, start_payment
from core.payments.links import chat_text, create_payment_link, funnel
from tests.payments.helpers import sandbox_router


def _customer(engine, name="박서준", phone="01099998888") -> int:
    with Session(engine) as session:
        customer = Customer(name=name, phone=phone)
        session.add(customer)
        session.commit()
        return customer.id


def _sandbox_pay(session, code, router, method="CARD", **contact):
    """What the sandbox page does: start (ready), choose a method (pg_token); returns (token, attempt)."""
    start = start_payment(session, code, router=router, **contact)
    return select_method(session, code, method, router=router, tid=start.tid), start.attempt


def test_custom_quote_link_is_paid_once_and_creates_the_order(engine, actors):
    sandbox, router = sandbox_router(engine)
    customer_id = _customer(engine)
    with Session(engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session,
            actors["cs"],
            item_name="맞춤 견적 세트",
            amount=45_000,
            memo="이번 주 발송",
            customer_id=customer_id,
            router=router,
        )
        text = chat_text(link)
        assert "45,000원" in text and "맞춤 견적 세트" in text and f"/pay?link={link.code}" in text
        assert sandbox.calls == []  # no gateway call until the customer starts paying
        assert open_link(session, link.code, router=router).status == "opened"
        token, attempt = _sandbox_pay(session, link.code, router, "MONEY")
        order = pay_link(session, link.code, pg_token=token, attempt=attempt, router=router)
        again = pay_link(session, link.code, pg_token=token, attempt=attempt, router=router)
        assert again.id == order.id
        assert sandbox.calls.count("approve") == 1
        assert (order.total_amount, order.status, order.source) == (45_000, "paid", "link")
        payment = session.exec(select(Payment).where(Payment.order_id == order.id)).one()
        assert (payment.status, payment.method, payment.amount) == ("approved", "MONEY", 45_000)
        assert session.exec(
            select(Message).where(Message.idempotency_key == f"order_confirmation:{order.id}")
        ).one()
        counts = funnel(session)
        assert counts["paid"] == 1


def test_product_link_for_a_guest_asks_name_and_phone(engine, actors):
    sandbox, router = sandbox_router(engine)
    with Session(engine, expire_on_commit=False) as session:
        product = Product(name="수분크림", price=32_000)
        session.add(product)
        session.commit()
        link = create_payment_link(session, actors["staff"], product_id=product.id, router=router)
        assert (link.item_name, link.amount) == ("수분크림", 32_000)
        with pytest.raises(ValidationFailed, match="휴대폰"):
            start_payment(session, link.code, router=router)
        token, attempt = _sandbox_pay(
            session, link.code, router, customer_name="이하은", customer_phone="010-2222-3333"
        )
        order = pay_link(session, link.code, pg_token=token, attempt=attempt, router=router)
        customer = session.get(Customer, order.customer_id)
        assert (customer.phone, customer.mobile) == ("010-2222-3333", "01022223333")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_name": "x", "amount": 0}, "0보다"),
        ({"item_name": "x", "amount": -5}, "0보다"),
        ({"item_name": "x", "amount": 10.5}, "정수"),
        ({"item_name": "x", "amount": 10**10}, "너무"),
        ({"item_name": "x", "amount": 1000, "tax_free_amount": 2000}, "면세"),
        ({"item_name": "", "amount": 1000}, "상품명"),
    ],
)
def test_bad_link_input_is_refused(sqlite_engine, sqlite_actors, kwargs, message):
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine) as session, pytest.raises(ValidationFailed, match=message):
        create_payment_link(session, sqlite_actors["cs"], router=router, **kwargs)
    with Session(sqlite_engine) as session:
        assert session.exec(select(PaymentLink)).first() is None


def test_a_pg_token_for_another_order_is_refused(engine, actors):
    sandbox, router = sandbox_router(engine)
    customer_id = _customer(engine)
    with Session(engine, expire_on_commit=False) as session:
        first = create_payment_link(
            session, actors["cs"], item_name="A", amount=1_000, customer_id=customer_id, router=router
        )
        second = create_payment_link(
            session, actors["cs"], item_name="B", amount=2_000, customer_id=customer_id, router=router
        )
        token_for_first, _ = _sandbox_pay(session, first.code, router)
        token_for_second, attempt = _sandbox_pay(session, second.code, router)
        with pytest.raises(ValidationFailed, match="pg_token"):
            pay_link(session, second.code, pg_token=token_for_first, attempt=attempt, router=router)
        assert session.exec(select(Order)).first() is None
        assert session.get(PaymentLink, second.id).status == "failed"
        # a refused approve leaves the payment payable: the right token still pays, once
        order = pay_link(session, second.code, pg_token=token_for_second, attempt=attempt, router=router)
        assert order.total_amount == 2_000
        with pytest.raises(ValidationFailed, match="attempt"):
            pay_link(session, first.code, pg_token=token_for_first, attempt="someone-else", router=router)


def test_quit_then_reminder_once_then_expiry(engine, actors):
    _, router = sandbox_router(engine)
    customer_id = _customer(engine)
    start = clock.now()
    with Session(engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, actors["cs"], item_name="A", amount=1_000, customer_id=customer_id, router=router
        )
        open_link(session, link.code, router=router)
        assert quit_link(session, link.code, router=router).status == "quit"
    assert payment_link_reminders(engine, start + timedelta(hours=1)) == {"reminded": 0}
    assert payment_link_reminders(engine, start + timedelta(hours=25)) == {"reminded": 1}
    assert payment_link_reminders(engine, start + timedelta(hours=26)) == {"reminded": 0}
    assert payment_link_expiry(engine, start + timedelta(hours=73)) == {"expired": 1}
    with Session(engine) as session:
        assert session.get(PaymentLink, link.id).status == "expired"
        keys = session.exec(select(Message.idempotency_key)).all()
        assert keys == [f"payment_link_reminder:{link.id}"]
    with (
        Session(engine) as session,
        clock.frozen(start + timedelta(hours=80)),
        pytest.raises(ValidationFailed),
    ):
        select_method(session, link.code, "CARD", router=router)


def test_lost_approval_is_reconciled_by_lookup(engine, actors, monkeypatch):
    sandbox, router = sandbox_router(engine)
    customer_id = _customer(engine)
    with Session(engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, actors["cs"], item_name="A", amount=7_000, customer_id=customer_id, router=router
        )
        token, attempt = _sandbox_pay(session, link.code, router)
        sandbox.inject("approve", "timeout")
        sandbox.inject("lookup", "busy", times=3)  # and the lookup made at once cannot tell either
        with pytest.raises(ValidationFailed, match="확인 중"):
            pay_link(session, link.code, pg_token=token, attempt=attempt, router=router)
        with pytest.raises(ValidationFailed, match="확인 중"):  # a reload does not approve again
            pay_link(session, link.code, pg_token=token, attempt=attempt, router=router)
        assert session.exec(select(Payment)).one().status == "unknown"
    monkeypatch.setattr("core.payments.jobs._router", lambda engine: router)
    assert reconcile_payments(engine, clock.now())["paid"] == 1
    with Session(engine) as session:
        payment = session.exec(select(Payment)).one()
        assert payment.status == "approved" and payment.order_id is not None
        assert any(entry["decision"] == "unknown" for entry in payment.routing_log)
    assert sandbox.calls.count("approve") == 1


def test_reminder_renders_from_its_template(sqlite_engine, sqlite_actors):
    from core.messaging import templates
    from core.models import Template

    _, router = sandbox_router(sqlite_engine)
    customer_id = _customer(sqlite_engine)
    start = clock.now()
    with Session(sqlite_engine, expire_on_commit=False) as session:
        create_payment_link(
            session,
            sqlite_actors["cs"],
            item_name="세럼",
            amount=21_000,
            customer_id=customer_id,
            router=router,
        )
    payment_link_reminders(sqlite_engine, start + timedelta(hours=25))
    with Session(sqlite_engine) as session:
        message = session.exec(select(Message)).one()
        template = session.exec(select(Template).where(Template.key == "payment_link_reminder")).one()
        text = templates.preflight(template, message.variables)
        assert "박서준님, 보내드린 세럼 21,000원 결제 링크" in text and "/pay?link=" in text
