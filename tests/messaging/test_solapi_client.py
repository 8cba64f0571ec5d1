"""The Solapi client against the documented request/response shapes (httpx.MockTransport)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime

import httpx
import pytest

from core.messaging.providers import (
    Outcome,
    OutgoingMessage,
    PermanentProviderError,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    solapi,
)

AUTH = re.compile(
    r"^HMAC-SHA256 apiKey=(?P<key>[^,]+), date=(?P<date>[^,]+), salt=(?P<salt>[^,]+), "
    r"signature=(?P<sig>[0-9a-f]{64})$"
)


def _client(handler, **kw) -> solapi.SolapiClient:
    return solapi.SolapiClient(
        base_url="https://api.solapi.test",
        api_key="KEY",
        api_secret="SECRET",
        sender="0212345678",
        pf_id="KA01PF",
        rate_per_second=0,
        transport=httpx.MockTransport(handler),
        **kw,
    )


def _messages(n: int = 2, kind: str = "informational") -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            key=f"order_confirmation:{i}",
            to=f"0101234{i:04d}",
            text=f"안녕 {i}",
            kind=kind,
            template_id="KA01TP",
            variables={"#{고객명}": f"고객{i}"},
        )
        for i in range(n)
    ]


def test_auth_header_is_hmac_sha256_of_date_and_salt() -> None:
    header = solapi.auth_header("KEY", "SECRET", date="2026-12-01T00:00:00Z", salt="abc123")
    expected = hmac.new(b"SECRET", b"2026-12-01T00:00:00Zabc123", hashlib.sha256).hexdigest()
    assert header == f"HMAC-SHA256 apiKey=KEY, date=2026-12-01T00:00:00Z, salt=abc123, signature={expected}"


def test_send_many_request_shape_and_per_message_results() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        body = json.loads(request.content)
        failed = body["messages"][1]
        return httpx.Response(
            200,
            json={
                "groupInfo": {
                    "groupId": "G4V1",
                    "count": {"total": 2, "registeredSuccess": 1, "registeredFailed": 1},
                },
                "failedMessageList": [
                    {
                        "to": failed["to"],
                        "messageId": "M2",
                        "statusCode": "3020",
                        "statusMessage": "blocked",
                        "customFields": failed["customFields"],
                    }
                ],
                "messageList": [
                    {
                        "messageId": "M1",
                        "statusCode": "2000",
                        "customFields": body["messages"][0]["customFields"],
                    }
                ],
            },
        )

    results = _client(handler).send_batch(_messages())
    request = seen["request"]
    assert request.method == "POST" and request.url.path == "/messages/v4/send-many/detail"
    match = AUTH.match(request.headers["Authorization"])
    assert match and match["key"] == "KEY"
    assert (
        match["sig"]
        == hmac.new(b"SECRET", (match["date"] + match["salt"]).encode(), hashlib.sha256).hexdigest()
    )
    body = json.loads(request.content)
    assert body["allowDuplicates"] is False
    first = body["messages"][0]
    assert first == {
        "to": "01012340000",
        "from": "0212345678",
        "type": "ATA",
        "text": "안녕 0",
        "kakaoOptions": {
            "pfId": "KA01PF",
            "disableSms": False,
            "templateId": "KA01TP",
            "variables": {"#{고객명}": "고객0"},
        },
        "customFields": {"idempotencyKey": "order_confirmation:0"},
    }
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.FAILED]
    assert results[0].provider_message_id == "M1" and results[0].group_id == "G4V1"
    assert results[1].code == "3020" and "차단" in results[1].reason


def test_advertising_goes_as_friendtalk_with_sms_fallback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = json.loads(request.content)["messages"][0]
        assert message["type"] == "CTA" and message["kakaoOptions"] == {"pfId": "KA01PF", "disableSms": False}
        return httpx.Response(200, json={"groupInfo": {"groupId": "G"}, "failedMessageList": []})

    assert _client(handler).send_batch(_messages(1, "advertising"))[0].outcome == Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("code", "outcome", "words"),
    [
        ("3018", Outcome.FAILED, "SMS 대체"),
        ("3019", Outcome.FAILED, "카카오톡 사용자가 아님"),
        ("3015", Outcome.FAILED, "템플릿을 찾을 수 없음"),
        ("3016", Outcome.FAILED, "승인된 템플릿과 다름"),
        ("3025", Outcome.FAILED, "변수 길이"),
        ("3022", Outcome.RETRY, "08:00"),
        ("9999", Outcome.FAILED, "발송 실패 [9999]"),
    ],
)
def test_kakao_result_codes_map_to_clear_reasons(code: str, outcome: Outcome, words: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        m = json.loads(request.content)["messages"][0]
        return httpx.Response(
            200,
            json={
                "groupInfo": {"groupId": "G"},
                "failedMessageList": [
                    {
                        "to": m["to"],
                        "statusCode": code,
                        "statusMessage": "x",
                        "customFields": m["customFields"],
                    }
                ],
            },
        )

    result = _client(handler).send_batch(_messages(1))[0]
    assert result.outcome == outcome and words in result.reason


@pytest.mark.parametrize("code", ["2000", "3000", "4000"])
def test_ok_status_codes_are_accepted(code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        m = json.loads(request.content)["messages"][0]
        return httpx.Response(
            200, json={"messageList": {"M1": {"statusCode": code, "customFields": m["customFields"]}}}
        )

    result = _client(handler).send_batch(_messages(1))[0]
    assert result.outcome == Outcome.ACCEPTED and result.provider_message_id == "M1"


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (
            httpx.Response(401, json={"errorCode": "InvalidAPIKey", "errorMessage": "expired key"}),
            PermanentProviderError,
            "인증 실패",
        ),
        (httpx.Response(403, json={"errorCode": "SignatureDoesNotMatch"}), PermanentProviderError, "인증"),
        (
            httpx.Response(400, json={"errorCode": "ValidationError", "errorMessage": "bad"}),
            PermanentProviderError,
            "요청 거부",
        ),
        (httpx.Response(429, json={}), RetriableProviderError, "한도"),
        (httpx.Response(500, json={}), ProviderOutcomeUnknown, "서버 오류"),
        (
            httpx.Response(200, text="<html>oops</html>", headers={"content-type": "text/html"}),
            ProviderOutcomeUnknown,
            "HTML",
        ),
        (httpx.Response(200, content=b""), ProviderOutcomeUnknown, "읽을 수 없는"),
    ],
)
def test_http_failures_are_classified(response: httpx.Response, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        _client(lambda request: response).send_batch(_messages(1))


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), RetriableProviderError),
        (httpx.ReadTimeout("slow"), ProviderOutcomeUnknown),
        (httpx.RemoteProtocolError("dropped"), ProviderOutcomeUnknown),
    ],
)
def test_transport_failures_are_classified(exc: Exception, error: type) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(error):
        _client(handler).send_batch(_messages(1))


def test_unattributable_failure_is_unknown_not_guessed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"failedMessageList": [{"to": "010", "statusCode": "3019"}]})

    with pytest.raises(ProviderOutcomeUnknown):
        _client(handler).send_batch(_messages(2))


def test_batch_limit_is_ten_thousand() -> None:
    with pytest.raises(ValueError, match="10,000"):
        _client(lambda r: httpx.Response(200, json={})).send_batch(_messages(10_001))


def test_lookup_pages_through_the_list_and_matches_our_key() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.url.params))
        assert request.url.path == "/messages/v4/list"
        if "startKey" not in request.url.params:
            return httpx.Response(
                200,
                json={
                    "messageList": {
                        "M9": {"statusCode": "4000", "customFields": {"idempotencyKey": "other"}}
                    },
                    "nextKey": "K2",
                },
            )
        return httpx.Response(
            200,
            json={
                "messageList": {
                    "M1": {
                        "statusCode": "3000",
                        "groupId": "G",
                        "customFields": {"idempotencyKey": "order_confirmation:1"},
                    }
                },
                "nextKey": None,
            },
        )

    found = _client(handler).lookup(_messages(2), datetime(2026, 12, 1, tzinfo=UTC))
    assert set(found) == {"order_confirmation:1"}
    assert found["order_confirmation:1"].outcome == Outcome.ACCEPTED
    assert calls[0]["criteria"] == "dateCreated" and calls[0]["cond"] == "gte"
    assert calls[0]["value"] == "2026-12-01T00:00:00.000Z" and calls[1]["startKey"] == "K2"


def test_rate_limiter_spaces_requests() -> None:
    ticks = iter([0.0, 0.0, 0.0])
    limiter = solapi.RateLimiter(100, clock=lambda: next(ticks))
    limiter._next = 0.0
    assert limiter.acquire() == 0.0
    waited = limiter.acquire()  # same instant: must wait 1/100 s
    assert waited == pytest.approx(0.01)


def test_from_settings_names_missing_configuration() -> None:
    from core.config import load_settings

    with pytest.raises(PermanentProviderError, match="SOLAPI_API_KEY"):
        solapi.SolapiClient.from_settings(load_settings({}))
