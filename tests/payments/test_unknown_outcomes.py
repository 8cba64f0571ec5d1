"""Issue 13: every money-moving call x every bad answer, against a real HTTP server on 127.0.0.1.

The fake KakaoPay / Toss performs the operation (the money moves) and then answers badly: a 5xx of
any body, HTML, an empty or malformed body, a JSON list or string, `{"tid": null}`, a success without
the amount, a dropped connection, an answer after our read timeout. Counted at the fake gateway:
exactly one approve / charge / cancel, and our row ends settled (at once by lookup, or after the
reconciliation when the lookup itself fails). Never "not paid", never sent twice.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from core import clock
from core.errors import ValidationFailed
from core.models import Order, Payment, PaymentLink, Refund
from core.payments.gateways.base import ChargeRequest, PaymentOutcomeUnknown
from core.payments.gateways.kakaopay import KakaoPayGateway
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.toss import TossGateway
from core.payments.jobs import lookup_payment_now, reconcile_payments
from core.payments.link_approval import pay_link
from core.payments.link_checkout import start_payment
from core.payments.links import create_payment_link
from tests.payments.fake_gateway_server import BAD_ANSWERS, FakeGateway, GatewayRefusal, serve
from tests.payments.test_kakaopay_links import (
    APPROVE_PATH,
    ORDER_PATH,
    KakaoPayState,
    _customer,
    _return_params,
)

CANCEL_PATH = "/online/v1/payment/cancel"
SUB_PATH = "/online/v1/payment/subscription"
# The answers that come back after the gateway did the work.
AFTER_WORK = [*BAD_ANSWERS, "drop", "slow"]


class KakaoPayWithCancels(KakaoPayState):
    """KakaoPayState plus partial cancels and running cancelled totals in the order lookup."""

    def approve(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(body["tid"])
        if payment is not None and payment["status"] == "SUCCESS_PAYMENT":  # a used pg_token
            raise GatewayRefusal({"error_code": -780, "error_message": "approval failure!"})
        answer = super().approve(path, body)
        self.payments[body["tid"]]["canceled"] = 0
        return answer

    def cancel(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments[body["tid"]]
        available = payment["total_amount"] - payment["canceled"]
        if body["cancel_amount"] > available:
            raise GatewayRefusal({"error_code": -798, "error_message": "cancel amount exceeds"})
        payment["canceled"] += body["cancel_amount"]
        payment["status"] = "CANCEL_PAYMENT" if available == body["cancel_amount"] else "PART_CANCEL_PAYMENT"
        return {
            "tid": body["tid"],
            "status": payment["status"],
            "approved_cancel_amount": {"total": body["cancel_amount"]},
            "canceled_amount": {"total": payment["canceled"]},
            "cancel_available_amount": {"total": payment["total_amount"] - payment["canceled"]},
            "canceled_at": "2026-11-23T11:00:00",
        }

    def order(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = super().order(path, body)
        payment = self.payments[body["tid"]]
        if payment["status"] in ("PART_CANCEL_PAYMENT", "CANCEL_PAYMENT"):
            answer["payment_action_details"] = [
                {"aid": "A1", "approved_at": "2026-11-23T10:01:00", "amount": 1, "payment_action_type": "PAYMENT"}
            ]
        answer["canceled_amount"] = {"total": payment.get("canceled", 0)}
        answer["cancel_available_amount"] = {"total": payment["total_amount"] - payment.get("canceled", 0)}
        return answer

    def answers(self) -> dict[str, Any]:
        return {**super().answers(), CANCEL_PATH: self.cancel}


def _router(url: str) -> PaymentRouter:
    gateway = KakaoPayGateway(secret_key="DEV_SECRET", base_url=url, timeout=httpx.Timeout(0.3, connect=1.0))
    return PaymentRouter(gateway, sleep=lambda _s: None)


def _paid_link(engine, actors, state: KakaoPayState, router: PaymentRouter, amount: int) -> tuple[str, dict]:
    customer_id = _customer(engine)
    with Session(engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, actors["cs"], item_name="원두 1kg", amount=amount, customer_id=customer_id, router=router
        )
        start = start_payment(session, link.code, router=router)
    return link.code, _return_params(state.customer_pays(start.tid))


@pytest.mark.parametrize("lookup_fails", [False, True], ids=["lookup_ok", "lookup_fails"])
@pytest.mark.parametrize("behaviour", AFTER_WORK)
def test_an_approve_answered_badly_after_kakaopay_approved_is_never_a_second_charge(
    sqlite_engine, sqlite_actors, monkeypatch, behaviour, lookup_fails
):
    """Issue 13 item 1, end to end: the customer cannot be charged twice, the order is recorded once."""
    state = KakaoPayWithCancels()
    fake = FakeGateway(state.answers(), slow_seconds=0.5)
    with serve(fake) as url:
        router = _router(url)
        monkeypatch.setattr("core.payments.jobs._router", lambda engine: router)
        code, back = _paid_link(sqlite_engine, sqlite_actors, state, router, 39_000)
        fake.plan(APPROVE_PATH, behaviour)
        if lookup_fails:
            fake.plan(ORDER_PATH, "500", "500", "500")
        with Session(sqlite_engine, expire_on_commit=False) as session:
            try:
                pay_link(session, code, pg_token=back["pg_token"], attempt=back["attempt"], router=router)
            except ValidationFailed as exc:
                assert lookup_fails and "확인 중" in str(exc)
                payment = session.exec(select(Payment)).one()
                assert payment.status == "unknown" and payment.failure_message  # the reason, for staff
                # The customer tries again (reload, or a new attempt): nothing reaches the gateway.
                with pytest.raises(ValidationFailed, match="확인 중"):
                    start_payment(session, code, router=router)
                with pytest.raises(ValidationFailed, match="확인 중"):
                    pay_link(session, code, pg_token=back["pg_token"], attempt=back["attempt"], router=router)
        assert reconcile_payments(sqlite_engine, clock.now())["paid"] == int(lookup_fails)
        with Session(sqlite_engine) as session, pytest.raises(ValidationFailed, match="이미 결제된"):
            start_payment(session, code, router=router)
    assert fake.done.count(APPROVE_PATH) == 1 and fake.seen.count(APPROVE_PATH) == 1
    with Session(sqlite_engine) as session:
        payment = session.exec(select(Payment)).one()
        assert payment.status == "approved" and payment.failure_code is None
        assert payment.gateway_cid == "TC0ONETIME"  # the CID it was made with, for its lookups and cancels
        assert session.exec(select(Order)).one().total_amount == 39_000
        assert session.exec(select(PaymentLink)).one().status == "paid"


def test_a_refused_reused_pg_token_is_looked_up_not_read_as_not_paid(sqlite_engine, sqlite_actors, monkeypatch):
    """KakaoPay approved, the answer was lost and the lookup failed; then the approve is refused as
    a reused pg_token: the lookup says paid, the link is paid, the customer is not sent to pay again."""
    state = KakaoPayWithCancels()
    fake = FakeGateway(state.answers())
    with serve(fake) as url:
        router = _router(url)
        code, back = _paid_link(sqlite_engine, sqlite_actors, state, router, 12_000)
        tid = next(iter(state.payments))
        state.approve(APPROVE_PATH, {**state.payments[tid], "tid": tid, "pg_token": state.payments[tid]["pg_token"]})
        with Session(sqlite_engine, expire_on_commit=False) as session:
            order = pay_link(session, code, pg_token=back["pg_token"], attempt=back["attempt"], router=router)
    assert order.total_amount == 12_000
    assert fake.seen.count(APPROVE_PATH) == 1 and ORDER_PATH in fake.seen  # refused, then looked up


def _kakaopay_payment(engine, actors, state, router, amount: int) -> int:
    code, back = _paid_link(engine, actors, state, router, amount)
    with Session(engine, expire_on_commit=False) as session:
        pay_link(session, code, pg_token=back["pg_token"], attempt=back["attempt"], router=router)
        return session.exec(select(Payment)).one().id


@pytest.mark.parametrize("lookup_fails", [False, True], ids=["lookup_ok", "lookup_fails"])
@pytest.mark.parametrize("behaviour", AFTER_WORK)
def test_a_cancel_answered_badly_after_kakaopay_refunded_is_never_sent_twice(
    sqlite_engine, sqlite_actors, monkeypatch, behaviour, lookup_fails
):
    """Issue 13 item 2: never 6,000원 refunded at the gateway while 3,000원 is recorded."""
    from core.payments.refunds import refund_payment

    state = KakaoPayWithCancels()
    fake = FakeGateway(state.answers(), slow_seconds=0.5)
    with serve(fake) as url:
        router = _router(url)
        monkeypatch.setattr("core.payments.jobs._router", lambda engine: router)
        payment_id = _kakaopay_payment(sqlite_engine, sqlite_actors, state, router, 30_000)
        fake.plan(CANCEL_PATH, behaviour)
        if lookup_fails:
            fake.plan(ORDER_PATH, "500", "500", "500")
        with Session(sqlite_engine, expire_on_commit=False) as session:
            refund = refund_payment(
                session,
                sqlite_actors["cs"],
                payment_id=payment_id,
                amount=3_000,
                reason="부분 환불",
                idempotency_key="r-1",
                router=router,
            )
            assert refund.status == ("unknown" if lookup_fails else "succeeded")
            if lookup_fails:
                assert refund.unknown_reason  # shown to staff as 결제 대행사 응답 확인 중
        later = clock.now() + timedelta(minutes=5)
        reconcile_payments(sqlite_engine, later)
        reconcile_payments(sqlite_engine, later)  # a second tick changes nothing
    tid = next(iter(state.payments))
    assert fake.done.count(CANCEL_PATH) == 1 and state.payments[tid]["canceled"] == 3_000
    with Session(sqlite_engine) as session:
        refund = session.exec(select(Refund)).one()
        assert (refund.status, refund.amount, refund.unknown_reason) == ("succeeded", 3_000, None)
        payment = session.get(Payment, payment_id)
        assert (payment.status, payment.refunded_amount) == ("partially_refunded", 3_000)


def test_a_cancel_answered_with_another_amount_stays_unknown_for_a_person(sqlite_engine, sqlite_actors):
    """The gateway cancelled 6,000원 when 3,000원 was asked: not recorded as done, not sent again."""
    from core.payments.refunds import refund_payment

    state = KakaoPayWithCancels()
    original = state.cancel

    def overdoing(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return original(path, {**body, "cancel_amount": body["cancel_amount"] * 2})

    fake = FakeGateway({**state.answers(), CANCEL_PATH: overdoing})
    with serve(fake) as url:
        router = _router(url)
        payment_id = _kakaopay_payment(sqlite_engine, sqlite_actors, state, router, 30_000)
        with Session(sqlite_engine, expire_on_commit=False) as session:
            refund = refund_payment(
                session,
                sqlite_actors["cs"],
                payment_id=payment_id,
                amount=3_000,
                reason="부분 환불",
                idempotency_key="r-2",
                router=router,
            )
            assert refund.status == "unknown" and "6,000원" in refund.unknown_reason
            # A CS person asks again by hand: still not settled, still not sent again.
            lookup_payment_now(session, sqlite_actors["cs"], payment_id, router=router)
            assert session.get(Refund, refund.id).status == "unknown"
    assert fake.done.count(CANCEL_PATH) == 1


@pytest.mark.parametrize("behaviour", AFTER_WORK)
def test_a_kakaopay_subscription_charge_answered_badly_is_unknown_and_charged_once(behaviour):
    def approval(_path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "aid": "A" * 20,
            "tid": "T" + secrets.token_hex(10)[:19].upper(),
            "cid": body["cid"],
            "payment_method_type": "CARD",
            "amount": {"total": body["total_amount"], "tax_free": 0, "vat": 0},
            "approved_at": "2026-11-23T10:00:00",
        }

    fake = FakeGateway({SUB_PATH: approval}, slow_seconds=0.5)
    fake.plan(SUB_PATH, behaviour)
    with serve(fake) as url:
        router = _router(url)
        with pytest.raises(PaymentOutcomeUnknown):
            router.charge(
                [],
                ChargeRequest(
                    instrument_ref="S" * 20,
                    partner_order_id="S7-20270301",
                    partner_user_id="u7",
                    item_name="월회비",
                    total_amount=39_000,
                    tax_free_amount=0,
                    idempotency_key="charge:7",
                ),
                instruments={"kakaopay": "S" * 20},
            )
    assert fake.done.count(SUB_PATH) == 1 and fake.seen.count(SUB_PATH) == 1


@pytest.mark.parametrize("behaviour", AFTER_WORK)
def test_a_toss_billing_charge_answered_badly_is_found_by_lookup_and_charged_once(behaviour):
    charged: dict[str, dict[str, Any]] = {}

    def billing(_path: str, body: dict[str, Any]) -> dict[str, Any]:
        charged.setdefault(body["orderId"], {"paymentKey": "pk_" + body["orderId"], "orderId": body["orderId"],
                                             "status": "DONE", "totalAmount": body["amount"],
                                             "balanceAmount": body["amount"], "method": "카드",
                                             "approvedAt": "2026-11-23T10:00:00+09:00"})
        return charged[body["orderId"]]

    def by_order(path: str, _body: dict[str, Any]) -> dict[str, Any]:
        order_id = path.rsplit("/", 1)[-1]
        if order_id not in charged:
            raise GatewayRefusal({"code": "NOT_FOUND_PAYMENT", "message": "없음"}, status=404)
        return charged[order_id]

    fake = FakeGateway({"/v1/billing/bk_1": billing, "/v1/payments/orders/O1": by_order}, slow_seconds=0.5)
    fake.plan("/v1/billing/bk_1", behaviour)
    with serve(fake) as url:
        router = PaymentRouter(
            TossGateway(secret_key="k", base_url=url, timeout=httpx.Timeout(0.3, connect=1.0)), sleep=lambda _s: None
        )
        routed = router.charge(
            log := [],
            ChargeRequest(
                instrument_ref="bk_1",
                partner_order_id="O1",
                partner_user_id="u",
                item_name="월회비",
                total_amount=39_000,
                tax_free_amount=0,
                idempotency_key="charge:1",
            ),
            instruments={"toss": "bk_1"},
        )
    assert routed.result.tid == "pk_O1" and routed.result.total_amount == 39_000
    assert fake.done.count("/v1/billing/bk_1") == 1 and fake.seen.count("/v1/billing/bk_1") == 1
    assert "paid_per_lookup" in [entry["decision"] for entry in log]


def test_a_cs_person_sees_the_reason_and_triggers_the_lookup_by_hand(sqlite_engine, sqlite_actors):
    """Bad input, visible: UNKNOWN shows "결제 대행사 응답 확인 중" with its reason; CS (not staff) can
    ask the gateway now, the ask is audited, and the payment is settled by what the gateway says."""
    from core.errors import PermissionDenied
    from core.models import AuditLog
    from core.payments.refunds import unknown_outcome_notes

    state = KakaoPayWithCancels()
    fake = FakeGateway(state.answers())
    with serve(fake) as url:
        router = _router(url)
        code, back = _paid_link(sqlite_engine, sqlite_actors, state, router, 39_000)
        fake.plan(APPROVE_PATH, "done_html")
        fake.plan(ORDER_PATH, "500", "500", "500")
        with Session(sqlite_engine, expire_on_commit=False) as session:
            with pytest.raises(ValidationFailed, match="확인 중"):
                pay_link(session, code, pg_token=back["pg_token"], attempt=back["attempt"], router=router)
            payment = session.exec(select(Payment)).one()
            [note] = unknown_outcome_notes([payment], [])
            assert note.startswith(f"결제 #{payment.id} 39,000원: 결제 대행사 응답 확인 중")
            assert "HTTP 502" in note  # the detail, for staff
            with pytest.raises(PermissionDenied):
                lookup_payment_now(session, sqlite_actors["staff"], payment.id, router=router)
            assert lookup_payment_now(session, sqlite_actors["cs"], payment.id, router=router) == "paid"
            assert session.get(Payment, payment.id).status == "approved"
            audited = session.exec(
                select(AuditLog).where(AuditLog.action == "payment.lookup_requested")
            ).one()
            assert audited.actor_id == sqlite_actors["cs"].id
    assert fake.done.count(APPROVE_PATH) == 1
