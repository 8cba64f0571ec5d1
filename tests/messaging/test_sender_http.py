"""The sender with the real Solapi client against a fake Solapi on 127.0.0.1 that misbehaves:
slow answers, 500s, dropped connections, HTML, empty bodies, and failures inside an HTTP 200."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.messaging import sender
from core.messaging.providers.solapi import SolapiClient
from core.models import Message
from tests.messaging.fake_solapi import FakeSolapi
from tests.messaging.helpers import NOON, customer, message, queue, setup_templates


@pytest.fixture
def fake():
    with FakeSolapi() as server:
        yield server


@pytest.fixture
def store(sqlite_engine: Engine) -> Engine:
    setup_templates(sqlite_engine)
    return sqlite_engine


def _client(fake: FakeSolapi, read_timeout: float = 2.0) -> SolapiClient:
    return SolapiClient(
        base_url=fake.url,
        api_key="KEY",
        api_secret="SECRET",
        sender="0212345678",
        pf_id="KA01PF",
        rate_per_second=1000,
        timeout=httpx.Timeout(read_timeout, connect=1.0),
    )


def _statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as s:
        return Counter(s.exec(select(Message.status)))


def _queue_many(engine: Engine, n: int, prefix: str = "m") -> list[str]:
    cid = customer(engine)
    keys = [f"{prefix}:{i}" for i in range(n)]
    for key in keys:
        queue(engine, cid, key)
    return keys


def _drain(engine: Engine, fake: FakeSolapi, ticks: int = 8, read_timeout: float = 2.0) -> None:
    """Tick as the worker would, moving time past leases and backoffs."""
    now = NOON
    for _ in range(ticks):
        client = _client(fake, read_timeout)
        try:
            sender.run(engine, now, provider=client)
        finally:
            client.close()
        now += timedelta(hours=2)


def test_http_200_with_some_failures_records_each_message(store: Engine, fake: FakeSolapi) -> None:
    keys = _queue_many(store, 5)
    fake.fail_codes = {"m:1": "3019", "m:3": "3020"}
    _drain(store, fake, ticks=1)
    assert (
        message(store, "m:1").status == "failed" and "카카오톡 사용자가 아님" in message(store, "m:1").reason
    )
    assert "차단" in message(store, "m:3").reason
    sent = message(store, "m:0")
    assert sent.status == "sent" and sent.provider_message_id.startswith("M4V")
    assert sent.provider_group_id.startswith("G4V")
    assert fake.received == Counter({k: 1 for k in keys})
    assert fake.auth_headers[0].startswith("HMAC-SHA256 apiKey=KEY, date=")


@pytest.mark.parametrize("fault", ["500", "drop_after", "html", "empty"])
def test_faults_after_the_server_took_the_batch_are_looked_up_never_resent(
    store: Engine, fake: FakeSolapi, fault: str
) -> None:
    keys = _queue_many(store, 3)
    fake.script = [fault]
    _drain(store, fake)
    assert _statuses(store) == Counter({"sent": 3})
    assert fake.received == Counter({k: 1 for k in keys})


def test_connection_dropped_before_taking_anything_is_retried_once(store: Engine, fake: FakeSolapi) -> None:
    keys = _queue_many(store, 3)
    fake.script = ["drop_before", "drop_before"]
    _drain(store, fake)
    assert _statuses(store) == Counter({"sent": 3})
    assert fake.received == Counter({k: 1 for k in keys})


def test_slow_answer_times_out_then_is_found_by_lookup(store: Engine, fake: FakeSolapi) -> None:
    keys = _queue_many(store, 2)
    fake.script = ["slow"]
    _drain(store, fake, read_timeout=0.5)
    assert _statuses(store) == Counter({"sent": 2})
    assert fake.received == Counter({k: 1 for k in keys})


def test_server_down_retries_with_backoff_then_fails_with_reason(store: Engine) -> None:
    _queue_many(store, 2)
    with FakeSolapi() as gone:
        url = gone.url
    client = SolapiClient(
        base_url=url,
        api_key="K",
        api_secret="S",
        sender="02",
        pf_id="P",
        timeout=httpx.Timeout(1.0, connect=0.5),
    )
    now = NOON
    for _ in range(8):
        sender.run(store, now, provider=client)
        now += timedelta(hours=2)
    client.close()
    row = message(store, "m:0")
    assert row.status == "failed" and "재시도 5회 후 실패" in row.reason and "연결할 수 없음" in row.reason


def test_expired_key_fails_the_batch_with_a_clear_reason(store: Engine) -> None:
    _queue_many(store, 2)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"errorCode": "InvalidAPIKey", "errorMessage": "API key expired"})

    client = SolapiClient(
        base_url="https://x",
        api_key="K",
        api_secret="S",
        sender="02",
        pf_id="P",
        transport=httpx.MockTransport(handler),
    )
    sender.run(store, NOON, provider=client)
    row = message(store, "m:1")
    assert row.status == "failed" and "인증 실패" in row.reason and "expired" in row.reason
