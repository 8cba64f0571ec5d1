"""The one rule every gateway answer goes through (core/payments/gateways/http.py), from the contract:
an answer that cannot prove the money did not move is an unknown outcome, looked up before anything
else and never sent again blind (CONTRACTS.md: "A timeout is *unknown*: look the order up before
anything else, never charge again blindly"); an answer that proves nothing happened may be retried;
only the gateway's own refusal is final.

Each HTTP status class (2xx, 3xx, 4xx, 429, 5xx) and each way a connection can fail is run for a
call that moves money (approve, cancel, charge) and for a read (lookup), against `send` itself.
"""

from __future__ import annotations

import httpx
import pytest

from core.payments.gateways.base import (
    PaymentError,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    RetriablePaymentError,
)
from core.payments.gateways.http import describe_body, json_object, require, send

GATEWAY_REFUSAL = PermanentPaymentError("카드 거절", code="GATEWAY_OWN")
JSON_ERROR = {"error_code": -780, "error_message": "approval failure!"}


def classify(response: httpx.Response, body: dict | None) -> PaymentError:
    """Stands for a client's reading of its own error body; remembers what it was given."""
    classify.seen.append((response.status_code, body))
    return GATEWAY_REFUSAL


classify.seen = []


def _send(answer: httpx.Response | Exception, *, mutating: bool) -> dict:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    classify.seen.clear()
    with httpx.Client(base_url="https://pay.test", transport=httpx.MockTransport(handler)) as client:
        return send(
            client,
            "카카오페이",
            "POST",
            "/online/v1/payment/cancel",
            mutating=mutating,
            classify_error=classify,
            json={"tid": "T1"},
        )


def _raised(answer: httpx.Response | Exception, *, mutating: bool) -> PaymentError:
    with pytest.raises(PaymentError) as caught:
        _send(answer, mutating=mutating)
    return caught.value


HTML = "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"

# (answer, error for a call that moves money, error for a read, code)
STATUS_CLASSES = [
    # 429: rate limited, the request was not processed: retriable whatever the body says.
    (httpx.Response(429, json=JSON_ERROR), RetriablePaymentError, RetriablePaymentError, "HTTP_429"),
    (httpx.Response(429, text=HTML), RetriablePaymentError, RetriablePaymentError, "HTTP_429"),
    (httpx.Response(429, text=""), RetriablePaymentError, RetriablePaymentError, "HTTP_429"),
    # 5xx, from the first to the last: the gateway may have acted before its proxy answered.
    (httpx.Response(500, json=JSON_ERROR), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_500"),
    (httpx.Response(500, text=HTML), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_500"),
    (httpx.Response(502, text=HTML), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_502"),
    (httpx.Response(503, json=["busy"]), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_503"),
    (httpx.Response(504, text=""), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_504"),
    (httpx.Response(599, text="oops"), PaymentOutcomeUnknown, RetriablePaymentError, "HTTP_599"),
    # 4xx (and a 3xx no client follows) without the gateway's JSON error: a proxy's page, no refusal.
    (httpx.Response(499, text=HTML), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_499"),
    (httpx.Response(401, text=HTML), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_401"),
    (httpx.Response(400, text=""), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_400"),
    (httpx.Response(400, json="approval failure!"), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_400"),
    (httpx.Response(400, json=[JSON_ERROR]), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_400"),
    (httpx.Response(302, text=HTML), PaymentOutcomeUnknown, PermanentPaymentError, "HTTP_302"),
    # 2xx whose body is not a JSON object: not a success we can trust.
    (httpx.Response(200, text=HTML), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(200, text=""), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(200, text="{not json"), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(200, json=[{"tid": "T1"}]), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(200, json="SUCCESS_PAYMENT"), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(200, json=None), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
    (httpx.Response(201, json=1), PaymentOutcomeUnknown, RetriablePaymentError, "MALFORMED"),
]


@pytest.mark.parametrize(("answer", "moving", "reading", "code"), STATUS_CLASSES)
def test_an_answer_that_cannot_prove_nothing_moved_is_unknown_for_a_money_call(answer, moving, reading, code):
    error = _raised(answer, mutating=True)
    assert (type(error), error.code) == (moving, code)
    assert classify.seen == []  # the gateway's own error reader never decides these


@pytest.mark.parametrize(("answer", "moving", "reading", "code"), STATUS_CLASSES)
def test_a_read_moves_no_money_so_only_a_refusal_is_final(answer, moving, reading, code):
    error = _raised(answer, mutating=False)
    assert (type(error), error.code) == (reading, code)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 499])
@pytest.mark.parametrize("mutating", [True, False])
def test_a_4xx_with_the_gateways_json_error_is_read_by_the_gateway_client(status, mutating):
    error = _raised(httpx.Response(status, json=JSON_ERROR), mutating=mutating)
    assert error is GATEWAY_REFUSAL
    assert classify.seen == [(status, JSON_ERROR)]


@pytest.mark.parametrize("status", [200, 201, 299])
@pytest.mark.parametrize("mutating", [True, False])
def test_a_2xx_json_object_is_the_answer(status, mutating):
    assert _send(httpx.Response(status, json={"tid": "T1", "n": 1}), mutating=mutating) == {
        "tid": "T1",
        "n": 1,
    }


REQUEST = httpx.Request("POST", "https://pay.test/online/v1/payment/cancel")

# (failure, error for a call that moves money, error for a read, code): only a request that never
# left may be sent again; a timeout or a drop after sending may have done the work.
TRANSPORT_FAILURES = [
    (httpx.ConnectError("refused", request=REQUEST), RetriablePaymentError, "CONNECT"),
    (httpx.ConnectTimeout("connect", request=REQUEST), RetriablePaymentError, "CONNECT"),
    (httpx.PoolTimeout("pool", request=REQUEST), RetriablePaymentError, "CONNECT"),
    (httpx.ReadTimeout("slow", request=REQUEST), PaymentOutcomeUnknown, "TIMEOUT"),
    (httpx.WriteTimeout("slow", request=REQUEST), PaymentOutcomeUnknown, "TIMEOUT"),
    (httpx.ReadError("reset by peer", request=REQUEST), PaymentOutcomeUnknown, "DROPPED"),
    (httpx.RemoteProtocolError("closed mid-answer", request=REQUEST), PaymentOutcomeUnknown, "DROPPED"),
    (httpx.WriteError("broken pipe", request=REQUEST), PaymentOutcomeUnknown, "DROPPED"),
]


@pytest.mark.parametrize(("failure", "error", "code"), TRANSPORT_FAILURES)
@pytest.mark.parametrize("mutating", [True, False])
def test_only_a_request_that_never_left_may_be_sent_again(failure, error, code, mutating):
    raised = _raised(failure, mutating=mutating)
    assert (type(raised), raised.code) == (error, code)
    assert raised.__cause__ is failure
    assert "카카오페이" in str(raised)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (httpx.ConnectError("refused", request=REQUEST), "카카오페이: 연결할 수 없습니다 (ConnectError)"),
        (httpx.ReadTimeout("slow", request=REQUEST), "카카오페이: 응답 시간 초과, 결과를 확인해야 합니다"),
        (httpx.ReadError("reset", request=REQUEST), "카카오페이: 연결이 끊겼습니다 (ReadError)"),
    ],
)
def test_a_failed_connection_says_in_korean_what_happened(failure, message):
    assert str(_raised(failure, mutating=True)) == message


def test_the_korean_message_of_each_status_class_names_the_status_and_the_body():
    assert (
        str(_raised(httpx.Response(429, text=HTML), mutating=True))
        == "카카오페이: 요청이 너무 많습니다 (HTTP 429)"
    )
    unknown = _raised(httpx.Response(502, text=HTML), mutating=True)
    assert str(unknown) == (
        f"카카오페이: HTTP 502 (HTML: {HTML[:80]!r}), 처리되었을 수 있어 결과를 확인합니다"
    )
    assert (
        str(_raised(httpx.Response(502, text=HTML), mutating=False))
        == f"카카오페이: HTTP 502 (HTML: {HTML[:80]!r})"
    )
    gateway_said = str(_raised(httpx.Response(500, json=JSON_ERROR), mutating=False))
    assert "HTTP 500" in gateway_said and "approval failure!" in gateway_said  # its own words, for staff
    assert "JSON이 아닌" not in gateway_said  # a JSON error is not described as something else
    assert (
        str(_raised(httpx.Response(401, text=""), mutating=True))
        == "카카오페이: HTTP 401, 빈 응답 (empty body)"
    )
    assert (
        str(_raised(httpx.Response(401, text=""), mutating=False))
        == "카카오페이: HTTP 401, 빈 응답 (empty body)"
    )
    malformed = "카카오페이: HTTP 200 이지만 JSON이 아닌 응답: '[1]'"
    assert str(_raised(httpx.Response(200, json=[1]), mutating=True)) == malformed
    assert str(_raised(httpx.Response(200, json=[1]), mutating=False)) == malformed


def test_what_the_gateway_answered_is_kept_for_a_person_and_cut_at_500_characters():
    page = "<html>" + "가" * 600
    for mutating in (True, False):
        assert _raised(httpx.Response(502, text=page), mutating=mutating).raw == page[:500]
        assert _raised(httpx.Response(200, text=page), mutating=mutating).raw == page[:500]
        assert _raised(httpx.Response(401, text=page), mutating=mutating).raw == page[:500]
        assert _raised(httpx.Response(500, json=JSON_ERROR), mutating=mutating).raw == JSON_ERROR
        assert _raised(httpx.Response(429, json=JSON_ERROR), mutating=mutating).raw == JSON_ERROR


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("", "빈 응답 (empty body)"),
        ("  \n ", "빈 응답 (empty body)"),
        ("<!DOCTYPE html><p>", "HTML: '<!DOCTYPE html><p>'"),
        ("  <HTML><body>", "HTML: '<HTML><body>'"),
        ("<html>", "HTML: '<html>'"),
        ("Bad Gateway", "JSON이 아닌 응답: 'Bad Gateway'"),
        ("<p>no html tag</p>", "JSON이 아닌 응답: '<p>no html tag</p>'"),
        ("x" * 100, f"JSON이 아닌 응답: {'x' * 80!r}"),
    ],
)
def test_a_body_that_is_not_json_is_described_in_korean_for_staff(text, described):
    assert describe_body(httpx.Response(502, text=text)) == described


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (httpx.Response(200, json={"a": 1}), {"a": 1}),
        (httpx.Response(200, json={}), {}),
        (httpx.Response(200, json=[{"a": 1}]), None),
        (httpx.Response(200, json="a"), None),
        (httpx.Response(200, text="<html>"), None),
    ],
)
def test_only_a_json_object_is_a_body(answer, body):
    assert json_object(answer) == body


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"aid": "A1", "amount": {"total": 1}}, "tid"),  # absent
        ({"tid": None, "aid": "A1", "amount": {"total": 1}}, "tid"),  # {"tid": null} is no success
        ({"tid": None, "aid": None, "amount": {"total": 1}}, "tid, aid"),
        ({}, "tid, aid, amount"),
    ],
)
def test_a_success_missing_a_field_the_code_relies_on_is_not_a_success(body, missing):
    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        require(body, "카카오페이", "승인", "tid", "aid", "amount", mutating=True)
    assert type(unknown.value) is PaymentOutcomeUnknown
    assert (unknown.value.code, unknown.value.raw) == ("MISSING_FIELDS", body)
    assert str(unknown.value) == f"카카오페이 승인: 응답에 필드가 없습니다 ({missing})"
    with pytest.raises(PermanentPaymentError) as refused:
        require(body, "카카오페이", "조회", "tid", "aid", "amount", mutating=False)
    assert (refused.value.code, refused.value.raw) == ("MISSING_FIELDS", body)
    assert str(refused.value) == f"카카오페이 조회: 응답에 필드가 없습니다 ({missing})"


@pytest.mark.parametrize("value", ["", 0, False, {}, []])
def test_a_field_present_but_empty_or_zero_is_there(value):
    """Only an absent or null field is missing: a 0원 amount or an empty list is an answer."""
    require({"tid": value}, "카카오페이", "조회", "tid", mutating=True)
