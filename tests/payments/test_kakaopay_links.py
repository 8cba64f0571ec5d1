"""The real KakaoPay payment-link flow: ready when the customer starts, redirect, approval_url?pg_token,
approve exactly once, cancel_url / fail_url, funnel events; over httpx.MockTransport and over a real
HTTP server on 127.0.0.1 that answers in KakaoPay's shapes and keeps KakaoPay's state."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlmodel import Session, select

from core import clock
from core.errors import ValidationFailed
from core.models import AuditLog, Customer, Order, Payment, PaymentLink
from core.payments.gateways.kakaopay import KakaoPayGateway
from core.payments.gateways.router import PaymentRouter
from core.payments.jobs import reconcile_payments
from core.payments.link_approval import pay_link
from core.payments.link_checkout import open_link, return_from_gateway, start_payment
from core.payments.links import create_payment_link
from tests.payments.fake_gateway_server import FakeGateway, GatewayRefusal, serve

READY_PATH = "/online/v1/payment/ready"
APPROVE_PATH = "/online/v1/payment/approve"
ORDER_PATH = "/online/v1/payment/order"


class KakaoPayState:
    """KakaoPay's side of one-off payments: tids, the customer's authentication, approve once."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}

    def ready(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        tid = "T" + secrets.token_hex(10)[:19].upper()
        self.payments[tid] = {**body, "status": "READY", "pg_token": None}
        return {
            "tid": tid,
            "next_redirect_pc_url": f"https://online-pay.kakao.com/mockup/v1/{tid}/info",
            "next_redirect_mobile_url": f"https://online-pay.kakao.com/mockup/v1/{tid}/mInfo",
            "next_redirect_app_url": f"https://online-pay.kakao.com/mockup/v1/{tid}/aInfo",
            "android_app_scheme": "kakaotalk://kakaopay/pg?url=...",
            "ios_app_scheme": "kakaotalk://kakaopay/pg?url=...",
            "created_at": "2026-11-23T10:00:00",
        }

    def customer_pays(self, tid: str) -> str:
        """The customer authenticates on KakaoPay's page; KakaoPay redirects to approval_url?pg_token=."""
        payment = self.payments[tid]
        payment["status"], payment["pg_token"] = "AUTH_PASSWORD", secrets.token_hex(10)
        return f"{payment['approval_url']}&pg_token={payment['pg_token']}"

    def customer_quits(self, tid: str) -> str:
        self.payments[tid]["status"] = "QUIT_PAYMENT"
        return self.payments[tid]["cancel_url"]

    def approve(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(body["tid"])
        if payment is None or payment["status"] != "AUTH_PASSWORD" or body["pg_token"] != payment["pg_token"]:
            raise GatewayRefusal({"error_code": -780, "error_message": "approval failure!"})
        if (body["partner_order_id"], body["partner_user_id"]) != (
            payment["partner_order_id"],
            payment["partner_user_id"],
        ):
            raise GatewayRefusal({"error_code": -702, "error_message": "partner info mismatch"})
        payment["status"] = "SUCCESS_PAYMENT"
        return {
            "aid": "A" + secrets.token_hex(10)[:19].upper(),
            "tid": body["tid"],
            "cid": body["cid"],
            "partner_order_id": body["partner_order_id"],
            "partner_user_id": body["partner_user_id"],
            "payment_method_type": "MONEY",
            "amount": {"total": payment["total_amount"], "tax_free": 0, "vat": 0, "point": 0, "discount": 0},
            "item_name": payment["item_name"],
            "quantity": 1,
            "created_at": "2026-11-23T10:00:00",
            "approved_at": "2026-11-23T10:01:00",
        }

    def order(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments[body["tid"]]
        total = payment["total_amount"]
        paid = payment["status"] == "SUCCESS_PAYMENT"
        return {
            "tid": body["tid"],
            "cid": body["cid"],
            "status": payment["status"],
            "partner_order_id": payment["partner_order_id"],
            "amount": {"total": total, "tax_free": 0, "vat": 0},
            "canceled_amount": {"total": 0},
            "cancel_available_amount": {"total": total if paid else 0},
            "payment_action_details": [
                {
                    "aid": "A1",
                    "approved_at": "2026-11-23T10:01:00",
                    "amount": total,
                    "payment_action_type": "PAYMENT",
                }
            ]
            if paid
            else [],
        }

    def answers(self) -> dict[str, Any]:
        return {READY_PATH: self.ready, APPROVE_PATH: self.approve, ORDER_PATH: self.order}


def _router(base_url: str, transport: httpx.BaseTransport | None = None) -> PaymentRouter:
    gateway = KakaoPayGateway(
        secret_key="DEV_SECRET",
        base_url=base_url,
        timeout=httpx.Timeout(0.3, connect=1.0),
        transport=transport,
    )
    return PaymentRouter(gateway, sleep=lambda _s: None)


def _customer(engine) -> int:
    with Session(engine) as session:
        customer = Customer(name="박서준", phone="01099998888")
        session.add(customer)
        session.commit()
        return customer.id


def _return_params(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def _events(session: Session, link_id: int) -> list[str]:
    rows = session.exec(
        select(AuditLog.action).where(
            AuditLog.entity_type == "payment_link", AuditLog.entity_id == str(link_id)
        )
    ).all()
    return [action.removeprefix("payment_link.") for action in rows]


def test_ready_happens_when_the_customer_starts_and_approve_runs_once(engine, actors):
    state = KakaoPayState()
    fake = FakeGateway(state.answers())
    customer_id = _customer(engine)
    with serve(fake) as url, Session(engine, expire_on_commit=False) as session:
        router = _router(url)
        link = create_payment_link(
            session,
            actors["cs"],
            item_name="맞춤 견적",
            amount=45_000,
            customer_id=customer_id,
            router=router,
        )
        assert fake.seen == []  # a link lives for days, a tid ~15 minutes: no ready yet
        with clock.frozen(clock.now() + timedelta(days=2)):  # opened two days later: still payable
            assert open_link(session, link.code, router=router).status == "opened"
            start = start_payment(session, link.code, router=router)
            assert start.redirect_pc_url.endswith(f"/{start.tid}/info")
            ready = state.payments[start.tid]
            assert ready["partner_user_id"] == session.get(Customer, customer_id).public_id
            assert (ready["total_amount"], ready["tax_free_amount"], ready["vat_amount"]) == (
                45_000,
                0,
                4_091,
            )
            back = _return_params(state.customer_pays(start.tid))
            assert (back["link"], back["attempt"], back["result"]) == (link.code, start.attempt, "ok")
            order = pay_link(
                session, back["link"], pg_token=back["pg_token"], attempt=back["attempt"], router=router
            )
            again = pay_link(
                session, back["link"], pg_token=back["pg_token"], attempt=back["attempt"], router=router
            )
        assert again.id == order.id and order.total_amount == 45_000
        assert fake.done.count(APPROVE_PATH) == 1
        payment = session.exec(select(Payment).where(Payment.order_id == order.id)).one()
        assert (payment.gateway, payment.gateway_tid, payment.status, payment.method) == (
            "kakaopay",
            start.tid,
            "approved",
            "MONEY",
        )
        assert session.get(PaymentLink, link.id).status == "paid"
        assert _events(session, link.id) == ["create", "opened", "ready", "approved"]


def test_cancel_return_then_a_new_attempt_pays_and_an_old_attempt_cannot(engine, actors):
    state = KakaoPayState()
    fake = FakeGateway(state.answers())
    customer_id = _customer(engine)
    with serve(fake) as url, Session(engine, expire_on_commit=False) as session:
        router = _router(url)
        link = create_payment_link(
            session, actors["cs"], item_name="세럼", amount=21_000, customer_id=customer_id, router=router
        )
        open_link(session, link.code, router=router)
        first = start_payment(session, link.code, router=router)
        back = _return_params(state.customer_quits(first.tid))
        assert (
            return_from_gateway(
                session, link.code, back["result"], attempt=back["attempt"], router=router
            ).status
            == "quit"
        )
        second = start_payment(session, link.code, router=router)
        assert second.tid != first.tid
        with pytest.raises(ValidationFailed, match="승인되지 않았습니다"):  # the quit tid cannot be approved
            pay_link(session, link.code, pg_token="forged", attempt=first.attempt, router=router)
        assert session.get(PaymentLink, link.id).status == "failed"
        back = _return_params(state.customer_pays(second.tid))
        order = pay_link(
            session, link.code, pg_token=back["pg_token"], attempt=back["attempt"], router=router
        )
        assert order.total_amount == 21_000
        # a late fail_url for the first attempt changes nothing on a paid link
        assert (
            return_from_gateway(session, link.code, "fail", attempt=first.attempt, router=router).status
            == "paid"
        )
        assert _events(session, link.id) == [
            "create",
            "opened",
            "ready",
            "cancelled",
            "ready",
            "failed",
            "approved",
        ]
        assert session.exec(select(Payment)).one().gateway_tid == second.tid


def test_a_fail_return_for_a_payment_kakaopay_approved_is_not_marked_failed(engine, actors):
    state = KakaoPayState()
    fake = FakeGateway(state.answers())
    customer_id = _customer(engine)
    with serve(fake) as url, Session(engine, expire_on_commit=False) as session:
        router = _router(url)
        link = create_payment_link(
            session, actors["cs"], item_name="세럼", amount=21_000, customer_id=customer_id, router=router
        )
        start = start_payment(session, link.code, router=router)
        state.payments[start.tid]["status"] = "SUCCESS_PAYMENT"  # approved elsewhere (another tab)
        assert (
            return_from_gateway(session, link.code, "fail", attempt=start.attempt, router=router).status
            != "failed"
        )


def test_a_timed_out_approve_is_settled_by_the_order_lookup_not_a_second_approve(engine, actors, monkeypatch):
    state = KakaoPayState()
    fake = FakeGateway(state.answers(), slow_seconds=0.6)
    customer_id = _customer(engine)
    with serve(fake) as url:
        router = _router(url)
        with Session(engine, expire_on_commit=False) as session:
            link = create_payment_link(
                session, actors["cs"], item_name="A", amount=7_000, customer_id=customer_id, router=router
            )
            start = start_payment(session, link.code, router=router)
            back = _return_params(state.customer_pays(start.tid))
            fake.plan(APPROVE_PATH, "slow")  # KakaoPay approves, the answer comes after our read timeout
            first = pay_link(  # the tid is looked up at once: paid
                session, link.code, pg_token=back["pg_token"], attempt=back["attempt"], router=router
            )
            again = pay_link(  # the customer reloads: the same order, no second approve
                session, link.code, pg_token=back["pg_token"], attempt=back["attempt"], router=router
            )
            assert first.id == again.id
        monkeypatch.setattr("core.payments.jobs._router", lambda engine: router)
        assert reconcile_payments(engine, clock.now())["paid"] == 0  # nothing left to settle
    assert fake.done.count(APPROVE_PATH) == 1 and ORDER_PATH in fake.done
    with Session(engine) as session:
        order = session.exec(select(Order)).one()
        assert order.total_amount == 7_000
        assert session.exec(select(Payment)).one().status == "approved"


def test_two_returns_at_once_send_one_approve(engine, actors):
    """MockTransport: while the first approve is in flight, a second return (reload, second tab) arrives."""
    state = KakaoPayState()
    customer_id = _customer(engine)
    approves: list[dict[str, Any]] = []
    inner: list[Exception | Order] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert request.headers["Authorization"] == "SECRET_KEY DEV_SECRET"
        if request.url.path == APPROVE_PATH:
            approves.append(body)
            with Session(engine, expire_on_commit=False) as other:
                try:
                    inner.append(
                        pay_link(
                            other, link.code, pg_token=body["pg_token"], attempt=start.attempt, router=router
                        )
                    )
                except ValidationFailed as exc:
                    inner.append(exc)
        try:
            return httpx.Response(200, json=state.answers()[request.url.path](request.url.path, body))
        except GatewayRefusal as refused:
            return httpx.Response(400, json=refused.body)

    router = _router("https://open-api.kakaopay.com", transport=httpx.MockTransport(handler))
    with Session(engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, actors["cs"], item_name="A", amount=9_000, customer_id=customer_id, router=router
        )
        start = start_payment(session, link.code, router=router)
        back = _return_params(state.customer_pays(start.tid))
        order = pay_link(
            session, link.code, pg_token=back["pg_token"], attempt=back["attempt"], router=router
        )
    assert len(approves) == 1
    assert approves[0]["tid"] == start.tid and approves[0]["partner_order_id"] == f"PL-{link.code}"
    assert isinstance(inner[0], ValidationFailed) and "확인 중" in str(inner[0])
    assert order.total_amount == 9_000


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="<html>maintenance</html>"), "시작할 수 없습니다"),
        (httpx.Response(200, json={"tid": "T1"}), "시작할 수 없습니다"),  # no redirect URL
        (httpx.Response(400, json={"error_code": -2, "error_message": "invalid amount"}), "invalid amount"),
    ],
)
def test_a_bad_ready_answer_is_a_clear_error_and_the_link_stays_payable(
    sqlite_engine, sqlite_actors, answer, message
):
    router = _router("https://kp.test", transport=httpx.MockTransport(lambda _request: answer))
    customer_id = _customer(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, sqlite_actors["cs"], item_name="A", amount=1_000, customer_id=customer_id, router=router
        )
        with pytest.raises(ValidationFailed, match=message):
            start_payment(session, link.code, router=router)
        payment = session.exec(select(Payment)).one()
        assert (payment.status, payment.gateway_tid) == ("ready", None)
        assert session.get(PaymentLink, link.id).status == "created"


def test_the_worker_follows_kakaopays_page_into_the_funnel(engine, actors, monkeypatch):
    """No return URL is called when the customer picks a method or just closes KakaoPay's window."""
    state = KakaoPayState()
    fake = FakeGateway(state.answers())
    customer_id = _customer(engine)
    monkeypatch.setattr("core.payments.jobs._router", lambda engine: router)
    with serve(fake) as url:
        router = _router(url)
        with Session(engine, expire_on_commit=False) as session:
            link = create_payment_link(
                session, actors["cs"], item_name="A", amount=3_000, customer_id=customer_id, router=router
            )
            start = start_payment(session, link.code, router=router)
        state.payments[start.tid]["status"] = "SELECT_METHOD"
        assert reconcile_payments(engine, clock.now())["links_followed"] == 1
        assert reconcile_payments(engine, clock.now())["links_followed"] == 0  # once per change
        state.payments[start.tid]["status"] = "QUIT_PAYMENT"
        assert reconcile_payments(engine, clock.now())["links_followed"] == 1
    with Session(engine) as session:
        assert session.get(PaymentLink, link.id).status == "quit"
        assert _events(session, link.id)[-2:] == ["method_selected", "cancelled"]
