"""Solapi delivery reports: the result mapping, the client against the documented list shapes
(httpx.MockTransport), and the worker job against a fake Solapi on 127.0.0.1 on both stores."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.messaging import reports, sender
from core.messaging.providers import Outcome, PermanentProviderError, ProviderOutcomeUnknown, solapi
from core.models import Message
from tests.messaging.fake_solapi import KEY_FIELD, FakeSolapi
from tests.messaging.helpers import NOON, customer, message, queue, setup_templates


def _item(key: str | None, code: str, **extra) -> dict:
    return {
        "messageId": "M4V1",
        "groupId": "G4V1",
        "statusCode": code,
        "statusMessage": f"message {code}",
        "customFields": {KEY_FIELD: key} if key else {},
        "type": "ATA",
        "replacement": False,
        **extra,
    }


@pytest.mark.parametrize(
    ("item", "outcome", "reason_has"),
    [
        (_item("k", "4000"), Outcome.DELIVERED, None),
        (_item("k", "4000", type="LMS", replacement=True), Outcome.DELIVERED, "문자(LMS) 대체 발송으로 전달"),
        (_item("k", "4000", replacement=True, type="ATA"), Outcome.DELIVERED, "대체 발송으로 전달"),
        (_item("k", "2000"), Outcome.ACCEPTED, None),
        (_item("k", "3000"), Outcome.ACCEPTED, None),
        (_item("k", ""), Outcome.ACCEPTED, None),
        (_item("k", "3019"), Outcome.FAILED, "카카오톡 사용자가 아님 [3019]"),
        (_item("k", "3020"), Outcome.FAILED, "채널을 차단함"),
        (
            _item("k", "3104", type="SMS", replacement=True),
            Outcome.FAILED,
            "문자(SMS) 대체 발송도 실패: 발송 실패 [3104]",
        ),
    ],
)
def test_report_items_map_to_final_results(item: dict, outcome: Outcome, reason_has: str | None) -> None:
    result = solapi.report_from_item(item)
    assert result is not None and result.key == "k" and result.outcome == outcome
    assert result.provider_message_id == "M4V1" and result.group_id == "G4V1"
    if reason_has is None:
        assert result.reason is None
    else:
        assert reason_has in result.reason


def test_report_items_without_our_key_are_ignored() -> None:
    assert solapi.report_from_item(_item(None, "4000")) is None


def _client(handler) -> solapi.SolapiClient:
    return solapi.SolapiClient(
        base_url="https://api.solapi.test",
        api_key="KEY",
        api_secret="SECRET",
        sender="0212345678",
        pf_id="KA01PF",
        rate_per_second=0,
        transport=httpx.MockTransport(handler),
    )


def test_client_pages_the_group_list_by_start_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "startKey" not in request.url.params:
            body = {
                "startKey": None,
                "limit": 500,
                "messageList": {
                    "M4V1": _item("a", "4000"),
                    "M4V2": dict(_item("b", "3019"), messageId="M4V2"),
                },
                "nextKey": "M4V2",
            }
        else:
            body = {"startKey": "M4V2", "messageList": {"M4V3": dict(_item("c", "3000"), messageId="M4V3")}}
        return httpx.Response(200, json=body)

    found = _client(handler).delivery_reports("G4V1")
    assert {k: r.outcome for k, r in found.items()} == {
        "a": Outcome.DELIVERED,
        "b": Outcome.FAILED,
        "c": Outcome.ACCEPTED,
    }
    assert [r.url.path for r in seen] == ["/messages/v4/list", "/messages/v4/list"]
    first = seen[0].url.params
    assert (first["criteria"], first["cond"], first["value"], first["limit"]) == (
        "groupId",
        "eq",
        "G4V1",
        "500",
    )
    assert seen[1].url.params["startKey"] == "M4V2"
    assert seen[0].headers["Authorization"].startswith("HMAC-SHA256 apiKey=KEY, date=")


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            httpx.Response(200, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}),
            ProviderOutcomeUnknown,
        ),
        (httpx.Response(502, json={"errorCode": "BadGateway"}), ProviderOutcomeUnknown),
        (
            httpx.Response(401, json={"errorCode": "InvalidAPIKey", "errorMessage": "expired"}),
            PermanentProviderError,
        ),
    ],
)
def test_client_report_errors_follow_the_error_tree(response: httpx.Response, error: type) -> None:
    with pytest.raises(error):
        _client(lambda request: response).delivery_reports("G4V1")


# -- the worker job against a fake Solapi on 127.0.0.1 --------------------------------------------
@pytest.fixture
def fake():
    with FakeSolapi() as server:
        yield server


def _solapi(fake: FakeSolapi) -> solapi.SolapiClient:
    return solapi.SolapiClient(
        base_url=fake.url,
        api_key="KEY",
        api_secret="SECRET",
        sender="0212345678",
        pf_id="KA01PF",
        rate_per_second=1000,
        timeout=httpx.Timeout(2.0, connect=1.0),
    )


def _statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with Session(engine) as s:
        return {m.idempotency_key: (m.status, m.reason) for m in s.exec(select(Message))}


def test_job_turns_sent_into_delivered_or_failed_with_the_reason(engine: Engine, fake: FakeSolapi) -> None:
    setup_templates(engine)
    cid = customer(engine)
    keys = ["ok", "fallback", "blocked", "pending", "fallback_failed"]
    for key in keys:
        queue(engine, cid, key)
    client = _solapi(fake)
    try:
        sender.run(engine, NOON, provider=client)
        assert {s for s, _ in _statuses(engine).values()} == {"sent"}
        fake.reports = {
            "fallback": {"statusCode": "4000", "type": "LMS", "replacement": True},
            "blocked": {"statusCode": "3020", "statusMessage": "차단"},
            "pending": {"statusCode": "3000", "statusMessage": "이통사 접수"},
            "fallback_failed": {
                "statusCode": "3104",
                "type": "SMS",
                "replacement": True,
                "statusMessage": "결번",
            },
        }
        later = NOON + timedelta(minutes=2)
        counts = reports.fetch(engine, later, client)
        assert counts["report_groups"] == 1 and counts["report_pending"] == 1
        assert counts["report_delivered"] == 2 and counts["report_failed"] == 2
        got = _statuses(engine)
        assert got["ok"] == ("delivered", None)
        assert got["fallback"] == ("delivered", "알림톡 대신 문자(LMS) 대체 발송으로 전달")
        assert got["blocked"][0] == "failed" and "고객이 채널을 차단함 [3020] 차단" in got["blocked"][1]
        assert got["fallback_failed"][0] == "failed" and "대체 발송도 실패" in got["fallback_failed"][1]
        assert got["pending"] == ("sent", None)
        group = message(engine, "ok").provider_group_id
        assert fake.report_queries[-1]["value"] == group

        # Within the interval nothing is asked again; a repeated report changes nothing.
        asked = len(fake.report_queries)
        assert reports.fetch(engine, later + timedelta(seconds=30), client) == {}
        assert len(fake.report_queries) == asked
        fake.reports["ok"] = {"statusCode": "3019"}  # a late, contradicting report is ignored
        fake.reports["pending"] = {"statusCode": "4000"}
        counts = reports.fetch(engine, later + timedelta(minutes=2), client)
        assert counts == {"report_groups": 1, "report_delivered": 1}
        got = _statuses(engine)
        assert got["pending"] == ("delivered", None) and got["ok"] == ("delivered", None)
        # Nothing is 'sent' any more: the job has nothing to ask.
        assert reports.fetch(engine, later + timedelta(hours=1), client) == {}
        assert len(fake.report_queries) == asked + 1
        assert set(fake.received.values()) == {1}  # reports never send anything again
    finally:
        client.close()


def test_job_survives_provider_errors_and_gives_up_after_the_window(engine: Engine, fake: FakeSolapi) -> None:
    setup_templates(engine)
    cid = customer(engine)
    queue(engine, cid, "late")
    client = _solapi(fake)
    try:
        sender.run(engine, NOON, provider=client)
        fake.reports = {"late": {"statusCode": "3000"}}
        bad = solapi.SolapiClient(
            base_url="http://127.0.0.1:9",  # nothing listens on the discard port
            api_key="KEY",
            api_secret="SECRET",
            sender="0212345678",
            pf_id="KA01PF",
            rate_per_second=0,
            timeout=httpx.Timeout(1.0, connect=0.5),
        )
        assert reports.fetch(engine, NOON + timedelta(minutes=2), bad) == {"report_errors": 1}
        bad.close()
        assert message(engine, "late").status == "sent"
        counts = reports.fetch(engine, NOON + timedelta(minutes=4), client)
        assert counts == {"report_groups": 1, "report_pending": 1}
        # Past the report window: no more questions, and the row says why it stays 'sent'.
        asked = len(fake.report_queries)
        counts = reports.fetch(engine, NOON + timedelta(hours=73), client)
        assert counts == {"report_given_up": 1} and len(fake.report_queries) == asked
        row = message(engine, "late")
        assert row.status == "sent" and "전달 결과를 받지 못함" in row.reason
        assert reports.fetch(engine, NOON + timedelta(hours=74), client) == {}
    finally:
        client.close()


def test_report_job_does_nothing_with_the_embedded_outbox(engine: Engine) -> None:
    from core.messaging.providers import OutboxProvider

    setup_templates(engine)
    queue(engine, customer(engine), "o:1")
    sender.run(engine, NOON, provider=OutboxProvider())
    assert reports.fetch(engine, NOON + timedelta(minutes=5), OutboxProvider()) == {}
    assert Counter(s for s, _ in _statuses(engine).values()) == Counter({"delivered": 1})
