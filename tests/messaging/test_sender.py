"""The sender on SQLite and PostgreSQL with in-process providers: gate, pre-flight, retries,
recovery of expired claims, bad input, and two workers never claiming the same row."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from core.messaging import sender
from core.messaging.providers import (
    OutboxProvider,
    Outcome,
    OutgoingMessage,
    PermanentProviderError,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    SendResult,
)
from core.messaging.sender import claims
from core.models import Customer, Message, MessageKind, Template
from tests.messaging.helpers import NOON, customer, message, queue, setup_templates

NIGHT = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 22:00 KST


class ScriptedProvider:
    """In-process provider: records what it was given; raises or fails keys on request."""

    name = "solapi"
    max_batch = 10_000

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.batches: list[list[OutgoingMessage]] = []
        self.raise_next: list[Exception] = []
        self.fail: dict[str, SendResult] = {}
        self.taken: dict[str, SendResult] = {}
        self.lock = threading.Lock()

    def send_batch(self, messages):
        with self.lock:
            self.batches.append(messages)
            if self.raise_next:
                error = self.raise_next.pop(0)
                if isinstance(error, ProviderOutcomeUnknown):
                    for m in messages:  # it was taken, but the answer was lost
                        self.sent[m.key] += 1
                        self.taken[m.key] = SendResult(m.key, Outcome.ACCEPTED, f"id-{m.key}", "G1", "2000")
                raise error
            results = []
            for m in messages:
                if m.key in self.fail:
                    results.append(self.fail[m.key])
                    continue
                self.sent[m.key] += 1
                self.taken[m.key] = SendResult(m.key, Outcome.ACCEPTED, f"id-{m.key}", "G1", "2000")
                results.append(self.taken[m.key])
            return results

    def lookup(self, messages, since):
        return {m.key: self.taken[m.key] for m in messages if m.key in self.taken}

    def close(self) -> None:
        return None


@pytest.fixture
def store(engine: Engine) -> Engine:
    setup_templates(engine)
    return engine


def test_outbox_provider_delivers_and_nothing_leaves(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "hello:1")
    counts = sender.run(store, NOON, provider=OutboxProvider())
    row = message(store, "hello:1")
    assert counts["delivered"] == 1
    assert (row.status, row.text, row.to_phone, row.provider) == (
        "delivered",
        "홍길동님 안녕하세요",
        "010-1234-5678",
        "outbox",
    )
    assert row.claim_token is None and row.attempts == 1
    # A second tick sends nothing again.
    assert sender.run(store, NOON + timedelta(minutes=1), provider=OutboxProvider()) == {}


def test_bad_input_fails_with_reasons_and_the_rest_of_the_batch_goes_on(store: Engine) -> None:
    good = customer(store, "좋은", "010-1111-2222")
    no_phone = customer(store, "무번호", None)
    foreign = customer(store, "외국", "+1 415 555 0100")
    landline = customer(store, "유선", "02-123-4567")
    with Session(store) as s:
        s.add(
            Template(
                key="odd",
                name="x",
                kind="informational",
                body="#{고객명} #{쿠폰}",
                approved_body="#{고객명} #{쿠폰}",
                alimtalk_template_id="KA01ODD",
            )
        )
        s.commit()
    queue(store, good, "ok:1")
    queue(store, no_phone, "nophone:1")
    queue(store, foreign, "foreign:1")
    queue(store, landline, "landline:1")
    queue(store, good, "unknownvar:1", template="odd")
    queue(store, good, "toolong:1", variables={"고객명": "가" * 600})
    queue(store, good, "notemplate:1", template="missing")
    provider = ScriptedProvider()
    sender.run(store, NOON, provider=provider)
    reasons = {
        k: message(store, k)
        for k in ("nophone:1", "foreign:1", "landline:1", "unknownvar:1", "toolong:1", "notemplate:1")
    }
    assert all(m.status == "failed" for m in reasons.values())
    assert "전화번호가 없습니다" in reasons["nophone:1"].reason
    assert "한국 휴대전화" in reasons["foreign:1"].reason and "한국 휴대전화" in reasons["landline:1"].reason
    assert "#{쿠폰}" in reasons["unknownvar:1"].reason
    assert "너무 깁니다" in reasons["toolong:1"].reason
    assert "템플릿이 없습니다" in reasons["notemplate:1"].reason
    assert message(store, "ok:1").status == "sent"
    assert provider.sent == Counter({"ok:1": 1})


def test_template_drift_is_refused_before_sending(store: Engine) -> None:
    cid = customer(store)
    with Session(store) as s:
        t = s.exec(select(Template).where(Template.key == "hello")).one()
        t.body = "#{고객명}님 반가워요"  # edited, not re-approved
        s.add(t)
        s.commit()
    queue(store, cid, "hello:drift")
    provider = ScriptedProvider()
    sender.run(store, NOON, provider=provider)
    row = message(store, "hello:drift")
    assert row.status == "failed" and "승인된 내용과 다릅니다" in row.reason
    assert not provider.sent


def test_advertising_gate_in_the_pipeline(store: Engine) -> None:
    consented = customer(store, "동의", "010-0000-0001", ad_consent_at=NOON - timedelta(days=5))
    stranger = customer(store, "미동의", "010-0000-0002")
    opted_out = customer(
        store,
        "거부",
        "010-0000-0003",
        ad_consent_at=NOON - timedelta(days=5),
        ad_opt_out_at=NOON - timedelta(days=1),
    )
    for cid in (consented, stranger, opted_out):
        queue(store, cid, f"promo:{cid}", template="promo", kind=MessageKind.ADVERTISING)
    queue(store, consented, "promo:second", template="promo", kind=MessageKind.ADVERTISING)
    queue(store, consented, "hello:info")  # informational: exempt from the pressure limit
    provider = ScriptedProvider()
    sender.run(store, NOON, provider=provider)
    sent = message(store, f"promo:{consented}")
    assert (
        sent.status == "sent"
        and sent.text.startswith("(광고) ")
        and sent.text.endswith("무료수신거부 080-000-0000")
    )
    assert message(store, f"promo:{stranger}").status == "skipped"
    assert "수신거부" in message(store, f"promo:{opted_out}").reason
    second = message(store, "promo:second")
    next_morning = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 08:00 KST on 12-02
    assert second.status == "held" and "빈도" in second.reason and second.send_after == next_morning
    assert message(store, "hello:info").status == "sent"
    # The next KST day the limit allows one again: the held ad goes, once.
    sender.run(store, next_morning, provider=provider)
    assert message(store, "promo:second").status == "sent"
    assert provider.sent[f"promo:{consented}"] == 1 and provider.sent["promo:second"] == 1


def test_night_advertising_is_held_until_eight_then_sent(store: Engine) -> None:
    cid = customer(store, ad_consent_at=NOON - timedelta(days=5))
    queue(store, cid, "promo:night", template="promo", kind=MessageKind.ADVERTISING, send_after=NIGHT)
    provider = ScriptedProvider()
    sender.run(store, NIGHT, provider=provider)
    held = message(store, "promo:night")
    assert held.status == "held" and "08:00" in held.reason
    assert held.send_after == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    sender.run(store, datetime(2026, 12, 1, 22, 59, tzinfo=UTC), provider=provider)
    assert message(store, "promo:night").status == "held"
    sender.run(store, datetime(2026, 12, 1, 23, 0, tzinfo=UTC), provider=provider)
    sent = message(store, "promo:night")
    assert sent.status == "sent" and sent.text.count("(광고)") == 1
    assert provider.sent == Counter({"promo:night": 1})


def test_per_message_failures_and_retry_codes(store: Engine) -> None:
    cid = customer(store)
    for key in ("a", "b", "c"):
        queue(store, cid, key)
    provider = ScriptedProvider()
    provider.fail["b"] = SendResult("b", Outcome.FAILED, code="3019", reason="카카오톡 사용자가 아님 [3019]")
    provider.fail["c"] = SendResult("c", Outcome.RETRY, code="3022", reason="광고 발송 가능 시간이 아님")
    sender.run(store, NOON, provider=provider)
    assert message(store, "a").status == "sent"
    assert (message(store, "b").status, message(store, "b").reason) == (
        "failed",
        "카카오톡 사용자가 아님 [3019]",
    )
    held = message(store, "c")
    assert held.status == "held" and held.send_after == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def test_retriable_batch_errors_back_off_with_jitter_then_fail_at_the_bound(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "r:1")
    provider = ScriptedProvider()
    now = NOON
    delays = []
    for _attempt in range(5):
        provider.raise_next.append(RetriableProviderError("연결 거부"))
        sender.run(store, now, provider=provider, rng=random.Random(1))
        row = message(store, "r:1")
        if row.status == "failed":
            break
        assert row.status == "queued" and "재시도 예정" in row.reason
        delays.append((row.send_after - now).total_seconds())
        assert sender.run(store, now, provider=provider) == {}  # not due yet
        now = row.send_after
    row = message(store, "r:1")
    assert row.status == "failed" and "재시도 5회 후 실패" in row.reason and row.attempts == 5
    assert delays == sorted(delays) and 15 <= delays[0] <= 30 and delays[-1] <= 8 * 30
    assert not provider.sent


def test_permanent_batch_error_fails_every_message_with_the_reason(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "p:1")
    queue(store, cid, "p:2")
    provider = ScriptedProvider()
    provider.raise_next.append(PermanentProviderError("Solapi 인증 실패 (401): expired key"))
    sender.run(store, NOON, provider=provider)
    for key in ("p:1", "p:2"):
        assert message(store, key).status == "failed" and "인증 실패" in message(store, key).reason


def test_unknown_outcome_is_looked_up_not_resent(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "u:1")
    provider = ScriptedProvider()
    provider.raise_next.append(ProviderOutcomeUnknown("응답 시간 초과"))
    sender.run(store, NOON, provider=provider)
    row = message(store, "u:1")
    assert row.status == "sending" and "확인 필요" in row.reason
    sender.run(store, NOON + timedelta(hours=2), provider=provider)
    row = message(store, "u:1")
    assert row.status == "sent" and row.provider_message_id == "id-u:1"
    assert provider.sent == Counter({"u:1": 1})


def test_expired_claim_never_taken_is_requeued_and_sent_once(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "k:1")
    # A worker claimed it and died before sending.
    token = sender.claim_due(store, NOON, 100, timedelta(seconds=120))
    assert token
    provider = ScriptedProvider()
    assert sender.run(store, NOON + timedelta(seconds=60), provider=provider) == {}  # lease still held
    counts = sender.run(store, NOON + timedelta(seconds=121), provider=provider)
    assert counts["recovered_requeued"] == 1 and message(store, "k:1").status == "sent"
    assert provider.sent == Counter({"k:1": 1})


def test_lost_claim_writes_nothing(store: Engine) -> None:
    cid = customer(store)
    queue(store, cid, "lost:1")
    token = sender.claim_due(store, NOON, 100, timedelta(seconds=120))
    rows = claims.load(store, token)
    with store.begin() as conn:
        conn.execute(update(Message).values(claim_token="someone-else"))
    assert claims.write(store, token, [dict(rows[0], status="failed", updated_at=NOON)]) == 1
    assert message(store, "lost:1").status == "sending"


def test_resend_of_a_failed_message_gets_a_new_key_and_is_audited(store: Engine, actors) -> None:
    from core.errors import ValidationFailed
    from core.messaging.service import resend
    from core.models import AuditLog

    cid = customer(store, phone=None)
    queue(store, cid, "order_confirmation:9")
    sender.run(store, NOON, provider=OutboxProvider())
    original = message(store, "order_confirmation:9")
    assert original.status == "failed"
    with Session(store) as s:
        c = s.get(Customer, cid)
        c.phone = "010-9999-8888"
        s.add(c)
        s.commit()
    with Session(store) as s:
        again = resend(s, actors["cs"], original.id)
        s.commit()
        assert again.idempotency_key == "order_confirmation:9:resend:1"
        with pytest.raises(ValidationFailed):
            resend(s, actors["cs"], again.id)  # only failed/skipped ones
        audit = s.exec(select(AuditLog).where(AuditLog.action == "message.resend")).one()
        assert audit.detail["original_key"] == "order_confirmation:9"
    sender.run(store, NOON, provider=OutboxProvider())
    assert message(store, "order_confirmation:9:resend:1").status == "delivered"
    assert message(store, "order_confirmation:9").status == "failed"


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_on_postgres_never_send_the_same_message(pg_engine: Engine) -> None:
    setup_templates(pg_engine)
    cid = customer(pg_engine)
    with Session(pg_engine) as s:
        from core.messaging.outbox import enqueue

        for i in range(200):
            enqueue(
                s,
                customer_id=cid,
                template_key="hello",
                idempotency_key=f"pg:{i}",
                variables={"고객명": "홍길동"},
            )
        s.commit()
    with Session(pg_engine) as s:
        s.merge(
            __import__("core.models", fromlist=["Setting"]).Setting(key="messaging", value={"batch_size": 20})
        )
        s.commit()
    provider = ScriptedProvider()
    threads = [
        threading.Thread(target=sender.run, args=(pg_engine, NOON), kwargs={"provider": provider})
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(provider.sent) == 200 and set(provider.sent.values()) == {1}
    assert len(provider.batches) >= 4
    with Session(pg_engine) as s:
        statuses = Counter(s.exec(select(Message.status)))
    assert statuses == Counter({"sent": 200})


def test_caller_text_without_a_template_goes_through_outbox_but_not_alimtalk(store: Engine) -> None:
    """Refund notices, inquiry replies and billing notices queue their own text under their own key."""
    cid = customer(store)
    queue(
        store,
        cid,
        "refund:1",
        template="custom_notice",
        variables={"amount": 1000},
        text="환불이 완료되었습니다",
    )
    queue(
        store,
        cid,
        "order_confirmation:77",
        template="order_confirmation",
        variables={"customer_name": "홍길동"},
        text="주문해 주셔서 감사합니다",
    )
    sender.run(store, NOON, provider=OutboxProvider())
    assert (message(store, "refund:1").status, message(store, "refund:1").text) == (
        "delivered",
        "환불이 완료되었습니다",
    )
    assert message(store, "order_confirmation:77").text == "주문해 주셔서 감사합니다"
    queue(store, cid, "refund:2", template="custom_notice", variables={}, text="환불 완료")
    provider = ScriptedProvider()
    sender.run(store, NOON, provider=provider)
    refused = message(store, "refund:2")
    assert refused.status == "failed" and "알림톡 템플릿이 없습니다: custom_notice" in refused.reason
    assert not provider.sent


def test_a_tick_streams_the_backlog_in_capped_claims_whatever_batch_size_says(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays flat on a big backlog: a claim never exceeds MAX_CLAIM_ROWS (even when the
    setting asks for more), recovery after a crash goes in capped batches too, and no more than
    send_concurrency chunks are with the provider at once."""
    from core.messaging.outbox import enqueue_many
    from core.messaging.sender import settings as sender_settings
    from core.models import Setting

    monkeypatch.setattr(sender_settings, "MAX_CLAIM_ROWS", 20)
    cid = customer(store)
    with Session(store) as s:
        s.merge(Setting(key="messaging", value={"batch_size": 100_000, "send_concurrency": 2}))
        enqueue_many(
            s,
            [
                {
                    "customer_id": cid,
                    "to_phone": "010-1234-5678",
                    "template_key": "hello",
                    "variables": {"고객명": "홍길동"},
                    "idempotency_key": f"bulk:{i}",
                    "send_after": NOON,
                }
                for i in range(150)
            ],
            now=NOON,
        )
        s.commit()
    claim_sizes: list[int] = []
    recovered: list[int] = []
    real_claim, real_expired = claims.claim_due_rows, claims.claim_expired

    def claim(engine, now, limit, lease):
        token, rows = real_claim(engine, now, limit, lease)
        claim_sizes.append(len(rows))
        return token, rows

    def expired(engine, now, limit, lease):
        recovered.append(limit)
        return real_expired(engine, now, limit, lease)

    monkeypatch.setattr(claims, "claim_due_rows", claim)
    monkeypatch.setattr(claims, "claim_expired", expired)

    class InFlight(ScriptedProvider):
        def __init__(self) -> None:
            super().__init__()
            self.now_in_flight = 0
            self.max_in_flight = 0

        def send_batch(self, messages):
            with self.lock:
                self.now_in_flight += len(messages)
                self.max_in_flight = max(self.max_in_flight, self.now_in_flight)
            time.sleep(0.005)
            try:
                return super().send_batch(messages)
            finally:
                with self.lock:
                    self.now_in_flight -= len(messages)

    # A crashed worker left 60 rows claimed; they come back in capped batches.
    for _ in range(3):
        assert real_claim(store, NOON, 20, timedelta(seconds=120))[0]
    provider = InFlight()
    counts = sender.run(store, NOON + timedelta(minutes=5), provider=provider)
    assert counts["recovered_requeued"] == 60 and recovered[:3] == [20, 20, 20]
    assert counts["sent"] == 150 and set(provider.sent.values()) == {1} and len(provider.sent) == 150
    assert claim_sizes and max(claim_sizes) <= 20 and sum(claim_sizes) == 150
    assert provider.max_in_flight <= 2 * 20
