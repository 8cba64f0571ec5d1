"""Dunning: paying the failure notice's link settles the charge once; every attempt keeps its own reason."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import billing, clock
from core.accounts.actor import SYSTEM_ACTOR, Actor
from core.billing import charges, recording
from core.errors import Conflict, ValidationFailed
from core.models import (
    ChargeStatus,
    Message,
    Order,
    Payment,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionStatus,
)
from core.payments import link_approval, link_checkout
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.sandbox import SandboxGateway
from core.payments.jobs import reconcile_payments
from tests.billing_support import FakeGateway, get_subscription, kst, make_subscription


def _fail_first_charge(engine: Engine, actor: Actor) -> tuple[int, FakeGateway, PaymentLink]:
    """A subscription due 2027-03-01 whose first charge fails (busy): past_due with a dunning link."""
    sub_id = make_subscription(engine, actor, start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("busy")
    with clock.frozen(kst("2027-03-01T09:00")):
        assert billing.run_charges(engine, clock.now(), gateway=gateway)["failed"] == 1
    with Session(engine) as session:
        link = session.exec(select(PaymentLink)).one()
    return sub_id, gateway, link


def _pay(
    engine: Engine, link: PaymentLink, router: PaymentRouter | None = None, *, pg_token: str = ""
) -> Order:
    """What the customer does on the /pay page: open, start (ready), choose a method, approve."""
    with Session(engine, expire_on_commit=False) as session:
        link_checkout.open_link(session, link.code, router=router)
        start = link_checkout.start_payment(session, link.code, router=router)
        token = link_checkout.select_method(session, link.code, "CARD", router=router, tid=start.tid)
        return link_approval.pay_link(
            session, link.code, pg_token=pg_token or token, attempt=start.attempt, router=router
        )


def _charge(engine: Engine, sub_id: int) -> SubscriptionCharge:
    with Session(engine) as session:
        return session.exec(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sub_id)
        ).one()


def _attempts(engine: Engine, charge_id: int) -> list[tuple[int, str, str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(SubscriptionChargeAttempt)
            .where(SubscriptionChargeAttempt.charge_id == charge_id)
            .order_by(col(SubscriptionChargeAttempt.number))
        ).all()
        return [(a.number, a.via, a.outcome, a.failure_message) for a in rows]


def test_paying_the_dunning_link_settles_the_charge_once(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id, gateway, link = _fail_first_charge(engine, actors["owner"])
    with Session(engine) as session:
        [notice] = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith("billing_failed:"))
        ).all()
    assert link.code in notice.text  # readied at the gateway when the customer starts paying
    with clock.frozen(kst("2027-03-01T20:00")):
        order = _pay(engine, link)

    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED and charge.order_id == order.id
    assert charge.failure_message is None and charge.next_retry_at is None
    sub = get_subscription(engine, sub_id)
    assert sub.status == SubscriptionStatus.ACTIVE and sub.next_charge_date == date(2027, 4, 1)
    with Session(engine) as session:
        payment = session.get(Payment, charge.payment_id)
        assert payment is not None and payment.idempotency_key == f"link:{link.code}"
        assert session.get(Order, order.id).subscription_id == sub_id  # type: ignore[union-attr]
        receipt = session.exec(
            select(Message).where(Message.idempotency_key == f"billing_receipt:{sub_id}:2027-03-01")
        ).one()
    assert "다음 결제일은 4월 1일" in receipt.text
    # The dunning stops: the retry days pass without a charge; the next period is charged as usual.
    for day in ("2027-03-02", "2027-03-04", "2027-03-08"):
        with clock.frozen(kst(f"{day}T09:30")):
            counts = billing.run_charges(engine, clock.now(), gateway=gateway)
        assert counts["succeeded"] == counts["failed"] == counts["dunning_ended"] == 0
    assert gateway.charge_calls == 1  # only the failed first attempt reached the SID
    with clock.frozen(kst("2027-04-01T09:00")):
        assert billing.run_charges(engine, clock.now(), gateway=gateway)["succeeded"] == 1
    assert _attempts(engine, charge.id or 0) == [
        (1, "schedule", "failed", "잠시 후 다시 시도하세요 (busy)"),
        (2, "link", "succeeded", None),
    ]
    with pytest.raises(ValidationFailed):  # paid: the link is closed
        _pay(engine, link)


def test_link_is_refused_while_the_worker_charges_and_after_the_sid_paid(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id, gateway, link = _fail_first_charge(engine, actors["owner"])
    now = kst("2027-03-02T09:00")
    with Session(engine) as session:  # the worker has claimed the +1 day retry and is at the gateway
        config = billing.load_settings(session)
        [claim] = charges._claim(session, now, config, 10)
        session.commit()
    with (
        clock.frozen(now + timedelta(minutes=1)),
        pytest.raises(ValidationFailed, match="자동 결제가 진행 중"),
    ):
        _pay(engine, link)
    charges._attempt(gateway, claim)
    recording._record_all(engine, [claim], now, config, SYSTEM_ACTOR, gateway_name="fake")
    assert _charge(engine, sub_id).status == ChargeStatus.SUCCEEDED
    with Session(engine) as session:
        assert session.get(PaymentLink, link.id).status == PaymentLinkStatus.EXPIRED  # type: ignore[union-attr]
        started = session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).first()
        assert started is None or started.status != PaymentStatus.APPROVED  # readied, never approved
    with clock.frozen(now + timedelta(minutes=2)), pytest.raises(ValidationFailed):
        _pay(engine, link)
    assert len(gateway.charged) == 1


def test_declined_link_payment_keeps_the_dunning_schedule(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id, gateway, link = _fail_first_charge(engine, actors["owner"])
    with clock.frozen(kst("2027-03-01T20:00")), pytest.raises(ValidationFailed, match="승인되지 않았습니다"):
        _pay(engine, link, pg_token="not-the-token")
    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.FAILED and "pg_token" in (charge.failure_message or "")
    assert clock.to_kst(charge.next_retry_at).date() == date(2027, 3, 2)  # type: ignore[arg-type]
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.PAST_DUE
    with clock.frozen(kst("2027-03-02T09:00")):
        assert billing.run_charges(engine, clock.now(), gateway=gateway)["succeeded"] == 1
    assert [a[1:3] for a in _attempts(engine, charge.id or 0)] == [
        ("schedule", "failed"),
        ("link", "failed"),
        ("schedule", "succeeded"),
    ]


def test_unknown_link_outcome_blocks_the_sid_until_reconciled(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id, gateway, link = _fail_first_charge(engine, actors["owner"])
    sandbox = SandboxGateway(engine)
    sandbox.inject("approve", "timeout")  # approved at the gateway, the answer lost
    sandbox.inject("lookup", "busy", times=3)  # and the lookup made at once cannot tell either
    with clock.frozen(kst("2027-03-01T20:00")), pytest.raises(ValidationFailed, match="확인 중"):
        _pay(engine, link, PaymentRouter(sandbox))
    with clock.frozen(kst("2027-03-02T09:30")):  # the claim's lease is long over, a retry day
        counts = billing.run_charges(engine, clock.now(), gateway=gateway)
    assert counts["succeeded"] == counts["failed"] == 0 and gateway.charge_calls == 1
    with clock.frozen(kst("2027-03-02T09:31")):
        assert reconcile_payments(engine, clock.now())["paid"] == 1
    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED
    with Session(engine) as session:
        payment = session.get(Payment, charge.payment_id)
        assert payment is not None and payment.status == PaymentStatus.APPROVED
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 4, 1)
    assert gateway.charge_calls == 1 and not gateway.charged


def test_manual_retry_after_the_dunning_pause_keeps_every_reason(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    with Session(engine) as session:
        billing.update_settings(session, actors["owner"], final_action="pause")
        session.commit()
    gateway = FakeGateway()
    gateway.inject("busy", times=4 * 3)  # the router is not in between: one call per attempt
    for offset in range(10):
        with clock.frozen(kst(f"{date(2027, 3, 1) + timedelta(days=offset)}T09:30")):
            billing.run_charges(engine, clock.now(), gateway=gateway)
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.PAUSED
    gateway.faults.clear()
    gateway.inject("decline")
    charge = _charge(engine, sub_id)
    outcome = billing.retry_charge(
        engine, actors["cs"], charge.id or 0, gateway=gateway, now=kst("2027-03-12T11:00")
    )
    assert outcome == "failed"
    attempts = _attempts(engine, charge.id or 0)
    assert [a[:3] for a in attempts] == [
        (1, "schedule", "failed"),
        (2, "schedule", "failed"),
        (3, "schedule", "failed"),
        (4, "schedule", "failed"),
        (5, "manual", "failed"),
    ]
    assert {a[3] for a in attempts[:4]} == {"잠시 후 다시 시도하세요 (busy)"}
    assert attempts[4][3] == "카드가 거절되었습니다"
    with Session(engine) as session:
        record = billing.history(session, sub_id)
    assert [a.failure_message for a in record["attempts"]] == [a[3] for a in attempts]
    assert [a.actor_id for a in record["attempts"] if a.via == "manual"] == [actors["cs"].id]


def test_link_paid_but_not_recorded_is_found_and_the_sid_is_not_charged(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    sub_id, gateway, link = _fail_first_charge(engine, actors["owner"])

    def killed(*_args: object, **_kwargs: object) -> Order:
        raise RuntimeError("the app process died after the gateway approved")

    monkeypatch.setattr(link_approval, "complete_link_payment", killed)
    with clock.frozen(kst("2027-03-01T20:00")), pytest.raises(RuntimeError):
        _pay(engine, link)
    monkeypatch.undo()
    with clock.frozen(kst("2027-03-02T09:30")):  # the link claim's lease is over: a retry day
        counts = billing.run_charges(engine, clock.now(), gateway=gateway)
    # The link's payment is unresolved (approve sent, nothing recorded): the charge is not even claimed.
    assert counts["succeeded"] == counts["failed"] == counts["unknown"] == 0
    assert gateway.charge_calls == 1  # the SID was not charged a second time
    with clock.frozen(kst("2027-03-02T09:31")):
        assert reconcile_payments(engine, clock.now())["paid"] == 1
    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 4, 1)
    with clock.frozen(kst("2027-03-04T09:30")):
        assert billing.run_charges(engine, clock.now(), gateway=gateway)["succeeded"] == 0
    assert gateway.charge_calls == 1


def test_a_manual_retry_never_takes_a_charge_the_worker_is_making(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id, gateway, _link = _fail_first_charge(engine, actors["owner"])
    now = kst("2027-03-02T09:00")
    with Session(engine) as session:  # the +1 day retry is at the gateway
        config = billing.load_settings(session)
        claims = charges._claim(session, now, config, 10)
        session.commit()
    with pytest.raises(Conflict, match="결제 중"):
        billing.retry_charge(
            engine, actors["cs"], claims[0].charge_id, gateway=gateway, now=now + timedelta(minutes=1)
        )
    with Session(engine) as session:  # not even through the claim itself
        assert (
            charges._claim(session, now + timedelta(minutes=1), config, 1, charge_id=claims[0].charge_id)
            == []
        )
    charges._attempt(gateway, claims[0])
    recording._record_all(engine, claims, now, config, SYSTEM_ACTOR, gateway_name="fake")
    assert _charge(engine, sub_id).status == ChargeStatus.SUCCEEDED and len(gateway.charged) == 1
