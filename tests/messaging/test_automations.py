"""Post-purchase automations: order confirmation, review request/reminder, repurchase reminder."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.messaging import automations, sender
from core.messaging.providers import OutboxProvider
from core.models import (
    Inquiry,
    Message,
    Order,
    OrderItem,
    Payment,
    Product,
    Refund,
    Review,
    Setting,
    Subscription,
    SubscriptionPlan,
    Template,
)
from tests.messaging.helpers import NOON, customer, go_live


@pytest.fixture
def store(engine: Engine) -> Engine:
    with Session(engine) as s:
        assert automations.ensure_default_templates(s) == 18  # incl. referral_thanks (core.rewards)
        assert automations.ensure_default_templates(s) == 0  # never twice, never overwrites
        s.commit()
    go_live(engine, NOON - timedelta(days=400))  # these orders are live events, not history
    return engine


def _order(
    engine: Engine,
    cid: int,
    number: str,
    paid_at: datetime,
    *,
    product_id: int | None = None,
    status: str = "paid",
    delivered_at: datetime | None = None,
    tracking: str | None = None,
) -> int:
    with Session(engine) as s:
        order = Order(
            order_number=number,
            customer_id=cid,
            total_amount=30_000,
            status=status,
            paid_at=paid_at,
            ordered_at=paid_at,
            delivered_at=delivered_at,
            shipping_method="CJ대한통운",
            expected_ship_date=date(2026, 12, 2),
            tracking_url=tracking,
        )
        s.add(order)
        s.flush()
        s.add(
            OrderItem(
                order_id=order.id,
                product_id=product_id,
                product_name="데일리 샴푸",
                quantity=2,
                unit_price=15_000,
                amount=30_000,
            )
        )
        s.commit()
        return order.id


def _product(engine: Engine, days: int | None = 30, category: str = "헤어") -> int:
    with Session(engine) as s:
        p = Product(name="데일리 샴푸", category=category, price=15_000, replenishment_days=days)
        s.add(p)
        s.commit()
        return p.id


def _messages(engine: Engine) -> dict[str, Message]:
    with Session(engine) as s:
        return {m.idempotency_key: m for m in s.exec(select(Message))}


def test_order_confirmation_has_everything_and_is_queued_once(store: Engine) -> None:
    cid = customer(store)
    oid = _order(store, cid, "CD-1", NOON - timedelta(minutes=1), tracking="https://trace.example/1")
    _order(store, cid, "CD-0", NOON - timedelta(minutes=1), status="pending")
    assert automations.order_confirmations(store, NOON) == {"queued": 1}
    assert automations.order_confirmations(store, NOON) == {"queued": 0}
    sender.run(store, NOON, provider=OutboxProvider())
    text = _messages(store)[f"order_confirmation:{oid}"].text
    for expected in (
        "홍길동님, 주문해 주셔서 감사합니다",
        "CD-1",
        "데일리 샴푸 x 2: 30,000원",
        "결제금액: 30,000원",
        "CJ대한통운",
        "2026-12-02",
        "https://trace.example/1",
        "교환·반품",
        "반품주소",
    ):
        assert expected in text, expected


def test_a_first_start_confirms_no_order_of_the_history(engine: Engine) -> None:
    """Issue 15: a first worker start over seeded or imported orders sends no confirmation for them
    (they were paid before the automations went live); an order paid after that is confirmed, and an
    imported one never is."""
    with Session(engine) as s:  # templates there, the automations not live yet: a first start
        automations.ensure_default_templates(s)
        s.commit()
    cid = customer(engine)
    _order(engine, cid, "CD-OLD", NOON - timedelta(hours=2))  # history: paid before the first tick
    assert automations.order_confirmations(engine, NOON) == {"queued": 0}
    new = _order(engine, cid, "CD-NEW", NOON + timedelta(minutes=5))
    imported = _order(engine, cid, "CD-IMP", NOON + timedelta(minutes=6))
    with Session(engine) as s:
        s.get(Order, imported).source = "import"
        s.commit()
    assert automations.order_confirmations(engine, NOON + timedelta(minutes=10)) == {"queued": 1}
    assert set(_messages(engine)) == {f"order_confirmation:{new}"}


def test_order_confirmation_can_be_switched_off(store: Engine, actors) -> None:
    from core import settings_store

    cid = customer(store)
    _order(store, cid, "CD-1", NOON)
    with Session(store) as s:
        settings_store.put(s, actors["owner"], "automations", {"order_confirmation": {"enabled": False}})
        s.commit()
    assert automations.order_confirmations(store, NOON) == {"disabled": 1}


def test_review_request_then_one_reminder_only_to_non_reviewers(store: Engine) -> None:
    cid = customer(store)
    delivered = NOON - timedelta(days=3)
    reviewed = _order(store, cid, "CD-R", NOON - timedelta(days=5), delivered_at=delivered)
    quiet = _order(store, cid, "CD-Q", NOON - timedelta(days=5), delivered_at=delivered)
    early = _order(store, cid, "CD-E", NOON - timedelta(days=2), delivered_at=NOON - timedelta(days=1))
    refunded = _order(store, cid, "CD-F", NOON - timedelta(days=5), delivered_at=delivered)
    with Session(store) as s:
        pay = Payment(
            order_id=refunded, customer_id=cid, gateway="sandbox", amount=30_000, idempotency_key="p"
        )
        s.add(pay)
        s.flush()
        s.add(Refund(payment_id=pay.id, order_id=refunded, amount=30_000, reason="변심", idempotency_key="r"))
        s.commit()
    assert automations.review_requests(store, NOON) == {"requested": 1, "reminded": 0}
    (request,) = [m for k, m in _messages(store).items() if k.startswith("review_request:")]
    assert request.idempotency_key == f"review_request:{cid}:{quiet}"
    assert request.variables["__orders"] == [reviewed, quiet]  # one message names both due orders
    assert early not in request.variables["__orders"] and refunded not in request.variables["__orders"]
    sender.run(store, NOON, provider=OutboxProvider())
    text = _messages(store)[request.idempotency_key].text
    assert "CD-R, CD-Q" in text and "http://localhost:8501/review?order=CD-Q" in text
    with Session(store) as s:
        s.add(Review(order_id=reviewed, customer_id=cid, rating=5, body="좋아요"))
        s.commit()
    later = NOON + timedelta(days=4)
    counts = automations.review_requests(store, later)
    assert counts == {"requested": 0, "reminded": 1}  # CD-E is due, but the customer was asked 4 days ago
    reminder = _messages(store)[f"review_reminder:{request.id}"]
    assert reminder.variables["__orders"] == [quiet]  # the reviewed order is not asked again
    automations.review_requests(store, later + timedelta(days=10))
    assert sum(k.startswith("review_reminder:") for k in _messages(store)) == 1  # one reminder only


def test_repurchase_reminder_at_the_cycle_and_its_skips(store: Engine) -> None:
    pid = _product(store, days=30)
    due = customer(store, "재구매", "010-0000-0001")
    again = customer(store, "재주문", "010-0000-0002")
    subscribed = customer(store, "구독", "010-0000-0003")
    asking = customer(store, "문의", "010-0000-0004")
    for cid in (due, again, subscribed, asking):
        _order(store, cid, f"CD-{cid}", NOON - timedelta(days=30), product_id=pid)
    _order(store, again, "CD-again", NOON - timedelta(days=3), product_id=pid)
    with Session(store) as s:
        plan = SubscriptionPlan(name="샴푸 정기", product_id=pid, amount=15_000)
        s.add(plan)
        s.flush()
        s.add(Subscription(customer_id=subscribed, plan_id=plan.id, amount=15_000, anchor_day=1))
        s.add(Inquiry(customer_id=asking, type="refund", subject="환불 문의"))
        s.commit()
    counts = automations.repurchase_reminders(store, NOON)
    assert counts == {"queued": 1, "skipped": 2}
    key = f"repurchase:{due}:{pid}:2026-12-01"
    message = _messages(store)[key]
    assert message.kind == "advertising" and message.variables["__purchase_category"] == "헤어"
    assert automations.repurchase_reminders(store, NOON + timedelta(hours=1))["queued"] == 0
    # No ad consent, but the purchase 30 days ago is the same kind: the gate lets it through.
    sender.run(store, NOON, provider=OutboxProvider())
    sent = _messages(store)[key]
    assert sent.status == "delivered", sent.reason
    assert sent.text.startswith("(광고) ") and "데일리 샴푸" in sent.text and "무료수신거부" in sent.text


def test_repurchase_after_six_months_without_consent_is_skipped_by_the_gate(store: Engine) -> None:
    pid = _product(store, days=200)
    cid = customer(store)
    _order(store, cid, "CD-old", NOON - timedelta(days=200), product_id=pid)
    assert automations.repurchase_reminders(store, NOON)["queued"] == 1
    sender.run(store, NOON, provider=OutboxProvider())
    (message,) = _messages(store).values()
    assert message.status == "skipped" and "동의 없음" in message.reason


def test_default_templates_pass_the_preflight(store: Engine) -> None:
    from core.messaging import templates

    with Session(store) as s:
        for template in s.exec(select(Template)):
            text = templates.preflight(template, automations.sample_variables(s, template.key, None))
            assert "#{" not in text
        s.add(Setting(key="x", value=1))
        s.commit()


def test_confirmation_is_sent_in_the_same_tick_it_is_queued(store: Engine) -> None:
    """The job queues as of its `now`, so the sender running as of the same now takes it at once
    (the wall clock is always a hair later than the tick's now)."""
    from core import clock

    cid = customer(store)
    oid = _order(store, cid, "CD-T", NOON - timedelta(seconds=1))
    with clock.frozen(NOON + timedelta(seconds=1)):
        automations.order_confirmations(store, NOON)
        sender.run(store, NOON, provider=OutboxProvider())
    assert _messages(store)[f"order_confirmation:{oid}"].status == "delivered"


def test_a_fresh_store_gets_the_default_templates_from_the_sender(sqlite_engine: Engine) -> None:
    """Nobody seeded templates: the first order confirmation still goes out (outbox)."""
    go_live(sqlite_engine, NOON - timedelta(hours=1))
    cid = customer(sqlite_engine)
    oid = _order(sqlite_engine, cid, "CD-F", NOON - timedelta(minutes=1))
    automations.order_confirmations(sqlite_engine, NOON)
    sender.run(sqlite_engine, NOON, provider=OutboxProvider())
    assert _messages(sqlite_engine)[f"order_confirmation:{oid}"].status == "delivered"
    with Session(sqlite_engine) as s:
        assert {"order_confirmation", "review_request", "review_reminder", "receipt", "repurchase"} <= {
            t.key for t in s.exec(select(Template))
        }
