"""KakaoPay cannot look a payment up by our order id: how an unknown recurring charge is still settled.

A tid the client saw is looked up by tid (under the CID it was made with); a lost answer is judged by
the SID's last approval once the attempt has settled; the rest is NEEDS_REVIEW, shown with what to
check, and never charged again. MockTransport for the client, a 127.0.0.1 server for the billing run.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import billing, clock
from core.accounts.actor import Actor
from core.models import Payment, Role, Subscription, SubscriptionCharge
from core.payments.gateways.base import ChargeRequest, PaymentOutcomeUnknown
from core.payments.gateways.kakaopay import NEEDS_REVIEW, KakaoPayGateway
from core.payments.gateways.router import PaymentRouter, find_charge
from tests.billing_support import kst, make_subscription
from tests.payments.fake_gateway_server import FakeGateway, serve

OWNER = Actor(None, "사장님", Role.OWNER)
SUB = "/online/v1/payment/subscription"
ORDER = "/online/v1/payment/order"
SID_STATUS = "/online/v1/payment/manage/subscription/status"
OPENED = kst("2027-03-01T09:00")


def _gateway(handler: Any) -> KakaoPayGateway:
    return KakaoPayGateway(secret_key="k", base_url="https://kp.test", transport=httpx.MockTransport(handler))


def _sid_status(last_approved_at: str | None, **extra: Any) -> dict[str, Any]:
    body = {"cid": "TCSUBSCRIP", "sid": "S" * 20, "status": "ACTIVE", "available": True}
    body.update(last_approved_at=last_approved_at, **extra)
    return body


def test_a_tid_from_an_answer_we_could_not_trust_is_looked_up_under_its_cid():
    requests: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append((request.url.path, body))
        if request.url.path == SUB:  # a success without amounts: the outcome is unknown, the tid is not
            return httpx.Response(200, json={"tid": "T0000000000000000042", "aid": "A1"})
        return httpx.Response(
            200,
            json={
                "tid": body["tid"],
                "status": "SUCCESS_PAYMENT",
                "amount": {"total": 39000},
                "canceled_amount": 0,
            },
        )

    gateway = _gateway(handler)
    router = PaymentRouter(gateway, sleep=lambda _s: None)
    charged = router.charge(
        log := [],
        ChargeRequest(
            instrument_ref="S" * 20,
            partner_order_id="S7-20270301",
            partner_user_id="u7",
            item_name="월회비",
            total_amount=39000,
            tax_free_amount=0,
            idempotency_key="charge:7:2027-03-01",
        ),
        instruments={"kakaopay": "S" * 20},
    )
    assert charged.result.tid == "T0000000000000000042" and charged.result.total_amount == 39000
    assert [path for path, _ in requests] == [SUB, ORDER]  # looked up, never charged twice
    assert requests[1][1] == {"cid": "TCSUBSCRIP", "tid": "T0000000000000000042"}
    assert [entry["decision"] for entry in log] == ["unknown", "ok", "paid_per_lookup"]


@pytest.mark.parametrize(
    ("status_body", "last_attempt_at", "expected"),
    [
        (_sid_status(None), OPENED + timedelta(minutes=1), None),  # never approved: not charged
        (_sid_status("2027-02-01T09:00:03"), OPENED + timedelta(minutes=1), None),  # last month's
        (_sid_status("2027-03-01T09:00:05"), OPENED + timedelta(minutes=1), NEEDS_REVIEW),  # ours, tid lost
        (_sid_status("2027-02-01T09:00:03"), OPENED + timedelta(minutes=9), "SETTLING"),  # too soon to say
        ({"cid": "TCSUBSCRIP", "sid": "S" * 20, "status": "ACTIVE"}, OPENED, NEEDS_REVIEW),  # field missing
    ],
)
def test_a_lost_charge_is_judged_by_the_sids_last_approval(status_body, last_attempt_at, expected):
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        assert json.loads(request.content) == {"cid": "TCSUBSCRIP", "sid": "S" * 20}
        return httpx.Response(200, json=status_body)

    gateway = _gateway(handler)
    with clock.frozen(OPENED + timedelta(minutes=10)):
        call = lambda: find_charge(  # noqa: E731
            gateway,
            partner_order_id="S7-20270301",
            instrument_ref="S" * 20,
            not_before=OPENED,
            last_attempt_at=last_attempt_at,
        )
        if expected is None:
            assert call() is None
        else:
            with pytest.raises(PaymentOutcomeUnknown) as unknown:
                call()
            assert unknown.value.code == expected
            if expected == NEEDS_REVIEW:
                assert "S7-20270301" in str(unknown.value) and "다시 청구하지 않습니다" in str(unknown.value)
    assert calls == ([] if expected == "SETTLING" else [SID_STATUS])


def test_without_a_tid_or_a_sid_it_is_left_for_a_person():
    gateway = _gateway(lambda _request: pytest.fail("no request can help"))
    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        gateway.find_by_order(partner_order_id="PL-abc")
    assert unknown.value.code == NEEDS_REVIEW and "PL-abc" in str(unknown.value)


class KakaoPaySubscriptions:
    """KakaoPay's side of recurring charges: approvals per SID, SID status with last_approved_at."""

    def __init__(self, approved_at: str = "2027-03-01T09:00:01") -> None:
        self.charges: list[dict[str, Any]] = []
        self.last_approved_at: str | None = None
        self.approved_at = approved_at  # KakaoPay's clock (KST, no offset)

    def charge(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        at = self.approved_at
        self.charges.append(body)
        self.last_approved_at = at
        return {
            "aid": f"A{len(self.charges):019d}",
            "tid": f"T{len(self.charges):019d}",
            "cid": body["cid"],
            "sid": body["sid"],
            "partner_order_id": body["partner_order_id"],
            "payment_method_type": "CARD",
            "amount": {"total": body["total_amount"], "tax_free": 0, "vat": 0},
            "approved_at": at,
        }

    def status(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _sid_status(self.last_approved_at)

    def answers(self) -> dict[str, Any]:
        return {SUB: self.charge, SID_STATUS: self.status}


def _kakaopay_subscription(engine: Engine) -> int:
    sub_id = make_subscription(engine, OWNER, start=date(2027, 3, 1), instrument_ref="S" * 20)
    with Session(engine) as session:
        subscription = session.get(Subscription, sub_id)
        subscription.instrument_gateway = "kakaopay"
        session.add(subscription)
        session.commit()
    return sub_id


def _router(url: str) -> PaymentRouter:
    gateway = KakaoPayGateway(secret_key="k", base_url=url, timeout=httpx.Timeout(0.3, connect=1.0))
    return PaymentRouter(gateway, sleep=lambda _s: None)


def _charge(engine: Engine) -> SubscriptionCharge:
    with Session(engine) as session:
        return session.exec(select(SubscriptionCharge)).one()


def _run(engine: Engine, at: datetime, router: PaymentRouter) -> dict[str, int]:
    with clock.frozen(at):
        return billing.run_charges(engine, at, gateway=router)


def test_billing_settles_a_lost_charge_that_never_happened_and_charges_once(sqlite_engine: Engine) -> None:
    state = KakaoPaySubscriptions()
    fake = FakeGateway(state.answers(), slow_seconds=0.6)
    fake.plan(SUB, "lost")  # the request times out and KakaoPay never acted on it
    _kakaopay_subscription(sqlite_engine)
    with serve(fake) as url:
        router = _router(url)
        assert _run(sqlite_engine, kst("2027-03-01T09:00"), router)["unknown"] == 1
        assert _run(sqlite_engine, kst("2027-03-01T09:10"), router)["succeeded"] == 1  # SID: nothing since
    assert len(state.charges) == 1
    assert _charge(sqlite_engine).status == "succeeded"
    with Session(sqlite_engine) as session:
        assert session.exec(select(Payment)).one().gateway_tid == "T0000000000000000001"


def test_billing_leaves_a_charge_kakaopay_made_but_we_never_heard_of_for_a_person(
    sqlite_engine: Engine,
) -> None:
    state = KakaoPaySubscriptions()
    fake = FakeGateway(state.answers(), slow_seconds=0.6)
    fake.plan(SUB, "drop")  # KakaoPay charged, the connection dropped before the answer
    _kakaopay_subscription(sqlite_engine)
    with serve(fake) as url:
        router = _router(url)
        assert _run(sqlite_engine, kst("2027-03-01T09:00"), router)["unknown"] == 1
        assert _run(sqlite_engine, kst("2027-03-01T09:10"), router)["unknown"] == 1
        assert _run(sqlite_engine, kst("2027-03-01T09:30"), router)["unknown"] == 1
    assert len(state.charges) == 1  # never charged again
    charge = _charge(sqlite_engine)
    assert charge.status == "unknown"
    assert "S1-20270301" in (charge.failure_message or "") or "주문번호" in (charge.failure_message or "")
    assert "카카오페이 가맹점 관리자" in (charge.failure_message or "")
    with Session(sqlite_engine) as session:
        assert session.exec(select(Payment)).first() is None
