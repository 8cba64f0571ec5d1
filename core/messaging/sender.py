"""The `message_sender` worker job: claim due messages, gate them, send in batches, record results.

Exactly once, even when killed at any instant:
- A row is claimed by one UPDATE that sets status='sending', a claim token and a lease
  (FOR UPDATE SKIP LOCKED on PostgreSQL, so N workers never claim the same row; SQLite takes the
  write lock with BEGIN IMMEDIATE, one worker is the rule there).
- Every later write is guarded by `claim_token`, so a worker that lost its claim changes nothing.
- A 'sending' row whose lease expired (the worker died, or the provider's answer was unknown) is
  never sent blindly again: we ask the provider whether it took our key (our idempotency key
  travels as customFields). Taken -> recorded as sent. Not taken -> queued again. The provider
  cannot be asked -> the row stays 'sending' and is asked again on the next tick.
  Solapi's `allowDuplicates: false` is sent as a second guard, but we do not rely on it alone:
  it is not documented to dedupe across calls by our key, so the lookup is what makes a resend safe.
  The embedded outbox provider takes nothing outside the database, so "not found" is the truth.
- Retriable failures (connection refused, 429, per-message retry codes) go back to 'queued' with
  exponential backoff and full jitter, up to `max_attempts`; then 'failed' with the last reason.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock
from core.config import get_settings
from core.db import is_postgres
from core.messaging import compliance, templates
from core.messaging.default_templates import DEFAULT_TEMPLATES, ensure_default_templates
from core.messaging.phone import InvalidPhone, digits_only, normalize_mobile
from core.messaging.providers import (
    Outcome,
    OutgoingMessage,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    SendResult,
    make_provider,
)
from core.models import (
    AdSendSlot,
    Customer,
    Message,
    MessageKind,
    MessageStatus,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Setting,
    Template,
)

MESSAGING_DEFAULTS: dict[str, Any] = {
    "daily_ad_limit": 1,  # advertising messages per customer per KST day (informational exempt)
    "batch_size": 1000,
    "max_attempts": 5,
    "backoff_base_seconds": 30,
    "backoff_max_seconds": 3600,
    "claim_seconds": 120,
    "max_variable_length": templates.DEFAULT_MAX_VARIABLE_LENGTH,
    "tick_budget_seconds": 50,
    "send_concurrency": 4,  # chunks with the provider at once (the rate limit still applies)
}
# Whatever the settings say, one claim takes at most this many rows and at most
# MAX_SEND_CONCURRENCY chunks are in flight, so a worker holds at most
# (send_concurrency + 1) x MAX_CLAIM_ROWS rows at once and its memory stays flat on any backlog.
MAX_CLAIM_ROWS = 2000
MAX_SEND_CONCURRENCY = 16
CATEGORY_HINT = "__purchase_category"  # variable an ad carries to use the same-kind purchase exception
M = Message.__table__
S = AdSendSlot.__table__
DUE = (MessageStatus.QUEUED.value, MessageStatus.HELD.value)
# An ad in these states keeps its slot of the daily limit; any other state gives it back.
KEEPS_AD_SLOT = (MessageStatus.SENDING.value, MessageStatus.SENT.value, MessageStatus.DELIVERED.value)


def messaging_settings(session: Session) -> dict[str, Any]:
    """The "messaging" owner setting over its defaults. Read directly (not via settings_store) so
    the sender does not import core.accounts.auth, whose import-time argon2 hash costs 64 MB of peak RSS."""
    row = session.get(Setting, "messaging")
    return {**MESSAGING_DEFAULTS, **((row.value if row is not None else None) or {})}


def claim_size(settings: dict[str, Any]) -> int:
    """Rows per claim: the configured batch_size, capped (see MAX_CLAIM_ROWS)."""
    return max(1, min(int(settings["batch_size"]), MAX_CLAIM_ROWS))


def send_concurrency(settings: dict[str, Any]) -> int:
    return max(1, min(int(settings["send_concurrency"]), MAX_SEND_CONCURRENCY))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter: uniform(0.5, 1) x min(cap, base x 2^(attempt-1))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return timedelta(seconds=ceiling * (0.5 + 0.5 * (rng or random).random()))


@dataclass
class _Row:
    values: dict[str, Any]
    outgoing: OutgoingMessage | None = None


_LOAD_COLUMNS = (
    M.c.id,
    M.c.customer_id,
    M.c.to_phone,
    M.c.kind,
    M.c.template_key,
    M.c.text,
    M.c.variables,
    M.c.idempotency_key,
    M.c.attempts,
)


# -- claiming ------------------------------------------------------------------------------------
def claim_due_rows(
    engine: Engine, now: datetime, limit: int, lease: timedelta
) -> tuple[str | None, list[dict[str, Any]]]:
    """Claim up to `limit` due rows for this worker in one transaction; returns (token, rows).

    Queued rows first, then held rows whose hold ended, each oldest first: one status per
    statement lets the (status, send_after) index give the order without sorting the backlog."""
    token = uuid.uuid4().hex
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for status in DUE:
            if len(rows) >= limit:
                break
            due = (
                select(M.c.id)
                .where(M.c.status == status, M.c.send_after <= now)
                .order_by(M.c.send_after)
                .limit(limit - len(rows))
            )
            if is_postgres(engine):
                due = due.with_for_update(skip_locked=True)
            stmt = (
                update(M)
                .where(M.c.id.in_(due.scalar_subquery()))
                .values(
                    status=MessageStatus.SENDING.value,
                    claim_token=token,
                    claim_expires_at=now + lease,
                    updated_at=now,
                )
                .returning(*_LOAD_COLUMNS)
            )
            rows.extend(dict(r._mapping) for r in conn.execute(stmt))
    return (token if rows else None), rows


def claim_due(engine: Engine, now: datetime, limit: int, lease: timedelta) -> str | None:
    """Claim up to `limit` due rows; returns the claim token (None: nothing due)."""
    return claim_due_rows(engine, now, limit, lease)[0]


def claim_expired(engine: Engine, now: datetime, limit: int, lease: timedelta) -> str | None:
    """Take over 'sending' rows whose lease expired (their worker died or the answer was unknown)."""
    token = uuid.uuid4().hex
    stale = (
        select(M.c.id)
        .where(M.c.status == MessageStatus.SENDING.value, M.c.claim_expires_at < now)
        .order_by(M.c.id)
        .limit(limit)
    )
    if is_postgres(engine):
        stale = stale.with_for_update(skip_locked=True)
    stmt = (
        update(M)
        .where(M.c.id.in_(stale.scalar_subquery()))
        .values(claim_token=token, claim_expires_at=now + lease)
    )
    with engine.begin() as conn:
        claimed = conn.execute(stmt).rowcount
    return token if claimed else None


def _load(engine: Engine, token: str) -> list[dict[str, Any]]:
    """The claimed rows, only the columns sending needs (a batch is thousands of rows)."""
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(select(*_LOAD_COLUMNS).where(M.c.claim_token == token))
        ]


def _bind(engine: Engine, column: Any) -> Any:
    processor = column.type._cached_bind_processor(engine.dialect)
    return processor or (lambda value: value)


def _write(engine: Engine, token: str, rows: list[dict[str, Any]]) -> int:
    """Write the rows back in one executemany, only where this worker still holds the claim.

    Plain driver SQL: at thousands of rows a batch, SQLAlchemy's per-row parameter building was the
    sender's largest cost. send_after / sent_at are changed only when a row carries them."""
    if not rows:
        return 0
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"UPDATE message SET status={mark}, reason={mark}, text={mark}, to_phone={mark}, attempts={mark}, "
        f"provider={mark}, provider_message_id={mark}, provider_group_id={mark}, "
        f"send_after=COALESCE({mark}, send_after), sent_at=COALESCE({mark}, sent_at), "
        f"claim_token={mark}, claim_expires_at={mark}, updated_at={mark} "
        f"WHERE id={mark} AND claim_token={mark}"
    )
    when = _bind(engine, M.c.updated_at)
    params = []
    for r in rows:
        send_after, sent_at, expires = r.get("send_after"), r.get("sent_at"), r.get("claim_expires_at")
        params.append(
            (
                r["status"],
                r.get("reason"),
                r.get("text") or "",
                r.get("to_phone"),
                r["attempts"],
                r.get("provider"),
                r.get("provider_message_id"),
                r.get("provider_group_id"),
                None if send_after is None else when(send_after),
                None if sent_at is None else when(sent_at),
                r.get("claim_token"),
                None if expires is None else when(expires),
                when(r["updated_at"]),
                r["id"],
                token,
            )
        )
    released = [
        r["id"] for r in rows if r.get("kind") == MessageKind.ADVERTISING and r["status"] not in KEEPS_AD_SLOT
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, params)
        if released:
            _release_ad_slots(conn, released)
    return len(rows)


def _release_ad_slots(conn: Any, message_ids: list[int]) -> None:
    """Give back the daily-limit slots of ads that did not go out (requeued, held, failed, skipped).
    Checked against the row as written: a row another worker owns again keeps its slot."""
    not_out = select(M.c.id).where(M.c.id.in_(message_ids), M.c.status.not_in(KEEPS_AD_SLOT))
    conn.execute(delete(S).where(S.c.message_id.in_(message_ids), S.c.message_id.in_(not_out)))


# -- preparing: template pre-flight, phone, compliance gate ---------------------------------------
class _Context:
    """What one batch needs from the database, read in a few queries (not one per message)."""

    def __init__(self, engine: Engine, rows: list[dict[str, Any]], now: datetime, provider: Provider) -> None:
        self.now = now
        self.provider = provider
        customer_ids = {r["customer_id"] for r in rows if r["customer_id"] is not None}
        with Session(engine) as session:
            self.templates = {t.key: t for t in session.execute(select(Template)).scalars()}
        if any(spec["key"] not in self.templates for spec in DEFAULT_TEMPLATES):
            self.templates = _with_default_templates(engine)
        with Session(engine) as session:
            self.settings = messaging_settings(session)
            self.customers = (
                {
                    c.id: c
                    for c in session.execute(
                        select(
                            Customer.id,
                            Customer.phone,
                            Customer.ad_consent_at,
                            Customer.night_ad_consent_at,
                            Customer.ad_opt_out_at,
                        ).where(Customer.id.in_(customer_ids))
                    )
                }
                if customer_ids
                else {}
            )
            ad_customers = {
                r["customer_id"]
                for r in rows
                if r["kind"] == MessageKind.ADVERTISING and r["customer_id"] is not None
            }
            self.ads_sent: Counter[int] = Counter()
            self.purchases: dict[tuple[int, str], datetime] = {}
            if ad_customers:
                # A first look at today's slots lets the gate hold what is surely over the limit;
                # the slot insert in reserve_ad_slots is what decides when two workers race.
                counted = session.execute(
                    select(S.c.customer_id, func.count())
                    .where(S.c.customer_id.in_(ad_customers), S.c.kst_day == clock.today_kst(now))
                    .group_by(S.c.customer_id)
                )
                self.ads_sent.update({cid: n for cid, n in counted})
                categories = {
                    r["variables"].get(CATEGORY_HINT)
                    for r in rows
                    if r["kind"] == MessageKind.ADVERTISING and r["variables"]
                } - {None}
                if categories:
                    last = session.execute(
                        select(Order.customer_id, Product.category, func.max(Order.paid_at))
                        .join(OrderItem, OrderItem.order_id == Order.id)
                        .join(Product, Product.id == OrderItem.product_id)
                        .where(
                            Order.customer_id.in_(ad_customers),
                            Product.category.in_(categories),
                            Order.status.in_((OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)),
                        )
                        .group_by(Order.customer_id, Product.category)
                    )
                    self.purchases = {(cid, cat): clock.as_utc(at) for cid, cat, at in last if at is not None}
        app = get_settings()
        self.shop = compliance.Shop(
            name=app.shop_name, opt_out_number=app.opt_out_number, phone=app.shop_phone
        )


def _with_default_templates(engine: Engine) -> dict[str, Template]:
    """Create the missing default templates (a fresh clone has none), then read them all."""
    try:
        with Session(engine) as session:
            ensure_default_templates(session)
            session.commit()
    except IntegrityError:
        pass  # another worker created them at the same moment
    with Session(engine) as session:
        return {t.key: t for t in session.execute(select(Template)).scalars()}


def _render(row: dict[str, Any], ctx: _Context) -> tuple[str, Template | None]:
    """The text to send. A template, when there is one, is the authority (pre-flight included).

    Flows that render their own text (refund notices, inquiry replies, billing notices...) may queue
    it under a key with no template row yet: the embedded outbox records that text as is, while an
    AlimTalk provider refuses it with a clear reason (Kakao only delivers approved templates)."""
    template = ctx.templates.get(row["template_key"])
    if row["kind"] == MessageKind.ADVERTISING and row["text"]:
        return row["text"], template  # campaigns and held ads carry their text already
    alimtalk = ctx.provider.name == "solapi"
    if template is None and row["text"]:
        if alimtalk:
            raise templates.TemplateError(
                f"알림톡 템플릿이 없습니다: {row['template_key']} (설정 > 메시지 템플릿에서 등록·승인 필요)"
            )
        return row["text"], None
    variables = {k: v for k, v in (row["variables"] or {}).items() if not k.startswith(templates.META_PREFIX)}
    try:
        text = templates.preflight(
            template,
            variables,
            require_alimtalk_id=alimtalk,
            max_variable_length=int(ctx.settings["max_variable_length"]),
        )
    except templates.TemplateError:
        if row["text"] and not alimtalk:
            return row["text"], template  # the caller's own text; nothing leaves the machine
        raise
    return text, template


def _prepare(row: dict[str, Any], ctx: _Context) -> _Row:
    """Decide one row: ready to send (outgoing set), or failed / held / skipped with a reason."""
    out = dict(row, claim_token=None, claim_expires_at=None, updated_at=ctx.now)
    customer = ctx.customers.get(row["customer_id"])
    try:
        text, template = _render(row, ctx)
    except templates.TemplateError as exc:
        return _Row(dict(out, status=MessageStatus.FAILED.value, reason=str(exc)))
    try:
        phone = normalize_mobile(row["to_phone"] or (customer.phone if customer else None))
    except InvalidPhone as exc:
        return _Row(dict(out, status=MessageStatus.FAILED.value, reason=str(exc), text=text))
    recipient = compliance.Recipient()
    if customer is not None:
        category = (row["variables"] or {}).get(CATEGORY_HINT)
        recipient = compliance.Recipient(
            ad_consent_at=customer.ad_consent_at,
            night_ad_consent_at=customer.night_ad_consent_at,
            ad_opt_out_at=customer.ad_opt_out_at,
            last_same_kind_purchase_at=ctx.purchases.get((customer.id, category)) if category else None,
            ads_today=ctx.ads_sent[customer.id],
        )
    elif row["kind"] == MessageKind.ADVERTISING:
        return _Row(
            dict(out, status=MessageStatus.SKIPPED.value, reason="고객 정보 없음: 광고 동의 확인 불가")
        )
    decision = compliance.check(
        kind=row["kind"],
        text=text,
        recipient=recipient,
        shop=ctx.shop,
        now=ctx.now,
        daily_ad_limit=int(ctx.settings["daily_ad_limit"]),
    )
    out.update(text=decision.text[:2000], to_phone=phone)
    if decision.action == compliance.Action.SKIP:
        return _Row(dict(out, status=MessageStatus.SKIPPED.value, reason=decision.reason))
    if decision.action == compliance.Action.HOLD:
        return _Row(
            dict(out, status=MessageStatus.HELD.value, reason=decision.reason, send_after=decision.hold_until)
        )
    if row["kind"] == MessageKind.ADVERTISING and customer is not None:
        ctx.ads_sent[customer.id] += 1  # the pressure limit counts this batch too
    outgoing = OutgoingMessage(
        key=row["idempotency_key"],
        to=digits_only(phone),
        text=decision.text,
        kind=row["kind"],
        template_id=template.alimtalk_template_id if template else None,
        variables=templates.wire_variables(template.body, row["variables"] or {}) if template else {},
    )
    return _Row(out, outgoing)


def reserve_ad_slots(
    engine: Engine, ready: list[_Row], ctx: _Context
) -> tuple[list[_Row], list[dict[str, Any]]]:
    """Take a slot of today's (KST) limit for every advertising row about to be sent.

    Returns (rows to send, rows held to the customer's next allowed day). A slot is an ad_send_slot
    row whose unique (customer, day, slot) two workers cannot both insert: on PostgreSQL the second
    insert waits for the first transaction and then does nothing, so the loser sees the winner's
    slot on its next read and takes the next free one or holds its message. Rows are inserted in
    (customer, slot) order so two workers never wait on each other in a cycle."""
    ads = {
        r.values["id"]: r
        for r in ready
        if r.values["kind"] == MessageKind.ADVERTISING and r.values["customer_id"] is not None
    }
    if not ads:
        return ready, []
    day = clock.today_kst(ctx.now)
    limit = int(ctx.settings["daily_ad_limit"])
    insert = (postgresql if is_postgres(engine) else sqlite).insert
    waiting = dict(ads)
    over_limit: set[int] = set()
    for _round in range(limit + 2):  # every lost race fills a slot, so a few rounds settle it
        if not waiting:
            break
        with engine.begin() as conn:
            conn.execute(delete(S).where(S.c.message_id.in_(list(waiting)), S.c.kst_day != day))  # stale
            taken: defaultdict[int, set[int]] = defaultdict(set)
            customers = {r.values["customer_id"] for r in waiting.values()}
            for cid, slot, mid in conn.execute(
                select(S.c.customer_id, S.c.slot, S.c.message_id).where(
                    S.c.customer_id.in_(customers), S.c.kst_day == day
                )
            ):
                taken[cid].add(slot)
                waiting.pop(mid, None)  # this message holds a slot already (its earlier try)
            wanted = []
            for mid, r in sorted(waiting.items()):
                cid = r.values["customer_id"]
                free = next((n for n in range(1, limit + 1) if n not in taken[cid]), None)
                if free is None:
                    over_limit.add(mid)
                    continue
                taken[cid].add(free)
                wanted.append(
                    {
                        "customer_id": cid,
                        "kst_day": day,
                        "slot": free,
                        "message_id": mid,
                        "created_at": ctx.now,
                    }
                )
            for mid in over_limit:
                waiting.pop(mid, None)
            if wanted:
                wanted.sort(key=lambda w: (w["customer_id"], w["slot"]))
                stmt = insert(S).values(wanted).on_conflict_do_nothing().returning(S.c.message_id)
                for mid in conn.execute(stmt).scalars():
                    waiting.pop(mid, None)
    over_limit |= set(waiting)  # still losing races after every round: hold rather than exceed
    held = []
    for mid in sorted(over_limit):
        values = ads[mid].values
        customer = ctx.customers.get(values["customer_id"])
        until = compliance.next_ad_day_start(
            ctx.now, night_consent=customer is not None and customer.night_ad_consent_at is not None
        )
        held.append(
            dict(
                values,
                status=MessageStatus.HELD.value,
                reason=compliance.pressure_reason(limit, until),
                send_after=until,
            )
        )
    return [r for r in ready if r.values["id"] not in over_limit], held


@dataclass
class _Clocked:
    """The part of a batch context that applying a result needs (used by recovery)."""

    now: datetime
    settings: dict[str, Any]


# -- applying results ----------------------------------------------------------------------------
def _apply(
    row: dict[str, Any], result: SendResult, ctx: _Context | _Clocked, provider: Provider, rng: random.Random
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
        return _retry(out, result.reason or "일시적 오류", ctx, rng)
    return dict(
        out,
        status=MessageStatus.FAILED.value,
        reason=result.reason,
        provider_message_id=result.provider_message_id,
        provider_group_id=result.group_id,
    )


def _retry(out: dict[str, Any], reason: str, ctx: _Context | _Clocked, rng: random.Random) -> dict[str, Any]:
    attempts = out["attempts"]
    if attempts >= int(ctx.settings["max_attempts"]):
        return dict(out, status=MessageStatus.FAILED.value, reason=f"재시도 {attempts}회 후 실패: {reason}")
    delay = backoff_delay(
        attempts, float(ctx.settings["backoff_base_seconds"]), float(ctx.settings["backoff_max_seconds"]), rng
    )
    return dict(
        out, status=MessageStatus.QUEUED.value, reason=f"재시도 예정: {reason}", send_after=ctx.now + delay
    )


def _send_chunk(
    engine: Engine,
    token: str,
    ready: list[_Row],
    ctx: _Context,
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
        _write_keep_claim(engine, token, rows)
        counts["unknown"] += len(rows)
        return counts
    except RetriableProviderError as exc:
        rows = [_retry(r.values, str(exc), ctx, rng) for r in ready]
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
            rows.append(_apply(r.values, result, ctx, provider, rng))
    _write(engine, token, rows)
    counts.update(r["status"] for r in rows)
    return counts


def _write_keep_claim(engine: Engine, token: str, rows: list[dict[str, Any]]) -> None:
    stmt = (
        update(M)
        .where(M.c.id == bindparam("_id"), M.c.claim_token == bindparam("_token"))
        .values(
            claim_expires_at=bindparam("v_exp"),
            reason=bindparam("v_reason"),
            attempts=bindparam("v_attempts"),
            text=bindparam("v_text"),
            to_phone=bindparam("v_phone"),
            updated_at=bindparam("v_now"),
        )
    )
    with engine.begin() as conn:
        conn.execute(
            stmt,
            [
                {
                    "_id": r["id"],
                    "_token": token,
                    "v_exp": r["claim_expires_at"],
                    "v_reason": r["reason"],
                    "v_attempts": r["attempts"],
                    "v_text": r["text"],
                    "v_phone": r["to_phone"],
                    "v_now": r["updated_at"],
                }
                for r in rows
            ],
        )


def prepare_claim(
    engine: Engine,
    token: str,
    now: datetime,
    provider: Provider,
    counts: Counter[str],
    rows: list[dict[str, Any]] | None = None,
) -> tuple[list[list[_Row]], _Context | None, int]:
    """Gate and pre-flight the claimed rows; record the ones that will not be sent.
    Returns the chunks ready to send, the batch context and the number of rows claimed."""
    rows = _load(engine, token) if rows is None else rows
    if not rows:
        return [], None, 0
    ctx = _Context(engine, rows, now, provider)
    prepared = [_prepare(r, ctx) for r in rows]
    ready, over_limit = reserve_ad_slots(engine, [p for p in prepared if p.outgoing is not None], ctx)
    decided = [p.values for p in prepared if p.outgoing is None] + over_limit
    _write(engine, token, decided)
    counts.update(r["status"] for r in decided)
    chunk = max(1, min(provider.max_batch, claim_size(ctx.settings)))
    return [ready[i : i + chunk] for i in range(0, len(ready), chunk)], ctx, len(rows)


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
    token = claim_expired(engine, now, claim_size(settings), lease)
    if token is None:
        return 0
    rows = _load(engine, token)
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
        _write_keep_claim(engine, token, rows)
        counts["recovery_deferred"] += len(rows)
        return len(rows)
    ctx_settings = _Clocked(now, settings)
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
            updated.append(_apply(r, result, ctx_settings, provider, rng))
            counts["recovered_found"] += 1
    _write(engine, token, updated)
    return len(rows)


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
                token, rows = claim_due_rows(engine, now, claim_size(settings), lease)
                if token is None:
                    break
                chunks, ctx, claimed = prepare_claim(engine, token, now, provider, counts, rows)
                counts["claimed"] += claimed
                for chunk in chunks:
                    while len(pending) >= concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            counts.update(future.result())
                    pending.add(pool.submit(_send_chunk, engine, token, chunk, ctx, provider, rng))
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


def main(argv: list[str] | None = None) -> None:
    """`python -m core.messaging.sender [--now ISO] [--loop SECONDS]`: one tick (or a loop) of the
    sender alone; the worker runs the same job. Prints the counts as JSON."""
    import argparse
    import json

    from core.db import make_engine

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--now", help="ISO-8601 instant (default: the clock)")
    parser.add_argument("--loop", type=float, default=0.0, help="keep ticking every N seconds")
    parser.add_argument("--drain", action="store_true", help="tick until nothing is due")
    args = parser.parse_args(argv)
    engine = make_engine()
    provider = make_provider()
    try:
        while True:
            now = clock.parse_instant(args.now) if args.now else clock.now()
            counts = run(engine, now, provider=provider)
            print(json.dumps(counts), flush=True)
            if args.drain and counts.get("claimed"):
                continue
            if not args.loop:
                break
            time.sleep(args.loop)
    finally:
        provider.close()
        if args.drain:
            print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def peak_rss_mb() -> float:
    """This process's own peak RSS. VmHWM, not ru_maxrss: after fork+exec Linux carries the
    parent's peak into the child's ru_maxrss, so a worker started by a big process would report
    that process's memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
