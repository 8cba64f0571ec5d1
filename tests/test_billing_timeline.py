"""An approved charge forgets the failures before it (the attempts keep them), and the order timeline
shows every try at the subscription charge with its outcome (issue 13 item 9)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import billing, clock
from core.accounts.actor import Actor
from core.errors import ValidationFailed
from core.models import ChargeStatus, Payment, Role, SubscriptionCharge
from core.payments.queries import order_detail
from tests.billing_support import FakeGateway, kst, make_subscription
from tests.test_billing_dunning import _fail_first_charge, _pay

OWNER = Actor(None, "사장님", Role.OWNER)


def _charge(engine: Engine, sub_id: int) -> SubscriptionCharge:
    with Session(engine) as session:
        return session.exec(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sub_id)
        ).one()


def _timeline(engine: Engine, order_id: int) -> list[str]:
    with Session(engine) as session:
        return [e["event"] for e in order_detail(session, order_id)["timeline"] if e["event"].startswith("정기결제 ")]


def test_a_retry_that_is_approved_clears_the_failure_and_the_order_shows_both_tries(
    sqlite_engine: Engine,
) -> None:
    engine = sqlite_engine
    with clock.frozen(kst("2027-02-20T12:00")):
        sub_id = make_subscription(engine, OWNER, start=kst("2027-03-01T00:00").date())
    gateway = FakeGateway()
    gateway.inject("decline")
    for at in ("2027-03-01T09:00", "2027-03-02T09:00"):
        with clock.frozen(kst(at)):
            billing.run_charges(engine, clock.now(), gateway=gateway)
    failed = _charge(engine, sub_id)
    assert failed.status == ChargeStatus.FAILED and failed.failure_code == "DECLINED"
    outcome = billing.retry_charge(
        engine, OWNER, failed.id or 0, gateway=gateway, now=kst("2027-03-02T11:00")
    )
    assert outcome == "succeeded"
    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED
    assert (charge.failure_code, charge.failure_message, charge.hard_decline) == (None, None, True)
    assert _timeline(engine, charge.order_id or 0) == [
        "정기결제 1회차 시도 (자동): 실패 · 카드가 거절되었습니다",
        "정기결제 2회차 시도 (수동 재시도): 성공",
    ]


def test_a_dunning_link_paid_after_a_refusal_keeps_no_failure_on_its_payment(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    with clock.frozen(kst("2027-02-20T12:00")):
        sub_id, _gateway, link = _fail_first_charge(engine, OWNER)
    with clock.frozen(kst("2027-03-01T20:00")), pytest.raises(ValidationFailed, match="승인되지 않았습니다"):
        _pay(engine, link, pg_token="not-the-token")
    with Session(engine) as session:
        refused = session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).one()
        assert refused.failure_code is not None  # the refusal is on the payment until it is approved
    with clock.frozen(kst("2027-03-01T20:05")):
        order = _pay(engine, link)
    charge = _charge(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED and charge.failure_message is None
    with Session(engine) as session:
        payment = session.get(Payment, charge.payment_id)
        assert payment is not None and payment.status == "approved"
        assert payment.failure_code is None and payment.failure_message is None
    events = _timeline(engine, order.id or 0)
    assert [e.split(": ")[1].split(" · ")[0] for e in events] == ["실패", "실패", "성공"]
    assert [e.split("(")[1].split(")")[0] for e in events] == ["자동", "결제 링크", "결제 링크"]
