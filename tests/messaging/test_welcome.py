"""The welcome message (seed 000: tell the refund policy up front): once per customer ever, on a new
customer's first inquiry or first payment, informational, never for imported history, never at
night, sent by the normal sender on the worker's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock
from core.clock import KST
from core.inquiries import inbound
from core.messaging import automations, sender, welcome
from core.messaging.providers import OutboxProvider
from core.models import Message, Order, OrderItem
from core.payments import checkout
from core.worker import run_once
from tests.messaging.helpers import NOON, customer, go_live


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-12-01 20:59", "2026-12-01 20:59"),  # still day: at once
        ("2026-12-01 21:00", "2026-12-02 08:00"),  # night from 21:00: the next 08:00
        ("2026-12-01 23:30", "2026-12-02 08:00"),
        ("2026-12-02 07:59", "2026-12-02 08:00"),
        ("2026-12-02 08:00", "2026-12-02 08:00"),  # 08:00 is day
    ],
)
def test_a_welcome_triggered_at_night_waits_until_eight(at: str, expected: str) -> None:
    assert welcome.send_at(kst(at)) == kst(expected)


@pytest.mark.parametrize(
    ("inquiries", "paid", "first"),
    [(1, 0, True), (0, 1, True), (2, 0, False), (1, 1, False), (0, 2, False), (0, 0, True)],
)
def test_only_the_first_contact_is_welcomed(inquiries: int, paid: int, first: bool) -> None:
    assert welcome.is_first_contact(inquiries, paid) is first


@pytest.fixture
def store(engine: Engine) -> Engine:
    with Session(engine) as s:
        automations.ensure_default_templates(s)
        s.commit()
    go_live(engine, NOON - timedelta(days=30))
    return engine


def _welcomes(engine: Engine) -> list[Message]:
    with Session(engine) as s:
        return list(s.exec(select(Message).where(Message.template_key == welcome.TEMPLATE_KEY)))


def _help(engine: Engine, phone: str, text: str, now: datetime) -> None:
    """A /help post at `now` (the clock frozen there, as the server's clock would stand)."""
    with clock.frozen(now), Session(engine) as s:
        inbound.receive_help(s, phone_raw=phone, order_number=None, inquiry_type="other", text=text, now=now)
        s.commit()


def _paid_order(engine: Engine, cid: int, number: str, paid_at: datetime, source: str = "link") -> int:
    with Session(engine) as s:
        order = Order(
            order_number=number,
            customer_id=cid,
            total_amount=30_000,
            status="paid",
            paid_at=paid_at,
            ordered_at=paid_at,
            source=source,
        )
        s.add(order)
        s.flush()
        s.add(OrderItem(order_id=order.id, product_name="원두", quantity=1, unit_price=30_000, amount=30_000))
        s.commit()
        return order.id  # type: ignore[return-value]


def test_a_new_customer_writing_gets_one_welcome_with_the_owners_policy_sent_on_the_workers_clock(
    store: Engine, actors
) -> None:  # type: ignore[no-untyped-def]
    with Session(store) as s:
        checkout.set_refund_policy(s, actors["owner"], "받은 날부터 7일 안에 채널 채팅으로 말씀해 주세요.")
        s.commit()
    _help(store, "010-5555-0001", "배송은 언제 오나요?", NOON)
    _help(
        store, "010-5555-0001", "그리고 포장도 되나요?", NOON + timedelta(minutes=10)
    )  # appended, same customer
    [message] = _welcomes(store)
    assert message.kind == "informational" and message.idempotency_key == f"welcome:{message.customer_id}"
    assert message.variables["환불정책"] == "받은 날부터 7일 안에 채널 채팅으로 말씀해 주세요."
    run_once(store, NOON + timedelta(minutes=11))
    [sent] = _welcomes(store)
    assert sent.status in ("sent", "delivered") and "받은 날부터 7일 안에" in sent.text
    # A later inquiry after the first is resolved: still once ever.
    with Session(store) as s:
        welcome.offer(s, message.customer_id, NOON + timedelta(days=3))  # type: ignore[arg-type]
        s.commit()
    assert len(_welcomes(store)) == 1


def test_at_night_the_welcome_waits_for_eight_oclock(store: Engine) -> None:
    late = kst("2026-12-01 23:10")
    _help(store, "010-5555-0002", "결제 취소되나요?", late)
    run_once(store, late + timedelta(minutes=1))
    [waiting] = _welcomes(store)
    assert waiting.status == "queued" and waiting.send_after == kst("2026-12-02 08:00")
    run_once(store, kst("2026-12-02 08:00"))
    assert _welcomes(store)[0].status in ("sent", "delivered")


def test_a_customer_with_history_or_an_import_is_not_welcomed(store: Engine) -> None:
    regular = customer(store, "단골", "010-5555-0003")
    _paid_order(store, regular, "OLD-1", NOON - timedelta(days=200))  # bought before: not new
    imported = customer(store, "가져온 고객", "010-5555-0004")
    _paid_order(store, imported, "IMP-1", NOON - timedelta(hours=1), source="import")
    _help(store, "010-5555-0003", "재입고 언제?", NOON)
    _help(store, "010-5555-0004", "영수증 주세요", NOON)
    automations.order_confirmations(store, NOON)  # the imported order is never confirmed, nor welcomed
    assert _welcomes(store) == []


def test_a_first_payment_welcomes_once_and_the_next_does_not(store: Engine) -> None:
    cid = customer(store, "첫 구매", "010-5555-0005")
    _paid_order(store, cid, "NEW-1", NOON - timedelta(minutes=2))
    automations.order_confirmations(store, NOON)
    _paid_order(store, cid, "NEW-2", NOON + timedelta(minutes=1))
    automations.order_confirmations(store, NOON + timedelta(minutes=2))
    [message] = _welcomes(store)
    assert message.customer_id == cid
    sender.run(store, NOON + timedelta(minutes=2), provider=OutboxProvider())
    assert _welcomes(store)[0].status == "delivered"


def test_switched_off_nobody_is_welcomed(store: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    with Session(store) as s:
        welcome.set_enabled(s, actors["owner"], False)
        s.commit()
    _help(store, "010-5555-0006", "문의합니다", NOON)
    assert _welcomes(store) == []
