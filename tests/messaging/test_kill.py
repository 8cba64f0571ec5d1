"""SIGKILL a sender process in the middle of a batch, restart it, and prove every message reached
the (fake Solapi) server exactly once by key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.config import PROJECT_ROOT
from core.messaging.outbox import enqueue
from core.models import Message, Setting
from tests.messaging.fake_solapi import FakeSolapi
from tests.messaging.helpers import NOON, customer, setup_templates


def _worker(engine: Engine, fake: FakeSolapi, now: datetime) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        MESSAGE_PROVIDER="solapi",
        SOLAPI_BASE_URL=fake.url,
        SOLAPI_API_KEY="KEY",
        SOLAPI_API_SECRET="SECRET",
        SOLAPI_SENDER="0212345678",
        SOLAPI_PFID="KA01PF",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "core.messaging.sender", "--now", now.isoformat()],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_mid_batch_then_restart_sends_every_message_exactly_once(sqlite_engine: Engine) -> None:
    setup_templates(sqlite_engine)
    cid = customer(sqlite_engine)
    keys = [f"kill:{i}" for i in range(150)]
    with Session(sqlite_engine) as s:
        for key in keys:
            enqueue(
                s, customer_id=cid, template_key="hello", idempotency_key=key, variables={"고객명": "홍길동"}
            )
        s.add(Setting(key="messaging", value={"batch_size": 10}))
        s.commit()
    with FakeSolapi(delay=0.15) as fake:
        first = _worker(sqlite_engine, fake, NOON)
        deadline = time.monotonic() + 180  # a loaded box may take long to start Python
        while fake.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.requests >= 4, "the worker never reached its 4th batch"
        time.sleep(0.05)  # inside the 4th request: the server took it, the worker has no answer yet
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        with Session(sqlite_engine) as s:
            at_kill = Counter(s.exec(select(Message.status)))
        assert at_kill["sending"] > 0, at_kill  # killed with a batch in flight
        assert 0 < len(fake.received) < len(keys)

        second = _worker(sqlite_engine, fake, NOON + timedelta(minutes=10))  # past the claim lease
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err.decode()[-2000:]
    assert fake.received == Counter({key: 1 for key in keys}), "a message reached the server twice or never"
    with Session(sqlite_engine) as s:
        assert Counter(s.exec(select(Message.status))) == Counter({"sent": 150})
    assert b"recovered_found" in out
