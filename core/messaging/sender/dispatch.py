"""Dispatch: the `message_sender` job. Claim, gate, send chunks to the provider on a few threads,
record results; constant memory on any backlog."""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

import core.messaging.sender.claims as claims
from core.messaging.providers import (
    Outcome,
    PermanentProviderError,
    Provider,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    SendResult,
    make_provider,
)
from core.messaging.sender.gate import Context, Row, prepare_row, reserve_ad_slots
from core.messaging.sender.results import apply_result, recover_expired, retry_or_fail
from core.messaging.sender.settings import backoff_delay, claim_size, messaging_settings, send_concurrency
from core.models import (
    MessageStatus,
)


def send_chunk(
    engine: Engine,
    token: str,
    ready: list[Row],
    ctx: Context,
    provider: Provider,
    rng: random.Random,
) -> Counter[str]:
    """Send one chunk and record its results (runs on a sender thread); returns status counts."""
    counts: Counter[str] = Counter()
    for r in ready:
        r.values["attempts"] = r.values["attempts"] + 1
    outgoing = [r.outgoing for r in ready if r.outgoing is not None]
    try:
        results = {res.key: res for res in provider.send_batch(outgoing)}
    except ProviderOutcomeUnknown as exc:
        # It may have been taken: keep the rows 'sending' and ask the provider after the lease.
        delay = backoff_delay(
            ready[0].values["attempts"],
            float(ctx.settings["backoff_base_seconds"]),
            float(ctx.settings["backoff_max_seconds"]),
            rng,
        )
        rows = [
            dict(
                r.values,
                status=MessageStatus.SENDING.value,
                claim_token=token,
                claim_expires_at=ctx.now + delay,
                reason=f"발송 여부 확인 필요: {exc}",
            )
            for r in ready
        ]
        claims.write_keep_claim(engine, token, rows)
        counts["unknown"] += len(rows)
        return counts
    except RetriableProviderError as exc:
        rows = [retry_or_fail(r.values, str(exc), ctx, rng) for r in ready]
    except PermanentProviderError as exc:
        rows = [dict(r.values, status=MessageStatus.FAILED.value, reason=str(exc)) for r in ready]
    else:
        rows = []
        for r in ready:
            result = results.get(r.values["idempotency_key"])
            if result is None:
                result = SendResult(
                    r.values["idempotency_key"], Outcome.RETRY, reason="제공자 응답에 결과 없음"
                )
            rows.append(apply_result(r.values, result, ctx, provider, rng))
    claims.write(engine, token, rows)
    counts.update(r["status"] for r in rows)
    return counts


def prepare_claim(
    engine: Engine,
    token: str,
    now: datetime,
    provider: Provider,
    counts: Counter[str],
    rows: list[dict[str, Any]] | None = None,
) -> tuple[list[list[Row]], Context | None, int]:
    """Gate and pre-flight the claimed rows; record the ones that will not be sent.
    Returns the chunks ready to send, the batch context and the number of rows claimed."""
    rows = claims.load(engine, token) if rows is None else rows
    if not rows:
        return [], None, 0
    ctx = Context(engine, rows, now, provider)
    prepared = [prepare_row(r, ctx) for r in rows]
    ready, over_limit = reserve_ad_slots(engine, [p for p in prepared if p.outgoing is not None], ctx)
    decided = [p.values for p in prepared if p.outgoing is None] + over_limit
    claims.write(engine, token, decided)
    counts.update(r["status"] for r in decided)
    chunk = max(1, min(provider.max_batch, claim_size(ctx.settings)))
    return [ready[i : i + chunk] for i in range(0, len(ready), chunk)], ctx, len(rows)


def run(
    engine: Engine,
    now: datetime,
    *,
    provider: Provider | None = None,
    max_batches: int | None = None,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Recover expired claims, then send due messages batch after batch until none or out of budget.

    Streams: one claim is at most MAX_CLAIM_ROWS rows and a chunk is handed to the senders only
    when fewer than `send_concurrency` are with the provider, so the batch being gated waits and a
    100,000-message backlog is worked through in constant memory. Sends overlap: chunks are with the provider while the next batch
    is claimed and gated (the client's rate limit is shared by the threads)."""
    own_provider = provider is None
    provider = provider or make_provider()
    rng = rng or random.Random()
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        with Session(engine) as session:
            settings = messaging_settings(session)
        deadline = started + float(settings["tick_budget_seconds"])
        recover_expired(engine, now, provider, counts, deadline)
        lease = timedelta(seconds=int(settings["claim_seconds"]))
        concurrency = send_concurrency(settings)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="message-send") as pool:
            pending: set[Future[Counter[str]]] = set()
            batches = 0
            while max_batches is None or batches < max_batches:
                token, rows = claims.claim_due_rows(engine, now, claim_size(settings), lease)
                if token is None:
                    break
                chunks, ctx, claimed = prepare_claim(engine, token, now, provider, counts, rows)
                counts["claimed"] += claimed
                for chunk in chunks:
                    while len(pending) >= concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            counts.update(future.result())
                    pending.add(pool.submit(send_chunk, engine, token, chunk, ctx, provider, rng))
                batches += 1
                if time.monotonic() > deadline:
                    break
            for future in pending:
                counts.update(future.result())
    finally:
        if own_provider:
            provider.close()
    return dict(counts)


_worker_provider: Provider | None = None


def worker_provider() -> Provider:
    """One provider per worker process: its HTTP connection pool and rate limit last across ticks
    and are shared by the sender and the delivery-report job."""
    global _worker_provider
    if _worker_provider is None:
        _worker_provider = make_provider()
    return _worker_provider


def message_sender(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job (core/jobs.py)."""
    return run(engine, now, provider=worker_provider())
