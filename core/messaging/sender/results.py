"""Results: a provider's answer becomes a row's state (sent, held, retried with backoff, failed),
and expired claims are resolved by asking the provider, never by resending blindly."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

import core.messaging.sender.claims as claims
from core import clock
from core.messaging import compliance
from core.messaging.phone import digits_only
from core.messaging.providers import (
    Outcome,
    OutgoingMessage,
    Provider,
    ProviderError,
    SendResult,
)
from core.messaging.sender.claims import M
from core.messaging.sender.gate import Context
from core.messaging.sender.settings import backoff_delay, claim_size, messaging_settings
from core.models import (
    MessageStatus,
)


@dataclass
class Clocked:
    """The part of a batch context that applying a result needs (used by recovery)."""

    now: datetime
    settings: dict[str, Any]


# -- applying results ----------------------------------------------------------------------------
def apply_result(
    row: dict[str, Any], result: SendResult, ctx: Context | Clocked, provider: Provider, rng: random.Random
) -> dict[str, Any]:
    out = dict(row, claim_token=None, claim_expires_at=None, updated_at=ctx.now, provider=provider.name)
    if result.outcome in (Outcome.ACCEPTED, Outcome.DELIVERED):
        status = MessageStatus.DELIVERED if result.outcome == Outcome.DELIVERED else MessageStatus.SENT
        return dict(
            out,
            status=status.value,
            sent_at=ctx.now,
            reason=result.reason,
            provider_message_id=result.provider_message_id,
            provider_group_id=result.group_id,
        )
    if result.outcome == Outcome.RETRY and result.code == "3022":
        return dict(
            out,
            status=MessageStatus.HELD.value,
            reason=result.reason,
            send_after=compliance.next_day_start(ctx.now),
        )
    if result.outcome == Outcome.RETRY:
        return retry_or_fail(out, result.reason or "일시적 오류", ctx, rng)
    return dict(
        out,
        status=MessageStatus.FAILED.value,
        reason=result.reason,
        provider_message_id=result.provider_message_id,
        provider_group_id=result.group_id,
    )


def retry_or_fail(
    out: dict[str, Any], reason: str, ctx: Context | Clocked, rng: random.Random
) -> dict[str, Any]:
    attempts = out["attempts"]
    if attempts >= int(ctx.settings["max_attempts"]):
        return dict(out, status=MessageStatus.FAILED.value, reason=f"재시도 {attempts}회 후 실패: {reason}")
    delay = backoff_delay(
        attempts, float(ctx.settings["backoff_base_seconds"]), float(ctx.settings["backoff_max_seconds"]), rng
    )
    return dict(
        out, status=MessageStatus.QUEUED.value, reason=f"재시도 예정: {reason}", send_after=ctx.now + delay
    )


def recover_expired(
    engine: Engine, now: datetime, provider: Provider, counts: Counter[str], deadline: float | None = None
) -> None:
    """Resolve 'sending' rows whose lease ran out, a capped batch at a time (a crash can leave
    many), until none is left or the tick's time is up: ask the provider, never resend blindly."""
    with Session(engine) as session:
        settings = messaging_settings(session)
    while _recover_batch(engine, now, provider, counts, settings):
        if deadline is not None and time.monotonic() > deadline:
            break


def _recover_batch(
    engine: Engine, now: datetime, provider: Provider, counts: Counter[str], settings: dict[str, Any]
) -> int:
    """One capped batch of expired claims; returns how many rows it took (0: none left)."""
    lease = timedelta(seconds=int(settings["claim_seconds"]))
    token = claims.claim_expired(engine, now, claim_size(settings), lease)
    if token is None:
        return 0
    rows = claims.load(engine, token)
    with engine.connect() as conn:
        claimed_at = conn.execute(
            select(func.min(M.c.updated_at)).where(M.c.claim_token == token)
        ).scalar_one()
    since = clock.as_utc(claimed_at) - timedelta(minutes=5)
    probes = [
        OutgoingMessage(
            key=r["idempotency_key"], to=digits_only(r["to_phone"] or ""), text=r["text"], kind=r["kind"]
        )
        for r in rows
    ]
    try:
        found = provider.lookup(probes, since)
    except ProviderError as exc:
        rows = [
            dict(r, claim_expires_at=now + lease, reason=f"발송 여부 확인 중: {exc}", updated_at=now)
            for r in rows
        ]
        claims.write_keep_claim(engine, token, rows)
        counts["recovery_deferred"] += len(rows)
        return len(rows)
    ctx_settings = Clocked(now, settings)
    rng = random.Random()
    updated = []
    for r in rows:
        result = found.get(r["idempotency_key"])
        if result is None and r["attempts"] >= int(settings["max_attempts"]):
            # Not taken, and out of attempts: without this bound a provider that keeps answering
            # 5xx (an unknown outcome) would get every message resent forever.
            updated.append(
                dict(
                    r,
                    status=MessageStatus.FAILED.value,
                    claim_token=None,
                    claim_expires_at=None,
                    updated_at=now,
                    reason=f"재시도 {r['attempts']}회 후 실패: 제공자가 접수하지 않음 (응답 불확실 후 조회 확인)",
                )
            )
            counts["recovered_failed"] += 1
        elif result is None:
            # Never taken: it goes back to the queue and through the gate again.
            updated.append(
                dict(
                    r,
                    status=MessageStatus.QUEUED.value,
                    claim_token=None,
                    claim_expires_at=None,
                    send_after=now,
                    updated_at=now,
                    reason="중단된 발송 복구: 다시 대기",
                )
            )
            counts["recovered_requeued"] += 1
        else:
            updated.append(apply_result(r, result, ctx_settings, provider, rng))
            counts["recovered_found"] += 1
    claims.write(engine, token, updated)
    return len(rows)
