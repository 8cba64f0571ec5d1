"""The per-customer daily advertising limit holds when several workers send ads of the same
customers at once (threads with their own connections; on PostgreSQL that is N real claimers with
SKIP LOCKED), and nothing over the limit is lost: it is held to the next KST day and sent then."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import clock
from core.messaging import compliance, sender
from core.messaging.outbox import enqueue
from core.messaging.providers import Outcome, OutgoingMessage, SendResult
from core.models import AdSendSlot, Message, MessageKind, Setting
from tests.messaging.helpers import NOON, customer, setup_templates

CUSTOMERS = 8
ADS_EACH = 9
LIMIT = 2
WORKERS = 3


class SlowCountingProvider:
    """Takes every message, counts it per key, and answers slowly so claims of the workers overlap."""

    name = "solapi"
    max_batch = 10_000

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        time.sleep(0.01)
        with self.lock:
            self.sent.update(m.key for m in messages)
        return [SendResult(m.key, Outcome.ACCEPTED, f"id-{m.key}", "G1", "2000") for m in messages]

    def lookup(self, messages: list[OutgoingMessage], since: datetime) -> dict[str, SendResult]:
        return {}

    def close(self) -> None:
        return None


def _workers(engine: Engine, now: datetime, provider: SlowCountingProvider) -> None:
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            sender.run(engine, now, provider=provider)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.slow
def test_concurrent_workers_never_exceed_the_daily_ad_limit_and_lose_nothing(engine: Engine) -> None:
    setup_templates(engine)
    with Session(engine) as s:
        s.merge(Setting(key="messaging", value={"batch_size": 5, "daily_ad_limit": LIMIT}))
        s.commit()
    owner: dict[str, int] = {}
    for c in range(CUSTOMERS):
        cid = customer(engine, f"고객{c}", f"010-0000-{c:04d}", ad_consent_at=NOON - timedelta(days=10))
        with Session(engine) as s:
            for i in range(ADS_EACH):
                key = f"promo:{cid}:{i}"
                owner[key] = cid
                enqueue(
                    s,
                    customer_id=cid,
                    template_key="promo",
                    idempotency_key=key,
                    kind=MessageKind.ADVERTISING,
                    variables={"고객명": f"고객{c}"},
                    send_after=NOON,
                )
            s.commit()
    provider = SlowCountingProvider()
    now = NOON
    per_day: dict[object, Counter[int]] = {}
    for _day in range(ADS_EACH // LIMIT + 1):
        before = Counter(provider.sent)
        _workers(engine, now, provider)
        today = Counter(owner[k] for k in (provider.sent - before).elements())
        per_day[clock.today_kst(now)] = today
        # Never more than the limit for a customer on a KST day, and the limit is used.
        assert max(today.values(), default=0) <= LIMIT
        with Session(engine) as s:
            rows = s.execute(select(Message.status, Message.reason, Message.send_after)).all()
            slots = dict(
                s.execute(
                    select(AdSendSlot.customer_id, func.count())
                    .where(AdSendSlot.kst_day == clock.today_kst(now))
                    .group_by(AdSendSlot.customer_id)
                ).all()
            )
        held = [r for r in rows if r.status == "held"]
        assert {r.status for r in rows} <= {"sent", "held"}
        next_morning = compliance.next_ad_day_start(now, night_consent=False)
        # Held to a next free day (08:00 KST, tomorrow or later: held ads spread over the days).
        assert all(
            "빈도" in r.reason
            and clock.as_utc(r.send_after) >= next_morning
            and clock.to_kst(clock.as_utc(r.send_after)).strftime("%H:%M") == "08:00"
            for r in held
        )
        assert all(n == today[cid] for cid, n in slots.items())
        if not held:
            break
        now = next_morning
    # Nothing lost, nothing sent twice: every ad went out exactly once, LIMIT a day per customer.
    assert set(provider.sent) == set(owner) and set(provider.sent.values()) == {1}
    totals: defaultdict[int, list[int]] = defaultdict(list)
    for counts in per_day.values():
        for cid, n in counts.items():
            totals[cid].append(n)
    assert all(sum(days) == ADS_EACH and max(days) == LIMIT for days in totals.values())
    assert len(per_day) == -(-ADS_EACH // LIMIT)
