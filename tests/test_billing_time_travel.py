"""Time travel: a whole year of a subscription through the worker's jobs, and two workers at once."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from core import billing, clock
from core.accounts.actor import Actor
from core.billing.dates import Interval, schedule
from core.models import (
    Customer,
    Message,
    Order,
    Payment,
    Role,
    Subscription,
    SubscriptionCharge,
    SubscriptionPlan,
)
from core.models.sandbox import SandboxInstrument, SandboxPayment
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.sandbox import SandboxGateway
from core.worker import run_once
from tests.billing_support import FakeGateway, get_subscription, kst, make_subscription

OWNER = Actor(None, "사장님", Role.OWNER)


def _tick(engine: Engine, now: datetime, gateway: object) -> None:
    """What `python -m core.worker --once --now` does for billing, with our gateway."""
    with clock.frozen(now):
        billing.run_notices(engine, now)
        billing.run_charges(engine, now, gateway=gateway)  # type: ignore[arg-type]


def test_a_year_anchored_on_the_31st_every_notice_and_charge_exactly_once(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    sub_id = make_subscription(engine, OWNER, start=date(2027, 1, 31))
    gateway = FakeGateway()
    expected = schedule(date(2027, 1, 31), 31, Interval("month", 1), 12)
    day = date(2027, 1, 29)
    while day <= date(2028, 1, 2):
        if day == date(2027, 5, 31):
            gateway.inject("timeout")  # charged at the gateway, answer lost: found by lookup next tick
        near_charge = any(abs((day - d).days) <= 1 for d in expected)
        # Every day a tick; around charge days also before the charge hour, a retried tick and late evening.
        for hour in ("08:00", "10:00", "10:00", "23:59") if near_charge else ("10:00",):
            _tick(engine, kst(f"{day}T{hour}"), gateway)
        day += timedelta(days=1)
    with Session(engine) as session:
        notices = session.exec(
            select(Message)
            .where(col(Message.idempotency_key).startswith("billing_notice:"))
            .order_by(col(Message.id))
        ).all()
        charges = session.exec(select(SubscriptionCharge).order_by(col(SubscriptionCharge.period))).all()
        payments = session.exec(select(Payment)).all()
        receipts = session.exec(
            select(func.count()).where(col(Message.idempotency_key).startswith("billing_receipt:"))
        ).one()
    assert [n.idempotency_key for n in notices] == [f"billing_notice:{sub_id}:{d}:39000" for d in expected]
    assert [n.send_after.astimezone(clock.KST).date() for n in notices] == [
        d - timedelta(days=1) for d in expected
    ]
    assert all(
        n.text.startswith("내일(") and "월회비 39,000원이 결제될 예정입니다." in n.text for n in notices
    )
    assert [c.period for c in charges] == expected
    assert all(c.status == "succeeded" for c in charges)
    assert len(payments) == 12 and receipts == 12
    assert gateway.charge_calls == 12 and not gateway.double_charged()
    assert [c.attempt_count for c in charges].count(2) == 1  # the timed-out one, settled by lookup
    assert get_subscription(engine, sub_id).next_charge_date == date(2028, 1, 31)


def test_worker_once_runs_billing_with_the_sandbox_router(sqlite_engine: Engine) -> None:
    """The real path: `run_once` (what --once --now does) and the sandbox gateway from the registry."""
    engine = sqlite_engine
    with Session(engine) as session:
        session.add(SandboxInstrument(sid="S0000000000000000001", partner_user_id="u1", status="ACTIVE"))
        session.commit()
    sub_id = make_subscription(
        engine, OWNER, start=date(2027, 2, 28), anchor_day=31, instrument_ref="S0000000000000000001"
    )
    with Session(engine) as session:
        sub = get_subscription(engine, sub_id)
        sub.instrument_gateway = "sandbox"
        session.add(sub)
        session.commit()
    summary = run_once(engine, kst("2027-02-27T10:00"))
    assert summary["jobs"]["billing_notices"]["counts"]["notices_queued"] == 1
    summary = run_once(engine, kst("2027-02-28T09:00"))
    assert summary["jobs"]["billing_charges"]["counts"]["succeeded"] == 1
    run_once(engine, kst("2027-02-28T09:01"))
    with Session(engine) as session:
        assert len(session.exec(select(SandboxPayment)).all()) == 1
        payment = session.exec(select(Payment)).one()
        assert payment.gateway == "sandbox" and payment.routing_log
        assert session.exec(select(Order)).one().source == "subscription"
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 3, 31)


def _many_subscriptions(engine: Engine, actor: Actor, count: int, day: date) -> None:
    with Session(engine) as session:
        plan = billing.create_plan(session, actor, name="월회비", amount=39000)
        customers = [Customer(name=f"고객{i}") for i in range(count)]
        session.add_all(customers)
        session.flush()
        for customer in customers:
            billing.create_subscription(
                session,
                actor,
                customer_id=customer.id or 0,
                plan_id=plan.id or 0,
                start=day,
                instrument_gateway="fake",
                instrument_ref="SID",
            )
        session.commit()


@pytest.mark.postgres
def test_two_workers_on_postgres_never_charge_twice(pg_engine: Engine) -> None:
    _many_subscriptions(pg_engine, OWNER, 120, date(2027, 3, 1))
    gateway = FakeGateway(delay=0.001)
    now = kst("2027-03-01T09:00")
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(2):  # each worker also retries its tick
                billing.run_charges(pg_engine, now, gateway=gateway, batch_size=10)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with Session(pg_engine) as session:
        charges = session.exec(select(SubscriptionCharge)).all()
        payments = session.exec(select(func.count()).select_from(Payment)).one()
        plans = session.exec(select(func.count()).select_from(SubscriptionPlan)).one()
    assert plans == 1
    assert len(charges) == 120 and all(c.status == "succeeded" for c in charges)
    assert payments == 120
    assert gateway.charge_calls == 120 and not gateway.double_charged()
    workers_seen = {c.attempt_count for c in charges}
    assert workers_seen == {1}


def test_router_timeout_after_effect_is_recorded_once_with_the_sandbox(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    with Session(engine) as session:
        session.add(SandboxInstrument(sid="S0000000000000000002", partner_user_id="u2", status="ACTIVE"))
        session.commit()
    make_subscription(engine, OWNER, start=date(2027, 3, 1), instrument_ref="S0000000000000000002")
    with Session(engine) as session:
        for sub in session.exec(select(Subscription)).all():
            sub.instrument_gateway = "sandbox"
            session.add(sub)
        session.commit()
    sandbox = SandboxGateway(engine)
    sandbox.inject("charge", "timeout")
    sandbox.inject("find_by_order", "busy", times=3)  # the router's own lookup fails: still unknown
    router = PaymentRouter(sandbox, sleep=lambda _s: None)
    counts = billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=router)
    assert counts["unknown"] == 1
    counts = billing.run_charges(engine, kst("2027-03-01T09:10"), gateway=router)
    assert counts["recovered_by_lookup"] == 1
    with Session(engine) as session:
        assert len(session.exec(select(SandboxPayment)).all()) == 1
        assert len(session.exec(select(Payment)).all()) == 1
