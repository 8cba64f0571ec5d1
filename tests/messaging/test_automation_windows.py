"""Automations never backfill and never pile up (issue 15).

The rules under test: a review request only for orders delivered (or paid) between `days_after`
(3) and `window_days` (14) days ago, paid and not refunded nor cancelled; history (orders paid
before the automations went live, imported orders) triggers nothing unless the owner lets it in on
설정; at most one review request per customer per `cap_days` (7); several due orders become one
message that names them. And the first worker start over the demo data sends each customer at
most one review request, before and after the owner lets the history in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock
from core.messaging import automations
from core.models import Message, Order, OrderItem, Payment, Refund
from core.reviews import jobs as review_jobs
from tests.messaging.helpers import NOON, customer, go_live

ROOT = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)


@pytest.fixture
def store(engine: Engine) -> Engine:
    go_live(engine, NOON - timedelta(days=400))
    return engine


def _order(
    engine: Engine,
    cid: int,
    number: str,
    paid_at: datetime,
    *,
    status: str = "paid",
    delivered_at: datetime | None = None,
    source: str = "chat",
    refunded_amount: int = 0,
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
            source=source,
            refunded_amount=refunded_amount,
        )
        s.add(order)
        s.flush()
        s.add(OrderItem(order_id=order.id, product_name="샴푸", quantity=1, unit_price=30_000, amount=30_000))
        s.commit()
        return order.id


def _requests(engine: Engine) -> list[Message]:
    with Session(engine) as s:
        return list(s.exec(select(Message).where(Message.template_key == "review_request")))


# (paid days ago, delivered days ago or None, status, refunded amount, asked?)
WINDOW_CASES = [
    (2, None, "paid", 0, False),  # not due yet (3 days after)
    (3, None, "paid", 0, True),  # due today, on the boundary
    (20, 3, "paid", 0, True),  # paid long ago, delivered 3 days ago: counted from delivery
    (14, None, "paid", 0, True),  # the last day of the 14-day window
    (15, None, "paid", 0, False),  # outside the window: never a backfill
    (20, 15, "paid", 0, False),
    (5, 2, "paid", 0, False),  # delivered 2 days ago: not due
    (5, None, "pending", 0, False),  # unpaid
    (5, None, "refunded", 30_000, False),
    (5, None, "partially_refunded", 10_000, False),
    (5, None, "canceled", 0, False),
    (5, None, "failed", 0, False),
]


@pytest.mark.parametrize(("paid", "delivered", "status", "refunded", "asked"), WINDOW_CASES)
def test_review_request_only_inside_its_window_and_only_for_paid_orders(
    store: Engine, paid: int, delivered: int | None, status: str, refunded: int, asked: bool
) -> None:
    cid = customer(store)
    _order(
        store,
        cid,
        "CD-1",
        NOON - paid * DAY,
        status=status,
        delivered_at=None if delivered is None else NOON - delivered * DAY,
        refunded_amount=refunded,
    )
    counts = review_jobs.review_requests(store, NOON)
    assert counts["requested"] == int(asked)
    assert len(_requests(store)) == int(asked)


def test_an_order_with_a_refund_row_is_not_asked(store: Engine) -> None:
    cid = customer(store)
    oid = _order(store, cid, "CD-1", NOON - 5 * DAY)
    with Session(store) as s:
        pay = Payment(order_id=oid, customer_id=cid, gateway="sandbox", amount=30_000, idempotency_key="p")
        s.add(pay)
        s.flush()
        s.add(Refund(payment_id=pay.id, order_id=oid, amount=1_000, reason="변심", idempotency_key="r"))
        s.commit()
    assert review_jobs.review_requests(store, NOON)["requested"] == 0


def test_several_due_orders_become_one_message_naming_them(store: Engine) -> None:
    cid = customer(store)
    for i in range(5):
        _order(store, cid, f"CD-{i}", NOON - (4 + i) * DAY)
    assert review_jobs.review_requests(store, NOON)["requested"] == 1
    (request,) = _requests(store)
    assert len(request.variables["__orders"]) == 5
    assert request.variables["주문번호"] == "CD-4, CD-3, CD-2 외 2건"  # oldest first, every order counted


# (days after the first request the customer's next order becomes due, asked again that day?)
CAP_CASES = [(1, False), (6, False), (7, True), (8, True)]


@pytest.mark.parametrize(("later", "asked_again"), CAP_CASES)
def test_one_review_request_per_customer_per_seven_days(store: Engine, later: int, asked_again: bool) -> None:
    cid = customer(store)
    first = _order(store, cid, "CD-1", NOON - 3 * DAY)
    assert review_jobs.review_requests(store, NOON)["requested"] == 1
    second = _order(store, cid, "CD-2", NOON + (later - 3) * DAY)
    at = NOON + later * DAY
    assert review_jobs.review_requests(store, at)["requested"] == int(asked_again)
    assert review_jobs.review_requests(store, at + timedelta(hours=1))["requested"] == 0  # a retried tick
    requests = sorted(_requests(store), key=lambda m: m.id)
    assert len(requests) == 1 + int(asked_again)
    if asked_again:
        assert requests[1].variables["__orders"] == [second]  # never the first order again
    assert requests[0].variables["__orders"] == [first]


def test_the_cap_is_per_customer(store: Engine) -> None:
    a, b = customer(store, "가", "010-1000-0001"), customer(store, "나", "010-1000-0002")
    _order(store, a, "CD-A", NOON - 3 * DAY)
    _order(store, b, "CD-B", NOON - 3 * DAY)
    assert review_jobs.review_requests(store, NOON)["requested"] == 2


def test_history_never_triggers_until_the_owner_lets_it_in(engine: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    old = customer(engine, "과거", "010-2000-0001")
    imported = customer(engine, "가져옴", "010-2000-0002")
    _order(engine, old, "CD-OLD-1", NOON - 4 * DAY)
    _order(engine, old, "CD-OLD-2", NOON - 5 * DAY)
    # The first tick: everything before it is history.
    assert review_jobs.review_requests(engine, NOON) == {"requested": 0, "reminded": 0}
    assert automations.repurchase_reminders(engine, NOON)["queued"] == 0
    # Live events from then on; an imported order never is one.
    fresh = customer(engine, "신규", "010-2000-0003")
    _order(engine, fresh, "CD-NEW", NOON + DAY)
    _order(engine, imported, "CD-IMP", NOON + DAY, source="import")
    assert review_jobs.review_requests(engine, NOON + 4 * DAY)["requested"] == 1
    assert [r.customer_id for r in _requests(engine)] == [fresh]
    # The owner sees the count and confirms: the history of the window comes in, still one each.
    at = NOON + 5 * DAY
    with Session(engine) as s:
        assert automations.history_preview(s, at) == {"customers": 1, "orders": 2, "window_days": 14}
        with pytest.raises(Exception, match="권한"):
            automations.include_history(s, actors["staff"], at)
    with Session(engine) as s:
        automations.include_history(s, actors["owner"], at)
        s.commit()
    assert review_jobs.review_requests(engine, at)["requested"] == 1
    by_customer = Counter(r.customer_id for r in _requests(engine))
    assert by_customer == {fresh: 1, old: 1}
    with Session(engine) as s:
        assert automations.history_preview(s, at)["customers"] == 0


@pytest.mark.slow
def test_a_first_worker_start_over_the_demo_asks_each_customer_at_most_once(engine: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    """Issue 15's report: 1,786 review requests in 1.5 s, 38 to one customer. Now: none from the
    seeded history, and when the owner lets the last 14 days in, one per customer at most."""
    from core.demo import seed

    seeded_at = clock.parse_instant("2026-11-23T10:00:00+09:00")
    seed.seed_demo(engine, now=seeded_at, customers=150, orders=6000, seed=7)

    def worker(now: datetime) -> dict:
        env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
        env["PAYMENT_GATEWAY"] = "sandbox"
        env.pop("PAYMENT_BACKUP_GATEWAY", None)
        done = subprocess.run(
            [sys.executable, "-m", "core.worker", "--once", "--now", now.isoformat()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    first = seeded_at + timedelta(minutes=1)
    summary = worker(first)
    assert summary["jobs"]["review_requests"]["counts"]["requested"] == 0
    assert not _requests(engine)
    with Session(engine) as s:
        preview = automations.history_preview(s, first)
        automations.include_history(s, actors["owner"], first)
        s.commit()
    assert preview["orders"] > preview["customers"] > 0  # customers with several recent orders
    summary = worker(first + timedelta(minutes=1))
    requests = _requests(engine)
    per_customer = Counter(r.customer_id for r in requests)
    assert len(requests) == preview["customers"] and max(per_customer.values()) == 1
    named = Counter(o for r in requests for o in r.variables["__orders"])
    assert sum(named.values()) == preview["orders"] and max(named.values()) == 1
    worker(first + timedelta(days=1))  # the next day: orders newly due, but nobody asked twice
    after = Counter(r.customer_id for r in _requests(engine))
    assert max(after.values()) == 1 and all(after[c] == 1 for c in per_customer)
