"""POST /hooks/toss through server.app, with the Toss API played by a real HTTP server on 127.0.0.1
(tests/payments/fake_gateway_server.py) that misbehaves as Toss's proxies do (HTML 502, reset).

Rules (CONTRACTS.md "Toss Payments webhooks", issue 17): the body is a hint, the lookup is the truth;
idempotent (a storm of 1,000 identical events is one lookup and one effect); a state we did not
expect opens one 결제 오류 inquiry; a payment we never made gets 200 and no write; a failed lookup is
not a 200 (Toss must send again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from starlette.testclient import TestClient

from core.models import Customer, InboundRequest, Inquiry, Order, OrderStatus, Payment, PaymentStatus, Refund
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.toss import TossGateway
from tests.payments.fake_gateway_server import FakeGateway, serve
from web.hooks import toss

KEY = "tviva20261120100000AbCd1"
LOOKUP = f"/v1/payments/{KEY}"


class TossPayment:
    """What the Toss API says about the payment (changed by the test)."""

    def __init__(self) -> None:
        self.status, self.total, self.balance = "DONE", 39000, 39000

    def __call__(self, _path: str, _body: dict[str, Any]) -> dict[str, Any]:
        return {"paymentKey": KEY, "orderId": "T-0042", "status": self.status, "totalAmount": self.total,
                "balanceAmount": self.balance, "approvedAt": "2026-11-20T09:30:00+09:00", "method": "카드"}


@pytest.fixture
def toss_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGateway, TossPayment]]:
    state = TossPayment()
    fake = FakeGateway({LOOKUP: state})
    with serve(fake) as url:
        gateway = TossGateway(secret_key="test_sk_abc", base_url=url)
        monkeypatch.setattr(toss, "router", lambda: PaymentRouter(gateway, sleep=lambda _s: None,
                                                                  resolve=lambda _n: gateway))
        yield fake, state


def make_payment(engine: Engine, status: str = PaymentStatus.APPROVED, refunded: int = 0) -> int:
    with Session(engine) as s:
        customer = Customer(name="이토스", phone="010-3333-4444")
        s.add(customer)
        s.flush()
        order = Order(order_number="T-0042", customer_id=customer.id, total_amount=39000, status=OrderStatus.PAID)
        s.add(order)
        s.flush()
        payment = Payment(order_id=order.id, customer_id=customer.id, gateway="toss", gateway_tid=KEY,
                          amount=39000, refunded_amount=refunded, status=status, idempotency_key="pay:T-0042")
        s.add(payment)
        s.commit()
        return payment.id  # type: ignore[return-value]


def event(status: str = "DONE", created: str = "2026-11-20T10:00:00.000", key: str = KEY,
          event_type: str = "PAYMENT_STATUS_CHANGED") -> dict[str, Any]:
    return {"eventType": event_type, "createdAt": created,
            "data": {"paymentKey": key, "orderId": "T-0042", "status": status}}


def post(client: TestClient, body: Any, raw: bytes | None = None):
    return client.post(toss.PATH, content=raw if raw is not None else json.dumps(body).encode(),
                       headers={"Content-Type": "application/json"})


def inquiries(engine: Engine) -> list[Inquiry]:
    with Session(engine) as s:
        return list(s.exec(select(Inquiry)).all())


def outcomes(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.exec(select(InboundRequest.outcome).order_by(col(InboundRequest.id))).all())


def test_an_unknown_outcome_is_settled_by_the_lookup_not_the_body(client: TestClient, engine: Engine,
                                                                  toss_api: tuple[FakeGateway, TossPayment]) -> None:
    fake, state = toss_api
    payment_id = make_payment(engine, status=PaymentStatus.UNKNOWN)
    state.status = "DONE"
    response = post(client, event("ABORTED"))  # the body says aborted; Toss's API says done
    assert response.status_code == 200, response.text
    with Session(engine) as s:
        assert s.get(Payment, payment_id).status == PaymentStatus.APPROVED
    assert fake.seen and all(path == LOOKUP for path in fake.seen)
    assert fake.headers[0]["Authorization"].startswith("Basic ")
    assert outcomes(engine) == ["reconciled"]


def test_an_agreeing_state_changes_nothing(client: TestClient, engine: Engine,
                                          toss_api: tuple[FakeGateway, TossPayment]) -> None:
    make_payment(engine)
    assert post(client, event("DONE")).status_code == 200
    assert inquiries(engine) == [] and outcomes(engine) == ["consistent"]


def test_a_cancel_made_outside_channeldesk_opens_one_payment_error_inquiry(
        client: TestClient, engine: Engine, toss_api: tuple[FakeGateway, TossPayment]) -> None:
    fake, state = toss_api
    payment_id = make_payment(engine)
    state.status, state.balance = "CANCELED", 0
    assert post(client, event("CANCELED", event_type="CANCEL_STATUS_CHANGED")).status_code == 200
    [inquiry] = inquiries(engine)
    assert (inquiry.type, inquiry.payment_id, inquiry.source) == ("payment_error", payment_id, "toss_webhook")
    with Session(engine) as s:
        assert s.get(Payment, payment_id).refunded_amount == 0  # the books are not rewritten by a hint
        body = s.exec(select(col(Inquiry.subject))).one()
    assert "전액 취소" in body
    # The same event again (Toss resends): no lookup, nothing new.
    lookups = len(fake.seen)
    assert post(client, event("CANCELED", event_type="CANCEL_STATUS_CHANGED")).status_code == 200
    assert len(fake.seen) == lookups and len(inquiries(engine)) == 1
    # A later event about the same state: looked up again, still one inquiry.
    assert post(client, event("CANCELED", "2026-11-20T10:05:00.000", event_type="CANCEL_STATUS_CHANGED")).status_code == 200
    assert len(inquiries(engine)) == 1
    assert outcomes(engine) == ["mismatch", "duplicate", "mismatch"]


def test_a_refund_in_flight_is_left_to_the_reconciliation(client: TestClient, engine: Engine,
                                                           toss_api: tuple[FakeGateway, TossPayment]) -> None:
    _fake, state = toss_api
    payment_id = make_payment(engine)
    with Session(engine) as s:
        s.add(Refund(payment_id=payment_id, amount=39000, reason="고객 요청", status="unknown", idempotency_key="r1"))
        s.commit()
    state.status, state.balance = "CANCELED", 0
    assert post(client, event("CANCELED")).status_code == 200
    assert inquiries(engine) == [] and outcomes(engine) == ["pending_refund"]


def test_a_payment_we_never_made_gets_200_and_no_write(client: TestClient, engine: Engine,
                                                      toss_api: tuple[FakeGateway, TossPayment]) -> None:
    fake, _state = toss_api
    make_payment(engine)
    with Session(engine) as s:
        before = [s.exec(select(func.count()).select_from(t)).one() for t in (Payment, Inquiry, Customer)]
    response = post(client, event(key="tviva_someone_elses_key"))
    assert response.status_code == 200
    with Session(engine) as s:
        assert [s.exec(select(func.count()).select_from(t)).one() for t in (Payment, Inquiry, Customer)] == before
    assert fake.seen == [] and outcomes(engine) == ["unknown_payment"]


@pytest.mark.parametrize("behaviour", ["html", "500", "drop"])
def test_a_failed_lookup_is_not_acknowledged_and_the_resend_settles_it(
        client: TestClient, engine: Engine, toss_api: tuple[FakeGateway, TossPayment], behaviour: str) -> None:
    fake, _state = toss_api
    payment_id = make_payment(engine, status=PaymentStatus.UNKNOWN)
    fake.plan(LOOKUP, behaviour, behaviour, behaviour)
    assert post(client, event()).status_code == 503
    with Session(engine) as s:
        assert s.get(Payment, payment_id).status == PaymentStatus.UNKNOWN
    fake.script[LOOKUP].clear()  # the API answers again (a read that reset is not retried by the router)
    assert post(client, event()).status_code == 200  # Toss's resend
    with Session(engine) as s:
        assert s.get(Payment, payment_id).status == PaymentStatus.APPROVED
    assert outcomes(engine) == ["lookup_failed", "reconciled"]


def test_a_storm_of_1000_identical_events_is_one_lookup_and_one_effect(
        client: TestClient, engine: Engine, toss_api: tuple[FakeGateway, TossPayment]) -> None:
    fake, state = toss_api
    make_payment(engine)
    state.status, state.balance = "PARTIAL_CANCELED", 9000
    statuses = {post(client, event("PARTIAL_CANCELED")).status_code for _ in range(1000)}
    assert statuses == {200}
    assert len(fake.seen) == 1 and len(inquiries(engine)) == 1
    found = outcomes(engine)
    assert len(found) == 1000 and found[0] == "mismatch" and set(found[1:]) == {"duplicate"}


@pytest.mark.parametrize(
    ("raw", "status", "outcome"),
    [
        (b"{", 400, "bad_request"),
        (b"", 400, "bad_request"),
        (b"[]", 400, "bad_request"),
        (b"\xff\xfe", 400, "bad_request"),
        (json.dumps({"eventType": "PAYMENT_STATUS_CHANGED"}).encode(), 400, "bad_request"),
        (json.dumps({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": ""}}).encode(), 400, "bad_request"),
        (json.dumps({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": 12}}).encode(), 400, "bad_request"),
        (json.dumps(event(key="k" * 201)).encode(), 400, "bad_request"),
        (json.dumps(event(key="../../v1/billing/x")).encode(), 200, "unknown_payment"),
        (json.dumps({"eventType": "DEPOSIT_CALLBACK", "data": {}}).encode(), 200, "ignored"),
        (json.dumps(event() | {"pad": "x" * 70_000}).encode(), 413, "too_large"),
    ],
)
def test_bad_bodies_get_clear_answers(client: TestClient, engine: Engine, toss_api: tuple[FakeGateway, TossPayment],
                                      raw: bytes, status: int, outcome: str) -> None:
    fake, _state = toss_api
    response = post(client, None, raw=raw)
    assert response.status_code == status
    assert outcomes(engine) == [outcome] and fake.seen == [] and inquiries(engine) == []
