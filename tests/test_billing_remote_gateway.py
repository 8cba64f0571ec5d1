"""Billing charges a remote gateway concurrently: KakaoPay's client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from datetime import date
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from core import billing, clock
from core.accounts.actor import Actor
from core.models import Payment, Role, SubscriptionChargeAttempt
from core.payments.gateways.kakaopay import KakaoPayGateway
from core.payments.gateways.router import PaymentRouter
from tests.billing_support import kst, make_subscription
from tests.payments.fake_gateway_server import FakeGateway, serve

OWNER = Actor(None, "사장님", Role.OWNER)
SUBSCRIPTION_PATH = "/online/v1/payment/subscription"
LATENCY = 0.05  # what a real gateway's answer takes; billing must not wait for them one by one


class InFlight:
    """Counts the charge requests the server is answering at the same time."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.orders: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, _path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.orders.append(body["partner_order_id"])
        time.sleep(LATENCY)  # the server's own latency, not a wait in the test
        with self._lock:
            self.now -= 1
        return {
            "aid": f"A{len(self.orders):019d}",
            "tid": f"T{body['partner_order_id']}"[:20],
            "cid": body["cid"],
            "sid": body["sid"],
            "payment_method_type": "CARD",
            "amount": {"total": body["total_amount"], "tax_free": 0, "vat": 0},
            "approved_at": "2027-03-01T09:00:01",
        }


def test_charges_overlap_on_a_remote_gateway_and_each_is_recorded_once(sqlite_engine: Engine) -> None:
    subscriptions = [
        make_subscription(sqlite_engine, OWNER, start=date(2027, 3, 1), instrument_ref=f"SID{i:03d}")
        for i in range(24)
    ]
    answer = InFlight()
    with serve(FakeGateway({SUBSCRIPTION_PATH: answer})) as url:
        kakao = KakaoPayGateway(secret_key="k", base_url=url, timeout=httpx.Timeout(5.0, connect=1.0))
        with clock.frozen(kst("2027-03-01T09:00")):
            counts = billing.run_charges(sqlite_engine, clock.now(), gateway=PaymentRouter(kakao))
    assert counts["succeeded"] == len(subscriptions)
    assert answer.most > 1 and answer.most <= KakaoPayGateway.max_concurrent_charges
    assert sorted(answer.orders) == sorted(billing.order_number(s, date(2027, 3, 1)) for s in subscriptions)
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(Payment)).one() == len(subscriptions)
        attempts = session.exec(select(SubscriptionChargeAttempt)).all()
    assert {(a.gateway, a.outcome) for a in attempts} == {("kakaopay", "succeeded")}
