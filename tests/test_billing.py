"""Billing services and worker jobs: notices, charges exactly once, dunning, pause and cancel."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import billing, clock
from core.accounts.actor import Actor
from core.billing import jobs as billing_jobs
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.messaging.default_templates import default_body
from core.messaging.templates import render
from core.models import (
    AuditLog,
    ChargeStatus,
    Message,
    Order,
    Payment,
    PaymentLink,
    Subscription,
    SubscriptionCharge,
    SubscriptionEvent,
    SubscriptionStatus,
)
from tests.billing_support import FakeGateway, get_subscription, kst, make_subscription


def _messages(engine: Engine, prefix: str) -> list[Message]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Message)
                .where(col(Message.idempotency_key).startswith(prefix))
                .order_by(col(Message.id))
            ).all()
        )


def _charges(engine: Engine, subscription_id: int) -> list[SubscriptionCharge]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(SubscriptionCharge)
                .where(SubscriptionCharge.subscription_id == subscription_id)
                .order_by(col(SubscriptionCharge.period))
            ).all()
        )


BILLING_TEMPLATES = {
    "billing_notice", "billing_receipt", "billing_failed", "billing_dunning_end",
    "subscription_paused", "subscription_resumed", "subscription_canceled", "subscription_changed",
}


def assert_texts_are_their_templates(engine: Engine) -> set[str]:
    """Kakao delivers only approved templates: with Solapi the sender renders the template from the
    message's variables, so every billing text must be exactly its default template filled in."""
    seen = set()
    for message in _messages(engine, ""):
        if message.template_key in BILLING_TEMPLATES:
            assert render(default_body(message.template_key), message.variables) == message.text
            seen.add(message.template_key)
    return seen


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return len(session.exec(select(model)).all())


def test_plan_amount_zero_and_roles_are_refused(engine: Engine, actors: dict[str, Actor]) -> None:
    with Session(engine) as session:
        with pytest.raises(ValidationFailed, match="0원보다"):
            billing.create_plan(session, actors["owner"], name="무료", amount=0)
        with pytest.raises(PermissionDenied):
            billing.create_plan(session, actors["staff"], name="월회비", amount=39000)
        with pytest.raises(ValidationFailed, match="결제 주기"):
            billing.create_plan(session, actors["owner"], name="연회비", amount=1000, interval_unit="year")


def test_notice_the_day_before_with_the_seed_text_once(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2026, 12, 1))
    assert billing.run_notices(engine, kst("2026-11-29T10:00"))["notices_queued"] == 0
    counts = billing.run_notices(engine, kst("2026-11-30T10:00"))
    assert counts["notices_queued"] == 1
    assert billing.run_notices(engine, kst("2026-11-30T10:05")) == {
        "notices_queued": 0,
        "notices_already": 1,
        "moved_past_review": 0,
        "charges_moved": 0,
    }
    [notice] = _messages(engine, "billing_notice:")
    assert notice.idempotency_key == f"billing_notice:{sub_id}:2026-12-01:39000"
    assert notice.text == (
        "내일(12월 1일) 월회비 39,000원이 결제될 예정입니다. 변경이 필요하시면 미리 연락 부탁드립니다."
    )
    assert notice.variables["금액"] == "39,000원"


def test_notice_lead_time_is_configurable(engine: Engine, actors: dict[str, Actor]) -> None:
    make_subscription(engine, actors["owner"], start=date(2026, 12, 10))
    with Session(engine) as session:
        billing.update_settings(session, actors["owner"], notice_lead_days=3)
        with pytest.raises(ValidationFailed):
            billing.update_settings(session, actors["owner"], final_action="delete")
        session.commit()
    assert billing.run_notices(engine, kst("2026-12-06T10:00"))["notices_queued"] == 0
    assert billing.run_notices(engine, kst("2026-12-07T10:00"))["notices_queued"] == 1
    assert _messages(engine, "billing_notice:")[0].text.startswith("3일 후(12월 10일) 월회비 39,000원이")


def test_charge_success_records_payment_order_receipt_and_moves_the_date(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 1, 31))
    gateway = FakeGateway()
    assert (
        billing.run_charges(engine, kst("2027-01-31T08:59"), gateway=gateway)["opened"] == 0
    )  # before 09:00
    counts = billing.run_charges(engine, kst("2027-01-31T09:00"), gateway=gateway)
    assert counts["opened"] == 1 and counts["succeeded"] == 1
    again = billing.run_charges(engine, kst("2027-01-31T09:01"), gateway=gateway)  # a retried tick
    assert again["opened"] == 0 and again["succeeded"] == 0
    assert gateway.charge_calls == 1
    [charge] = _charges(engine, sub_id)
    assert charge.status == ChargeStatus.SUCCEEDED and charge.idempotency_key == f"charge:{sub_id}:2027-01-31"
    with Session(engine) as session:
        payment = session.exec(select(Payment)).one()
        order = session.exec(select(Order)).one()
        assert payment.idempotency_key == charge.idempotency_key and payment.amount == 39000
        assert order.source == "subscription" and order.subscription_id == sub_id and order.status == "paid"
        assert session.exec(
            select(AuditLog).where(AuditLog.action == "subscription.charge_succeeded")
        ).first()
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 2, 28)
    [receipt] = _messages(engine, "billing_receipt:")
    assert "월회비 39,000원 결제가 완료되었습니다" in receipt.text and "2월 28일" in receipt.text


def test_timeout_that_succeeded_is_looked_up_and_recorded_once(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("timeout")
    counts = billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    assert counts["unknown"] == 1
    assert _charges(engine, sub_id)[0].status == ChargeStatus.UNKNOWN
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.ACTIVE  # not told it failed
    assert billing.run_charges(engine, kst("2027-03-01T09:02"), gateway=gateway)["succeeded"] == 0  # not yet
    counts = billing.run_charges(engine, kst("2027-03-01T09:06"), gateway=gateway)
    assert counts["succeeded"] == 1 and counts["recovered_by_lookup"] == 1
    assert gateway.charge_calls == 1 and not gateway.double_charged()
    assert _count(engine, Payment) == 1
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 4, 1)


def test_lost_request_is_looked_up_then_charged_once(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("lost")
    billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    billing.run_charges(engine, kst("2027-03-01T09:10"), gateway=gateway)
    assert gateway.calls == [
        ("charge", f"S{sub_id}-20270301"),
        ("find_by_order", f"S{sub_id}-20270301"),
        ("charge", f"S{sub_id}-20270301"),
    ]
    assert _charges(engine, sub_id)[0].status == ChargeStatus.SUCCEEDED


def test_worker_killed_after_gateway_success_is_recorded_once_next_tick(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(billing_jobs, "_record_all", killed)  # run_charges looks it up there
    with pytest.raises(SystemExit):
        billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    monkeypatch.undo()
    assert gateway.charge_calls == 1 and _count(engine, Payment) == 0
    assert billing.run_charges(engine, kst("2027-03-01T09:05"), gateway=gateway)["succeeded"] == 0  # leased
    counts = billing.run_charges(engine, kst("2027-03-01T09:16"), gateway=gateway)
    assert counts["recovered_by_lookup"] == 1
    assert gateway.charge_calls == 1 and _count(engine, Payment) == 1
    assert billing.run_charges(engine, kst("2027-03-01T10:00"), gateway=gateway)["succeeded"] == 0
    assert _count(engine, Payment) == 1


def test_failure_goes_past_due_with_link_and_retries_on_schedule(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("busy", times=2)
    assert billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)["failed"] == 1
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.PAST_DUE
    [failed] = _messages(engine, "billing_failed:")
    with Session(engine) as session:
        link = session.exec(select(PaymentLink)).one()
    assert (
        link.code in failed.text
        and link.amount == 39000
        and "3월 2일에 다시 결제를 시도합니다" in failed.text
    )
    assert _charges(engine, sub_id)[0].payment_link_id == link.id
    assert billing.run_charges(engine, kst("2027-03-01T23:00"), gateway=gateway)["failed"] == 0  # not yet
    assert billing.run_charges(engine, kst("2027-03-02T09:00"), gateway=gateway)["failed"] == 1  # +1 day
    assert (
        billing.run_charges(engine, kst("2027-03-03T08:00"), gateway=gateway)["failed"] == 0
    )  # waits for +3
    assert billing.run_charges(engine, kst("2027-03-04T09:00"), gateway=gateway)["succeeded"] == 1
    sub = get_subscription(engine, sub_id)
    assert sub.status == SubscriptionStatus.ACTIVE and sub.next_charge_date == date(2027, 4, 1)
    assert len(_messages(engine, "billing_failed:")) == 1  # one failure notice per period
    assert _count(engine, PaymentLink) == 1 and not gateway.double_charged()


@pytest.mark.parametrize(("final_action", "status"), [("cancel", "canceled"), ("pause", "paused")])
def test_retries_spent_then_owner_choice(
    engine: Engine, actors: dict[str, Actor], final_action: str, status: str
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    with Session(engine) as session:
        billing.update_settings(session, actors["owner"], final_action=final_action)
        session.commit()
    gateway = FakeGateway()
    gateway.inject("busy", times=10)
    day = date(2027, 3, 1)
    for offset in range(10):
        billing.run_charges(engine, kst(f"{day + timedelta(days=offset)}T09:30"), gateway=gateway)
    assert gateway.charge_calls == 4  # due date, +1, +3, +7
    assert get_subscription(engine, sub_id).status == status
    assert len(_messages(engine, "billing_dunning_end:")) == 1
    assert billing.run_notices(engine, kst("2027-03-31T10:00"))["notices_queued"] == 0
    assert assert_texts_are_their_templates(engine) == {"billing_failed", "billing_dunning_end"}


def test_hard_decline_is_not_retried_blindly_but_a_person_may(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("decline")
    billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    for day in ("2027-03-02", "2027-03-04", "2027-03-06"):
        billing.run_charges(engine, kst(f"{day}T09:30"), gateway=gateway)
    assert gateway.charge_calls == 1
    [charge] = _charges(engine, sub_id)
    assert charge.hard_decline and charge.failure_message == "카드가 거절되었습니다"
    with pytest.raises(PermissionDenied):
        billing.retry_charge(engine, actors["staff"], charge.id or 0, gateway=gateway)
    outcome = billing.retry_charge(
        engine, actors["cs"], charge.id or 0, gateway=gateway, now=kst("2027-03-06T11:00")
    )
    assert outcome == "succeeded"
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.ACTIVE
    with pytest.raises(Conflict):
        billing.retry_charge(engine, actors["cs"], charge.id or 0, gateway=gateway)
    assert gateway.charge_calls == 2 and len(gateway.charged) == 1


def test_hard_decline_ends_in_cancel_at_schedule_end(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    gateway.inject("decline")
    billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    billing.run_charges(engine, kst("2027-03-07T09:30"), gateway=gateway)
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.PAST_DUE
    billing.run_charges(engine, kst("2027-03-08T09:30"), gateway=gateway)
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.CANCELED
    assert gateway.charge_calls == 1


def test_bad_input_is_visible_with_its_reason(engine: Engine, actors: dict[str, Actor]) -> None:
    no_instrument = make_subscription(engine, actors["owner"], start=date(2027, 3, 1), instrument_ref=None)
    inactive = make_subscription(
        engine, actors["owner"], start=date(2027, 3, 1), instrument_ref="SID_INACTIVE"
    )
    zero = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    with Session(engine) as session:  # legacy data: the services refuse 0, the job must not charge it
        row = session.get(Subscription, zero)
        assert row is not None
        row.amount = 0
        session.add(row)
        session.commit()
    gateway = FakeGateway(inactive_refs={"SID_INACTIVE"})
    billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    assert gateway.charge_calls == 1  # only the inactive SID reached the gateway
    with Session(engine) as session:
        queue = {sub.id: charge for charge, sub, _ in billing.failed_charges(session)}
    assert queue[no_instrument].failure_code == "NO_INSTRUMENT"
    assert queue[inactive].failure_code == "-796" and "SID" in (queue[inactive].failure_message or "")
    assert queue[zero].failure_code == "ZERO_AMOUNT"
    assert all(c.hard_decline for c in queue.values())
    assert {m.idempotency_key for m in _messages(engine, "billing_failed:")} == {
        f"billing_failed:{no_instrument}:2027-03-01",
        f"billing_failed:{inactive}:2027-03-01",
    }


def test_pause_resume_cancel_and_change_are_audited_and_told(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 1, 31))
    cs = actors["cs"]
    with clock.frozen(kst("2027-02-10T12:00")), Session(engine) as session:
        with pytest.raises(ValidationFailed):
            billing.pause(session, cs, sub_id, resume_on=date(2027, 2, 1))
        billing.pause(session, cs, sub_id, resume_on=date(2027, 4, 15), reason="여행")
        session.commit()
    gateway = FakeGateway()
    assert billing.run_notices(engine, kst("2027-02-27T10:00"))["notices_queued"] == 0
    billing.run_charges(engine, kst("2027-02-28T09:30"), gateway=gateway)
    assert gateway.charge_calls == 0
    billing.run_charges(engine, kst("2027-04-15T09:30"), gateway=gateway)  # resumes by itself
    sub = get_subscription(engine, sub_id)
    assert sub.status == SubscriptionStatus.ACTIVE and sub.next_charge_date == date(2027, 4, 30)
    with clock.frozen(kst("2027-04-20T12:00")), Session(engine) as session:
        billing.change_amount(session, cs, sub_id, 45000)
        session.commit()
    billing.run_notices(engine, kst("2027-04-29T10:00"))
    assert "월회비 45,000원" in _messages(engine, "billing_notice:")[-1].text
    billing.run_charges(engine, kst("2027-04-30T09:30"), gateway=gateway)
    sub = get_subscription(engine, sub_id)
    assert sub.amount == 45000 and sub.next_amount is None and sub.next_charge_date == date(2027, 5, 31)
    with clock.frozen(kst("2027-05-02T12:00")), Session(engine) as session:
        billing.cancel(session, cs, sub_id, at_period_end=True, reason="이사")
        session.commit()
    assert billing.run_notices(engine, kst("2027-05-30T10:00"))["notices_queued"] == 0
    assert billing.run_charges(engine, kst("2027-05-31T09:30"), gateway=gateway)["ended"] == 1
    assert get_subscription(engine, sub_id).status == SubscriptionStatus.CANCELED
    assert gateway.charge_calls == 1
    with Session(engine) as session:
        kinds = [
            e.kind
            for e in session.exec(
                select(SubscriptionEvent)
                .where(SubscriptionEvent.subscription_id == sub_id)
                .order_by(col(SubscriptionEvent.id))
            ).all()
        ]
        actions = set(session.exec(select(AuditLog.action)).all())
        hist = billing.history(session, sub_id)
    assert kinds == [
        "created",
        "paused",
        "resumed",
        "amount_changed",
        "charge_succeeded",
        "cancel_scheduled",
        "canceled",
    ]
    assert {"subscription.paused", "subscription.amount_changed", "subscription.cancel_scheduled"} <= actions
    told = {m.template_key for m in _messages(engine, "subscription_")}
    assert told == {
        "subscription_paused",
        "subscription_resumed",
        "subscription_changed",
        "subscription_canceled",
    }
    assert len(hist["charges"]) == 1 and len(hist["messages"]) == 2  # one notice, one receipt
    assert assert_texts_are_their_templates(engine) == told | {"billing_notice", "billing_receipt"}


def test_cancel_now_and_change_plan(engine: Engine, actors: dict[str, Actor]) -> None:
    sub_id = make_subscription(engine, actors["owner"], start=date(2027, 3, 1))
    gateway = FakeGateway()
    # A week before the charge (a change on the charge day itself would move it for a new notice).
    with clock.frozen(kst("2027-02-20T12:00")), Session(engine) as session:
        premium = billing.create_plan(session, actors["owner"], name="프리미엄 월회비", amount=59000)
        premium_id = premium.id
        billing.change_plan(session, actors["cs"], sub_id, premium_id or 0)
        session.commit()
    billing.run_charges(engine, kst("2027-03-01T09:30"), gateway=gateway)
    sub = get_subscription(engine, sub_id)
    assert sub.plan_id == premium_id and sub.amount == 59000
    with Session(engine) as session:
        billing.cancel(session, actors["owner"], sub_id, at_period_end=False)
        session.commit()
        with pytest.raises(Conflict):
            billing.cancel(session, actors["owner"], sub_id)
    assert get_subscription(engine, sub_id).next_charge_date is None
    billing.run_charges(engine, kst("2027-04-01T09:30"), gateway=gateway)
    assert gateway.charge_calls == 1


def test_sandbox_charge_is_once_per_key_and_refuses_a_dead_sid(engine: Engine) -> None:
    from core.models.sandbox import SandboxInstrument
    from core.payments.gateways.base import ChargeRequest, PermanentPaymentError
    from core.payments.gateways.sandbox import SandboxGateway

    with Session(engine) as session:
        session.add(SandboxInstrument(sid="S_LIVE", partner_user_id="u1"))
        session.add(SandboxInstrument(sid="S_DEAD", partner_user_id="u1", status="INACTIVE"))
        session.commit()
    sandbox = SandboxGateway(engine)
    order = {"partner_order_id": "S1-20270301", "partner_user_id": "u1", "item_name": "월회비"}
    first = sandbox.charge(
        ChargeRequest(instrument_ref="S_LIVE", total_amount=39000, tax_free_amount=0, idempotency_key="k", **order)
    )
    again = sandbox.charge(
        ChargeRequest(instrument_ref="S_LIVE", total_amount=39000, tax_free_amount=0, idempotency_key="k", **order)
    )
    assert again.tid == first.tid and first.total_amount == 39000
    found = sandbox.find_by_order(partner_order_id="S1-20270301")
    assert found is not None and found.tid == first.tid and found.status == "SUCCESS_PAYMENT"
    for ref in ("S_DEAD", "S_NONE"):
        with pytest.raises(PermanentPaymentError) as refused:
            sandbox.charge(
                ChargeRequest(instrument_ref=ref, total_amount=39000, tax_free_amount=0, idempotency_key=ref, **order)
            )
        assert refused.value.code == "-796"


class NoLookupGateway(FakeGateway):
    """Like KakaoPay: a payment cannot be looked up by our order id (it needs a tid)."""

    def find_by_order(self, *, partner_order_id: str) -> None:
        from core.payments.gateways.base import PaymentOutcomeUnknown

        self.calls.append(("find_by_order", partner_order_id))
        raise PaymentOutcomeUnknown("tid 없이 주문번호로는 조회할 수 없습니다", code="NO_TID")


def test_a_definite_failure_is_retried_without_a_lookup_an_unknown_one_never_blindly(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    declined = make_subscription(engine, actors["owner"], start=date(2027, 3, 1), customer_name="가")
    gateway = NoLookupGateway()
    gateway.inject("busy")  # nothing happened: the +1 day retry needs no lookup
    billing.run_charges(engine, kst("2027-03-01T09:00"), gateway=gateway)
    assert billing.run_charges(engine, kst("2027-03-02T09:00"), gateway=gateway)["succeeded"] == 1
    assert ("find_by_order", billing.order_number(declined, date(2027, 3, 1))) not in gateway.calls
    lost = make_subscription(engine, actors["owner"], start=date(2027, 3, 5), customer_name="나")
    gateway.inject("lost")  # the outcome is unknown and cannot be looked up: never charged again
    billing.run_charges(engine, kst("2027-03-05T09:00"), gateway=gateway)
    for hour in ("09:10", "12:00", "18:00"):
        assert billing.run_charges(engine, kst(f"2027-03-05T{hour}"), gateway=gateway)["unknown"] == 1
    assert [op for op, order in gateway.calls if order == billing.order_number(lost, date(2027, 3, 5))] == [
        "charge",
        "find_by_order",
        "find_by_order",
        "find_by_order",
    ]
    [charge] = _charges(engine, lost)
    assert charge.status == ChargeStatus.UNKNOWN and charge.failure_code == "LOOKUP_FAILED"
