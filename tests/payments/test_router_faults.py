"""The failover router against real HTTP servers on 127.0.0.1 that go busy, 500, slow and silent."""

from __future__ import annotations

import httpx
import pytest

from core.payments.gateways.base import (
    CancelRequest,
    ChargeRequest,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
)
from core.payments.gateways.kakaopay import KakaoPayGateway
from core.payments.gateways.router import PaymentRouter, PrimaryUnavailable
from core.payments.gateways.toss import TossGateway
from tests.payments.fake_gateway_server import FakeGateway, serve

FAST = httpx.Timeout(0.3, connect=0.3)
SUB = "/online/v1/payment/subscription"


def kakao_answers() -> dict:
    def approval(_path, body):
        return {
            "aid": "A" * 20,
            "tid": "T" * 20,
            "cid": body["cid"],
            "payment_method_type": "CARD",
            "amount": {"total": body["total_amount"], "tax_free": 0, "vat": 0},
            "approved_at": "2026-11-23T10:00:00",
        }

    def cancel(_path, body):
        return {
            "tid": body["tid"],
            "status": "PART_CANCEL_PAYMENT",
            "approved_cancel_amount": {"total": 1000},
            "canceled_amount": {"total": 1000},
            "cancel_available_amount": {"total": 38000},
        }

    def order(_path, body):
        return {
            "tid": body["tid"],
            "status": "PART_CANCEL_PAYMENT",
            "amount": {"total": 39000},
            "canceled_amount": {"total": 1000},
            "cancel_available_amount": {"total": 38000},
        }

    return {SUB: approval, "/online/v1/payment/cancel": cancel, "/online/v1/payment/order": order}


def toss_answers() -> dict:
    def payment(_path, body):
        return {
            "paymentKey": "pk_backup",
            "orderId": "O1",
            "status": "DONE",
            "totalAmount": 39000,
            "balanceAmount": 39000,
            "method": "카드",
            "approvedAt": "2026-11-23T10:00:00+09:00",
        }

    return {"/v1/billing/bk_1": payment, "/v1/payments/orders/O1": payment}


def charge(router: PaymentRouter, log: list, instruments: dict):
    return router.charge(
        log,
        ChargeRequest(
            instrument_ref=next(iter(instruments.values())),
            partner_order_id="O1",
            partner_user_id="opaque",
            item_name="월회비",
            total_amount=39000,
            tax_free_amount=0,
            idempotency_key="charge:1",
        ),
        instruments=instruments,
    )


@pytest.fixture
def kakao_server():
    fake = FakeGateway(kakao_answers())
    with serve(fake) as url:
        yield fake, KakaoPayGateway(secret_key="k", base_url=url, timeout=FAST)


@pytest.fixture
def toss_server():
    fake = FakeGateway(toss_answers())
    with serve(fake) as url:
        yield fake, TossGateway(secret_key="k", base_url=url, timeout=FAST)


def no_sleep(_seconds: float) -> None:
    pass


def test_busy_then_ok_is_retried_with_backoff(kakao_server):
    fake, kakao = kakao_server
    fake.plan(SUB, "busy", "429")
    waits: list[float] = []
    log: list = []
    routed = charge(PaymentRouter(kakao, sleep=waits.append, backoff_seconds=0.1), log, {"kakaopay": "S1"})
    assert routed.gateway == "kakaopay" and fake.done == [SUB]
    assert waits == [0.1, 0.2]
    assert [e["decision"] for e in log] == ["retriable", "retriable", "ok"]


def test_slow_answer_is_unknown_and_never_charged_again(kakao_server):
    fake, kakao = kakao_server
    fake.plan(SUB, "slow")
    log: list = []
    with pytest.raises(PaymentOutcomeUnknown):
        charge(PaymentRouter(kakao, sleep=no_sleep), log, {"kakaopay": "S1"})
    assert fake.done == [SUB]  # charged once, and not sent again
    assert "unknown" in [e["decision"] for e in log] and "still_unknown" in [e["decision"] for e in log]


def test_dropped_answer_is_unknown_and_does_not_fail_over(kakao_server, toss_server):
    fake, kakao = kakao_server
    toss_fake, toss = toss_server
    fake.plan(SUB, "drop")
    with pytest.raises(PaymentOutcomeUnknown):
        charge(PaymentRouter(kakao, toss, sleep=no_sleep), [], {"kakaopay": "S1", "toss": "bk_1"})
    assert fake.done == [SUB] and toss_fake.seen == []


def test_hard_failure_fails_over_to_an_enrolled_backup(kakao_server, toss_server):
    fake, kakao = kakao_server
    toss_fake, toss = toss_server
    fake.plan(SUB, "busy", "429", "busy")
    log: list = []
    routed = charge(PaymentRouter(kakao, toss, sleep=no_sleep), log, {"kakaopay": "S1", "toss": "bk_1"})
    assert routed.gateway == "toss" and routed.result.tid == "pk_backup"
    assert fake.done == [] and toss_fake.done == ["/v1/billing/bk_1"]
    assert [e["decision"] for e in log] == ["retriable"] * 3 + ["failover", "ok"]


def test_no_backup_instrument_means_no_failover(kakao_server, toss_server):
    fake, kakao = kakao_server
    toss_fake, toss = toss_server
    fake.plan(SUB, "429", "busy", "429")
    log: list = []
    with pytest.raises(PrimaryUnavailable):
        charge(PaymentRouter(kakao, toss, sleep=no_sleep), log, {"kakaopay": "S1"})
    assert toss_fake.seen == [] and log[-1]["decision"] == "no_instrument_enrolled"


def test_a_decline_is_not_a_gateway_failure(toss_server):
    toss_fake, toss = toss_server

    def decline(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error_code": -780,
                "error_message": "approval failure!",
                "extras": {"method_result_code": "CARD_DECLINED", "method_result_message": "거절"},
            },
        )

    declining = KakaoPayGateway(secret_key="k", transport=httpx.MockTransport(decline))
    log: list = []
    with pytest.raises(PermanentPaymentError):
        charge(PaymentRouter(declining, toss, sleep=no_sleep), log, {"kakaopay": "S1", "toss": "bk_1"})
    assert toss_fake.seen == [] and [e["decision"] for e in log] == ["permanent"]


@pytest.mark.parametrize("behaviour", ["done_500", "done_html", "html200", "empty", "list", "tid_null", "drop"])
def test_a_5xx_or_unreadable_charge_answer_is_unknown_never_retried_nor_failed_over(
    kakao_server, toss_server, behaviour
):
    """Issue 13: the charge was performed, then a proxy answered badly: not charged again anywhere."""
    fake, kakao = kakao_server
    toss_fake, toss = toss_server
    fake.plan(SUB, behaviour)
    log: list = []
    with pytest.raises(PaymentOutcomeUnknown):
        charge(PaymentRouter(kakao, toss, sleep=no_sleep), log, {"kakaopay": "S1", "toss": "bk_1"})
    assert fake.done == [SUB] and fake.seen.count(SUB) == 1
    assert toss_fake.seen == []
    assert "failover" not in [e["decision"] for e in log]


def test_slow_toss_charge_is_found_by_lookup_not_charged_twice(toss_server):
    toss_fake, toss = toss_server
    toss_fake.plan("/v1/billing/bk_1", "slow")
    log: list = []
    routed = charge(PaymentRouter(toss, sleep=no_sleep), log, {"toss": "bk_1"})
    assert routed.result.tid == "pk_backup"
    assert toss_fake.done.count("/v1/billing/bk_1") == 1
    assert "paid_per_lookup" in [e["decision"] for e in log]


def test_slow_cancel_is_confirmed_by_lookup(kakao_server):
    fake, kakao = kakao_server
    fake.plan("/online/v1/payment/cancel", "slow")
    log: list = []
    result = PaymentRouter(kakao, sleep=no_sleep).cancel(
        "kakaopay",
        log,
        CancelRequest(
            tid="T" * 20,
            cancel_amount=1000,
            cancel_tax_free_amount=0,
            idempotency_key="r1",
        ),
        canceled_before=0,
    )
    assert result.canceled_amount == 1000
    assert fake.done.count("/online/v1/payment/cancel") == 1
    assert log[-1]["decision"] == "confirmed_by_lookup"


def test_connection_refused_is_retriable():
    gateway = KakaoPayGateway(secret_key="k", base_url="http://127.0.0.1:9", timeout=FAST)
    log: list = []
    with pytest.raises(PrimaryUnavailable):
        charge(PaymentRouter(gateway, sleep=no_sleep), log, {"kakaopay": "S1"})
    assert [e["decision"] for e in log] == ["retriable"] * 3
