"""The review request and its reminder link to /review?t=… (issue 20): a token per order item, the
message naming the latest order's first item still without a review; a submitted review stops the
reminder for its item, and the reminder comes only while an item of the request still waits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from core.db import read_scope, session_scope
from core.messaging import sender
from core.messaging.automations import ensure_default_templates
from core.messaging.providers import OutboxProvider
from core.models import Message, Order, OrderItem, Review
from core.reviews import jobs as review_jobs
from core.reviews import service
from tests.messaging.helpers import NOON, go_live


def _shop(engine: Engine) -> tuple[int, list[int]]:
    """A customer's order of two items, delivered 3 days before NOON."""
    from core.models import Customer

    with session_scope(engine) as s:
        ensure_default_templates(s)
        kim = Customer(name="김후기", phone="010-7777-0001", mobile="01077770001")
        s.add(kim)
        s.flush()
        paid = NOON - timedelta(days=5)
        order = Order(order_number="CD-TWO", customer_id=kim.id, total_amount=30_000, status="paid", paid_at=paid,
                      ordered_at=paid, delivered_at=NOON - timedelta(days=3))  # fmt: skip
        s.add(order)
        s.flush()
        items = [OrderItem(order_id=order.id, product_name=n, quantity=1, unit_price=15_000, amount=15_000)
                 for n in ("원두 1kg", "드립백")]  # fmt: skip
        s.add_all(items)
        s.flush()
        return order.id, [i.id for i in items]  # type: ignore[return-value,misc]


def _tokens(engine: Engine) -> dict[int, str]:
    with read_scope(engine) as s:
        return {r.order_item_id: r.token for r in s.exec(select(Review)).all()}  # type: ignore[misc]


def _messages(engine: Engine, template: str) -> list[Message]:
    with read_scope(engine) as s:
        return list(s.exec(select(Message).where(Message.template_key == template)).all())


def test_the_request_links_an_item_and_a_review_stops_the_reminder_per_item(engine: Engine) -> None:
    go_live(engine, NOON - timedelta(days=400))
    _order_id, items = _shop(engine)
    assert review_jobs.review_requests(engine, NOON) == {"requested": 1, "reminded": 0}
    sender.run(engine, NOON, provider=OutboxProvider())  # a reminder follows a request that was sent
    tokens = _tokens(engine)
    assert set(tokens) == set(items) and all(tokens.values())
    (request,) = _messages(engine, "review_request")
    assert request.variables["리뷰링크"] == f"http://localhost:8501/review?t={tokens[items[0]]}"
    with session_scope(engine) as s:  # the first item reviewed; the second still waits
        service.submit(s, token=tokens[items[0]], rating=5, text="좋아요", now=NOON + timedelta(days=1))
    assert review_jobs.review_requests(engine, NOON + timedelta(days=4))["reminded"] == 1
    (reminder,) = _messages(engine, "review_reminder")
    assert reminder.variables["리뷰링크"].endswith(f"?t={tokens[items[1]]}")  # the item still to review
    assert _tokens(engine) == tokens  # the reminder reuses the links, makes no new ones


def test_no_reminder_once_every_item_is_reviewed(engine: Engine) -> None:
    go_live(engine, NOON - timedelta(days=400))
    _shop(engine)
    review_jobs.review_requests(engine, NOON)
    sender.run(engine, NOON, provider=OutboxProvider())
    for token in _tokens(engine).values():
        with session_scope(engine) as s:
            service.submit(s, token=token, rating=4, text="", now=NOON + timedelta(days=1))
    assert review_jobs.review_requests(engine, NOON + timedelta(days=4)) == {"requested": 0, "reminded": 0}
    assert _messages(engine, "review_reminder") == []
