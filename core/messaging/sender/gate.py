"""Hold rules: the batch context, template pre-flight, phone, the compliance gate, and the daily
ad-limit slots. Decides for each claimed row: ready to send, or held / skipped / failed with a reason."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
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
    OutgoingMessage,
    Provider,
)
from core.messaging.sender.claims import M, S
from core.messaging.sender.settings import CATEGORY_HINT, messaging_settings
from core.models import (
    Customer,
    MessageKind,
    MessageStatus,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Template,
)


@dataclass
class Row:
    values: dict[str, Any]
    outgoing: OutgoingMessage | None = None


# -- preparing: template pre-flight, phone, compliance gate ---------------------------------------
class Context:
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
                            Customer.mobile,
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
            # Ads already held to a later day, per (customer, KST day): the next free day is the
            # first one under the limit, so held ads spread over days instead of piling on one.
            self.planned: Counter[tuple[int, date]] = Counter()
            if ad_customers:
                batch = [r["id"] for r in rows]
                for cid, send_after in session.execute(
                    select(M.c.customer_id, M.c.send_after).where(
                        M.c.customer_id.in_(ad_customers),
                        M.c.kind == MessageKind.ADVERTISING.value,
                        M.c.status == MessageStatus.HELD.value,
                        M.c.send_after > now,
                        M.c.id.not_in(batch),
                    )
                ):
                    self.planned[(cid, clock.today_kst(clock.as_utc(send_after)))] += 1
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


NOT_REGISTERED_RECHECK = timedelta(hours=1)  # a held row looks again hourly; saving the id wakes it at once


def next_free_day(ctx: Context, customer_id: int, *, night_consent: bool) -> datetime:
    """The first instant of the customer's next KST day with a free ad slot (08:00, or midnight with
    night consent), counting the ads already held to each day; books this ad on it."""
    limit = int(ctx.settings["daily_ad_limit"])
    until = compliance.next_ad_day_start(ctx.now, night_consent=night_consent)
    for _ in range(60):
        day = clock.today_kst(until)
        if ctx.planned[(customer_id, day)] < limit:
            break
        until = compliance.next_ad_day_start(until, night_consent=night_consent)
    ctx.planned[(customer_id, clock.today_kst(until))] += 1
    return until


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


def _render(row: dict[str, Any], ctx: Context) -> tuple[str, Template | None]:
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


def prepare_row(row: dict[str, Any], ctx: Context) -> Row:
    """Decide one row: ready to send (outgoing set), or failed / held / skipped with a reason."""
    out = dict(row, claim_token=None, claim_expires_at=None, updated_at=ctx.now)
    customer = ctx.customers.get(row["customer_id"])
    try:
        text, template = _render(row, ctx)
    except templates.TemplateNotRegistered as exc:
        # Held, not failed: it goes once the owner enters the id (service.update_template wakes it).
        return Row(
            dict(
                out,
                status=MessageStatus.HELD.value,
                reason=str(exc),
                send_after=ctx.now + NOT_REGISTERED_RECHECK,
            )
        )
    except templates.TemplateError as exc:
        return Row(dict(out, status=MessageStatus.FAILED.value, reason=str(exc)))
    try:
        # The customer's canonical mobile number (consent follows it); a row without a customer
        # (a staff alert) has its own number. Either way only a Korean mobile in ASCII digits.
        mobile = customer.mobile if customer is not None else None
        phone = normalize_mobile(mobile or row["to_phone"] or (customer.phone if customer else None))
    except InvalidPhone as exc:
        return Row(dict(out, status=MessageStatus.FAILED.value, reason=str(exc), text=text))
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
        return Row(
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
        return Row(dict(out, status=MessageStatus.SKIPPED.value, reason=decision.reason))
    if decision.action == compliance.Action.HOLD and decision.pressure and customer is not None:
        until = next_free_day(ctx, customer.id, night_consent=customer.night_ad_consent_at is not None)
        reason = compliance.pressure_reason(int(ctx.settings["daily_ad_limit"]), until, ctx.now)
        return Row(dict(out, status=MessageStatus.HELD.value, reason=reason, send_after=until))
    if decision.action == compliance.Action.HOLD:
        return Row(
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
    return Row(out, outgoing)


def reserve_ad_slots(
    engine: Engine, ready: list[Row], ctx: Context
) -> tuple[list[Row], list[dict[str, Any]]]:
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
        until = next_free_day(
            ctx,
            values["customer_id"],
            night_consent=customer is not None and customer.night_ad_consent_at is not None,
        )
        held.append(
            dict(
                values,
                status=MessageStatus.HELD.value,
                reason=compliance.pressure_reason(limit, until, ctx.now),
                send_after=until,
            )
        )
    return [r for r in ready if r.values["id"] not in over_limit], held
