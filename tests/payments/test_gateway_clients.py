"""KakaoPay and Toss clients against the documented request/response shapes (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest

from core.config import ConfigError, load_settings
from core.payments.gateways.base import (
    AlreadyProcessed,
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    ReadyRequest,
    RetriablePaymentError,
)
from core.payments.gateways.kakaopay import KakaoPayGateway
from core.payments.gateways.registry import UnknownGateway, get_gateway
from core.payments.gateways.toss import TossGateway

READY = {
    "tid": "T1234567890123456789",
    "next_redirect_pc_url": "https://pay/pc",
    "next_redirect_mobile_url": "https://pay/m",
    "next_redirect_app_url": "https://pay/app",
    "created_at": "2026-11-23T10:00:00",
}
APPROVE = {
    "aid": "A1234567890123456789",
    "tid": READY["tid"],
    "cid": "TC0ONETIME",
    "sid": None,
    "partner_order_id": "O1",
    "partner_user_id": "u1",
    "payment_method_type": "MONEY",
    "amount": {"total": 33000, "tax_free": 0, "vat": 3000, "point": 0, "discount": 0, "green_deposit": 0},
    "item_name": "수분크림",
    "quantity": 1,
    "created_at": "2026-11-23T10:00:00",
    "approved_at": "2026-11-23T10:01:00",
}
ORDER = {
    "tid": READY["tid"],
    "cid": "TC0ONETIME",
    "status": "PART_CANCEL_PAYMENT",
    "amount": {"total": 33000, "tax_free": 0, "vat": 3000},
    "canceled_amount": {"total": 3000},
    "cancel_available_amount": {"total": 30000},
    "payment_action_details": [
        {"aid": "A1", "approved_at": "2026-11-23T10:01:00", "amount": 33000, "payment_action_type": "PAYMENT"}
    ],
}
CANCEL = {
    "tid": READY["tid"],
    "status": "PART_CANCEL_PAYMENT",
    "approved_cancel_amount": {"total": 3000},
    "canceled_amount": {"total": 3000},
    "cancel_available_amount": {"total": 30000},
    "canceled_at": "2026-11-23T11:00:00",
}


class Recorder:
    """A MockTransport handler answering from a script and remembering every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)

    @property
    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


def kakao(*answers: httpx.Response) -> tuple[KakaoPayGateway, Recorder]:
    recorder = Recorder(*answers)
    gateway = KakaoPayGateway(
        secret_key="DEVSECRET",
        base_url="https://kp.test",
        cid="TC0ONETIME",
        subscription_cid="TCSUBSCRIP",
        transport=httpx.MockTransport(recorder),
    )
    return gateway, recorder


def test_kakaopay_ready_sends_documented_fields_and_reads_redirects():
    gateway, rec = kakao(httpx.Response(200, json=READY))
    result = gateway.ready(ReadyRequest(
        partner_order_id="O1",
        partner_user_id="a1b2c3",
        item_name="수분크림",
        quantity=1,
        total_amount=33000,
        tax_free_amount=0,
        approval_url="https://shop/ok",
        cancel_url="https://shop/cancel",
        fail_url="https://shop/fail",
    ))
    request = rec.requests[0]
    assert request.url == "https://kp.test/online/v1/payment/ready"
    assert request.headers["Authorization"] == "SECRET_KEY DEVSECRET"
    assert request.headers["Content-Type"] == "application/json"
    body = rec.last_json
    assert body == {
        "cid": "TC0ONETIME",
        "partner_order_id": "O1",
        "partner_user_id": "a1b2c3",
        "item_name": "수분크림",
        "quantity": 1,
        "total_amount": 33000,
        "tax_free_amount": 0,
        "vat_amount": 3000,
        "approval_url": "https://shop/ok",
        "cancel_url": "https://shop/cancel",
        "fail_url": "https://shop/fail",
    }
    assert result.tid == READY["tid"] and result.redirect_mobile_url == "https://pay/m"
    assert result.created_at == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # KST without offset


def test_kakaopay_recurring_ready_uses_the_subscription_cid():
    gateway, rec = kakao(httpx.Response(200, json=READY))
    gateway.ready(ReadyRequest(
        partner_order_id="O1",
        partner_user_id="u",
        item_name="x",
        quantity=1,
        total_amount=1000,
        tax_free_amount=0,
        approval_url="a",
        cancel_url="c",
        fail_url="f",
        recurring=True,
    ))
    assert rec.last_json["cid"] == "TCSUBSCRIP"


def test_kakaopay_approve_reads_amounts_method_and_times():
    gateway, rec = kakao(httpx.Response(200, json={**APPROVE, "sid": "S1234567890123456789"}))
    result = gateway.approve(ApproveRequest(tid=READY["tid"], partner_order_id="O1", partner_user_id="u1", pg_token="tok"))
    assert rec.requests[0].url.path == "/online/v1/payment/approve"
    assert rec.last_json == {
        "cid": "TC0ONETIME",
        "tid": READY["tid"],
        "partner_order_id": "O1",
        "partner_user_id": "u1",
        "pg_token": "tok",
    }
    assert (result.total_amount, result.vat_amount, result.method) == (33000, 3000, "MONEY")
    assert result.sid == "S1234567890123456789" and result.aid == APPROVE["aid"]
    assert result.approved_at == datetime(2026, 11, 23, 1, 1, tzinfo=UTC)


def test_kakaopay_order_lookup_reads_totals():
    gateway, rec = kakao(httpx.Response(200, json=ORDER))
    found = gateway.lookup(tid=READY["tid"])
    assert rec.requests[0].url.path == "/online/v1/payment/order"
    assert rec.last_json == {"cid": "TC0ONETIME", "tid": READY["tid"]}
    assert (found.status, found.total_amount, found.canceled_amount, found.cancel_available_amount) == (
        "PART_CANCEL_PAYMENT",
        33000,
        3000,
        30000,
    )


def test_kakaopay_cancel_sends_vat_and_reads_running_totals():
    gateway, rec = kakao(httpx.Response(200, json=CANCEL))
    result = gateway.cancel(CancelRequest(
        tid=READY["tid"], cancel_amount=3000, cancel_tax_free_amount=0, idempotency_key="k"
    ))
    assert rec.requests[0].url.path == "/online/v1/payment/cancel"
    assert rec.last_json == {
        "cid": "TC0ONETIME",
        "tid": READY["tid"],
        "cancel_amount": 3000,
        "cancel_tax_free_amount": 0,
        "cancel_vat_amount": 273,
    }
    assert (result.approved_cancel_amount, result.canceled_amount, result.cancel_available_amount) == (
        3000,
        3000,
        30000,
    )


def test_kakaopay_subscription_charge_and_inactive():
    gateway, rec = kakao(
        httpx.Response(200, json={**APPROVE, "cid": "TCSUBSCRIP", "amount": {"total": 39000, "vat": 3545}}),
        httpx.Response(
            200,
            json={
                "cid": "TCSUBSCRIP",
                "sid": "S1",
                "status": "INACTIVE",
                "inactivated_at": "2026-11-23T12:00:00",
            },
        ),
    )
    result = gateway.charge(ChargeRequest(
        instrument_ref="S1",
        partner_order_id="O2",
        partner_user_id="u1",
        item_name="월회비",
        total_amount=39000,
        tax_free_amount=0,
        idempotency_key="k",
    ))
    assert rec.requests[0].url.path == "/online/v1/payment/subscription"
    assert rec.last_json["sid"] == "S1" and rec.last_json["cid"] == "TCSUBSCRIP"
    assert rec.last_json["total_amount"] == 39000
    assert result.total_amount == 39000
    gateway.deactivate(instrument_ref="S1")
    assert rec.requests[1].url.path == "/online/v1/payment/manage/subscription/inactive"
    assert rec.last_json == {"cid": "TCSUBSCRIP", "sid": "S1"}


KAKAO_ERRORS = [
    (
        httpx.Response(
            400,
            json={
                "error_code": -780,
                "error_message": "approval failure!",
                "extras": {"method_result_code": "USER_LOCKED", "method_result_message": "잠김"},
            },
        ),
        RetriablePaymentError,
        "USER_LOCKED",
    ),
    (
        httpx.Response(
            400,
            json={
                "error_code": -780,
                "error_message": "approval failure!",
                "extras": {"method_result_code": "CARD_DECLINED", "method_result_message": "거절"},
            },
        ),
        PermanentPaymentError,
        "CARD_DECLINED",
    ),
    # A refusal that only makes sense if an earlier approve went through: looked up, never "failed".
    (
        httpx.Response(400, json={"error_code": -702, "error_message": "payment already done"}),
        AlreadyProcessed,
        "-702",
    ),
    (
        httpx.Response(400, json={"error_code": -780, "error_message": "pg_token already used"}),
        AlreadyProcessed,
        "-780",
    ),
    # Rate limited: not processed, retriable, whatever the body.
    (httpx.Response(429, json={"error_code": -9, "error_message": "too many"}), RetriablePaymentError, "HTTP_429"),
    (httpx.Response(429, text="<html>slow down</html>"), RetriablePaymentError, "HTTP_429"),
    # Issue 13: once the approve may have reached KakaoPay, a 5xx of any body is an unknown outcome.
    (httpx.Response(500, json={"error_code": -9, "error_message": "internal"}), PaymentOutcomeUnknown, "HTTP_500"),
    (httpx.Response(502, text="<html>bad gateway</html>"), PaymentOutcomeUnknown, "HTTP_502"),
    (httpx.Response(503, text="<html>maintenance</html>"), PaymentOutcomeUnknown, "HTTP_503"),
    (httpx.Response(504, text=""), PaymentOutcomeUnknown, "HTTP_504"),
    # A 4xx that is not KakaoPay's own error body (a proxy's page) is no refusal either.
    (httpx.Response(401, text="<html>nope</html>"), PaymentOutcomeUnknown, "HTTP_401"),
    (httpx.Response(200, text="<html>proxy</html>"), PaymentOutcomeUnknown, "MALFORMED"),
    (httpx.Response(200, text=""), PaymentOutcomeUnknown, "MALFORMED"),
    (httpx.Response(200, text="{not json"), PaymentOutcomeUnknown, "MALFORMED"),
    (httpx.Response(200, json=[APPROVE]), PaymentOutcomeUnknown, "MALFORMED"),  # a JSON list
    (httpx.Response(200, json="SUCCESS_PAYMENT"), PaymentOutcomeUnknown, "MALFORMED"),  # a JSON string
    (httpx.Response(200, json={**APPROVE, "tid": None}), PaymentOutcomeUnknown, "MISSING_FIELDS"),
    (httpx.Response(200, json={"tid": "T1"}), PaymentOutcomeUnknown, "MISSING_FIELDS"),
    (
        httpx.Response(200, json={"tid": "T1", "aid": "A1", "amount": {}}),
        PaymentOutcomeUnknown,
        "MISSING_FIELDS",
    ),
    (
        httpx.Response(200, json={**APPROVE, "amount": {"total": "삼만원"}}),
        PaymentOutcomeUnknown,
        "UNREADABLE",
    ),
]


@pytest.mark.parametrize(("answer", "error", "code"), KAKAO_ERRORS)
def test_kakaopay_approve_answers_are_classified_by_whether_money_may_have_moved(answer, error, code):
    gateway, _ = kakao(answer)
    with pytest.raises(error) as caught:
        gateway.approve(ApproveRequest(tid="T1", partner_order_id="O1", partner_user_id="u1", pg_token="tok"))
    assert type(caught.value) is error and caught.value.code == code


def test_kakaopay_read_of_html_is_an_error_not_unknown():
    gateway, _ = kakao(httpx.Response(200, text="<!DOCTYPE html><p>"))
    with pytest.raises(RetriablePaymentError, match="HTML"):
        gateway.lookup(tid="T1")


def test_kakaopay_transport_errors():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    for handler, error in ((refuse, RetriablePaymentError), (slow, PaymentOutcomeUnknown)):
        gateway = KakaoPayGateway(
            secret_key="k", base_url="https://kp.test", transport=httpx.MockTransport(handler)
        )
        with pytest.raises(error):
            gateway.charge(ChargeRequest(
                instrument_ref="S1",
                partner_order_id="O",
                partner_user_id="u",
                item_name="x",
                total_amount=1000,
                tax_free_amount=0,
                idempotency_key="k",
            ))


def test_kakaopay_needs_a_secret_key():
    with pytest.raises(ConfigError, match="KAKAOPAY_SECRET_KEY"):
        get_gateway("kakaopay", settings=load_settings({}))


def test_unknown_gateway_is_a_clear_error():
    with pytest.raises(UnknownGateway, match="paypal"):
        get_gateway("paypal", settings=load_settings({}))
    with pytest.raises(ConfigError, match="PAYMENT_GATEWAY"):
        load_settings({"PAYMENT_GATEWAY": "paypal"})


TOSS_PAYMENT = {
    "paymentKey": "pk_1",
    "orderId": "O2",
    "status": "DONE",
    "totalAmount": 39000,
    "balanceAmount": 39000,
    "taxFreeAmount": 0,
    "vat": 3545,
    "method": "카드",
    "approvedAt": "2026-11-23T10:00:00+09:00",
    "lastTransactionKey": "tx1",
    "cancels": None,
}


def toss(*answers: httpx.Response) -> tuple[TossGateway, Recorder]:
    recorder = Recorder(*answers)
    return TossGateway(
        secret_key="test_sk", base_url="https://toss.test", transport=httpx.MockTransport(recorder)
    ), recorder


def test_toss_billing_charge_sends_idempotency_key_and_basic_auth():
    gateway, rec = toss(httpx.Response(200, json=TOSS_PAYMENT))
    result = gateway.charge(ChargeRequest(
        instrument_ref="bk_1",
        partner_order_id="O2",
        partner_user_id="cust_opaque",
        item_name="월회비",
        total_amount=39000,
        tax_free_amount=0,
        idempotency_key="charge:1",
    ))
    request = rec.requests[0]
    assert request.method == "POST" and request.url == "https://toss.test/v1/billing/bk_1"
    assert request.headers["Idempotency-Key"] == "charge:1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"test_sk:").decode()
    assert rec.last_json == {
        "customerKey": "cust_opaque",
        "amount": 39000,
        "orderId": "O2",
        "orderName": "월회비",
        "taxFreeAmount": 0,
    }
    assert (result.tid, result.total_amount, result.method, result.vat_amount) == (
        "pk_1",
        39000,
        "CARD",
        3545,
    )
    assert result.approved_at == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_toss_cancel_and_lookups():
    canceled = {
        **TOSS_PAYMENT,
        "status": "PARTIAL_CANCELED",
        "balanceAmount": 29000,
        "cancels": [{"cancelAmount": 10000, "canceledAt": "2026-11-23T11:00:00+09:00"}],
    }
    gateway, rec = toss(
        httpx.Response(200, json=canceled),
        httpx.Response(200, json=canceled),
        httpx.Response(404, json={"code": "NOT_FOUND_PAYMENT", "message": "없음"}),
    )
    result = gateway.cancel(CancelRequest(
        tid="pk_1",
        cancel_amount=10000,
        cancel_tax_free_amount=0,
        idempotency_key="refund:1",
        reason="고객 변심",
    ))
    assert rec.requests[0].url.path == "/v1/payments/pk_1/cancel"
    assert rec.requests[0].headers["Idempotency-Key"] == "refund:1"
    assert rec.last_json == {"cancelReason": "고객 변심", "cancelAmount": 10000, "taxFreeAmount": 0}
    assert (
        result.status,
        result.approved_cancel_amount,
        result.canceled_amount,
        result.cancel_available_amount,
    ) == ("PART_CANCEL_PAYMENT", 10000, 10000, 29000)
    found = gateway.find_by_order(partner_order_id="O2")
    assert rec.requests[1].method == "GET" and rec.requests[1].url.path == "/v1/payments/orders/O2"
    assert found is not None and found.canceled_amount == 10000
    assert gateway.find_by_order(partner_order_id="missing") is None


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            httpx.Response(400, json={"code": "ALREADY_PROCESSED_PAYMENT", "message": "이미 처리"}),
            AlreadyProcessed,
        ),
        (
            httpx.Response(400, json={"code": "DUPLICATED_ORDER_ID", "message": "중복 주문번호"}),
            AlreadyProcessed,
        ),
        (
            httpx.Response(400, json={"code": "REJECT_CARD_PAYMENT", "message": "한도초과"}),
            PermanentPaymentError,
        ),
        (httpx.Response(500, json={"code": "PROVIDER_ERROR", "message": "일시적"}), PaymentOutcomeUnknown),
        (httpx.Response(429, json={"code": "TOO_MANY_REQUESTS", "message": "잠시 후"}), RetriablePaymentError),
        (httpx.Response(502, text="<html>bad gateway</html>"), PaymentOutcomeUnknown),
        (httpx.Response(200, json=[TOSS_PAYMENT]), PaymentOutcomeUnknown),
        (httpx.Response(200, json={**TOSS_PAYMENT, "status": "IN_PROGRESS"}), PaymentOutcomeUnknown),
        (httpx.Response(200, json={**TOSS_PAYMENT, "totalAmount": 1}), PaymentOutcomeUnknown),
        (
            httpx.Response(409, json={"code": "IDEMPOTENT_REQUEST_PROCESSING", "message": "처리 중"}),
            RetriablePaymentError,
        ),
        (httpx.Response(200, text=""), PaymentOutcomeUnknown),
        (httpx.Response(200, json={"paymentKey": "pk"}), PaymentOutcomeUnknown),
    ],
)
def test_toss_errors_are_classified(answer, error):
    gateway, _ = toss(answer)
    with pytest.raises(error) as caught:
        gateway.charge(ChargeRequest(
            instrument_ref="bk",
            partner_order_id="O",
            partner_user_id="u",
            item_name="x",
            total_amount=39000,
            tax_free_amount=0,
            idempotency_key="k",
        ))
    assert type(caught.value) is error


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(500, json={"error_code": -9, "error_message": "internal"}), RetriablePaymentError),
        (httpx.Response(502, text="<html>bad gateway</html>"), RetriablePaymentError),
        (httpx.Response(429, text=""), RetriablePaymentError),
        (httpx.Response(200, json=[ORDER]), RetriablePaymentError),
        (httpx.Response(200, json="SUCCESS_PAYMENT"), RetriablePaymentError),
        (httpx.Response(401, text="<html>nope</html>"), PermanentPaymentError),
    ],
)
def test_a_read_moves_no_money_so_a_5xx_or_unreadable_lookup_may_be_retried(answer, error):
    gateway, _ = kakao(answer)
    with pytest.raises(error) as caught:
        gateway.lookup(tid="T1")
    assert type(caught.value) is error


def test_a_cancel_answered_with_another_cancelled_amount_is_unknown_with_the_reason():
    gateway, _ = kakao(httpx.Response(200, json={**CANCEL, "approved_cancel_amount": {"total": 6000}}))
    with pytest.raises(PaymentOutcomeUnknown) as caught:
        gateway.cancel(CancelRequest(tid=READY["tid"], cancel_amount=3000, cancel_tax_free_amount=0, idempotency_key="k"))
    assert caught.value.code == "AMOUNT_MISMATCH"
    assert "3,000원" in str(caught.value) and "6,000원" in str(caught.value)


def test_a_cancel_and_lookup_use_the_cid_the_payment_was_made_with():
    gateway, rec = kakao(httpx.Response(200, json=CANCEL), httpx.Response(200, json=ORDER))
    gateway.cancel(CancelRequest(
        tid=READY["tid"], cancel_amount=3000, cancel_tax_free_amount=0, idempotency_key="k", cid="TCSUBSCRIP"
    ))
    assert rec.last_json["cid"] == "TCSUBSCRIP"
    gateway.lookup(tid=READY["tid"], cid="TCSUBSCRIP")
    assert rec.last_json == {"cid": "TCSUBSCRIP", "tid": READY["tid"]}
