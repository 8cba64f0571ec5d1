"""Post-purchase automations (worker jobs): order confirmation, review request and reminder,
repurchase reminder. Each only queues messages through `outbox.enqueue` with a fixed idempotency
key, so a retried tick or a second worker never queues twice; the sender then gates and sends.

Each is switched on/off and timed in settings_store key "automations" (owner, on 설정).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock, settings_store
from core.config import get_settings
from core.db import session_scope
from core.messaging import welcome
from core.messaging.default_templates import DEFAULT_TEMPLATES, ensure_default_templates  # noqa: F401
from core.messaging.outbox import enqueue
from core.messaging.sender import CATEGORY_HINT
from core.models import (
    Customer,
    Inquiry,
    InquiryStatus,
    Message,
    MessageKind,
    MessageStatus,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Refund,
    Review,
    Setting,
    Subscription,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.money import format_krw
from core.payments.checkout import refund_policy
from core.rewards.referral import referral_code_for, referral_url

AUTOMATION_DEFAULTS: dict[str, Any] = {
    "order_confirmation": {"enabled": True, "lookback_hours": 48},
    "review_request": {
        "enabled": True,
        "days_after": 3,
        "window_days": 14,  # only orders delivered (or paid) in the last N days: never a backfill
        "cap_days": 7,  # at most one review request per customer per N days
        "reminder_enabled": True,
        "reminder_days": 4,
    },
    "repurchase": {"enabled": True, "days_before": 0, "lookback_days": 7},
    "shop": {
        "return_address": "서울특별시 중구 세종대로 110, 채널데스크 반품센터",
        "review_url": "{base}/review?t={token}",
        "product_url": "{base}/product/{product_id}",
    },
}

PAID_STATUSES = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)
SAMPLE_REVIEW_TOKEN = "SAMPLE"  # template previews show a link shape, never a real customer's link

# (session, the orders a request names, now) -> the review link's token: core.reviews passes it in
# (core.reviews.jobs), so this module stays below the reviews domain.
ReviewLink = Callable[[Session, list[Order], datetime], str | None]
ORDER_IDS = "__orders"  # the orders a review request names (pipeline variable, never rendered)


def automation_settings(session: Session) -> dict[str, Any]:
    stored = settings_store.get(session, "automations") or {}
    merged = copy.deepcopy(AUTOMATION_DEFAULTS)
    for key, value in stored.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def _key(prefix: str, column: Any) -> Any:
    """SQL for "prefix" || id, the same on SQLite and PostgreSQL."""
    return literal(prefix, String).concat(cast(column, String))


def _link(pattern: str, **values: Any) -> str:
    return pattern.format(base=get_settings().public_base_url.rstrip("/"), **values)


# -- order confirmation --------------------------------------------------------------------------
def order_confirmation_variables(session: Session, order: Order, shop: dict[str, Any]) -> dict[str, Any]:
    customer = session.get(Customer, order.customer_id)
    items = session.execute(
        select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
    ).scalars().all()
    lines = [f"- {i.product_name} x {i.quantity}: {format_krw(i.amount)}" for i in items]
    product_id = next((i.product_id for i in items if i.product_id is not None), None)
    return {
        "고객명": customer.name if customer else "고객",
        "주문번호": order.order_number,
        "상품목록": "\n".join(lines) or "-",
        "결제금액": format_krw(order.total_amount),
        "배송방법": order.shipping_method or "택배",
        "배송예정일": order.expected_ship_date.strftime("%Y-%m-%d")
        if order.expected_ship_date
        else "추후 안내",
        "배송조회": order.tracking_url or "출고 후 안내해 드립니다",
        "반품정책": refund_policy(session),  # the owner's one policy (설정)
        "반품주소": shop["return_address"],
        "추천링크": referral_url(referral_code_for(session, order.customer_id), product_id),
    }


def enqueue_order_confirmation(session: Session, order: Order, send_after: datetime | None = None) -> Message:
    """Queue the confirmation of a paid order (payments may call this in the payment transaction).

    A job passes its `now`: the sender running as of the same instant then sends it in the same tick
    (the wall clock would be a hair later than the tick's now and wait a whole tick)."""
    shop = automation_settings(session)["shop"]
    welcome.offer(session, order.customer_id, send_after or clock.now())  # a first payment: the welcome too
    return enqueue(
        session,
        customer_id=order.customer_id,
        template_key="order_confirmation",
        variables=order_confirmation_variables(session, order, shop),
        idempotency_key=f"order_confirmation:{order.id}",
        kind=MessageKind.INFORMATIONAL,
        send_after=send_after,
    )


def order_confirmations(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: every order paid recently without a confirmation gets one (a catch-up after the
    worker was down). Only live orders: one paid before the automations went live (a seeded or
    imported history, a shop's first start) is history and is never confirmed now."""
    with session_scope(engine) as session:
        config = automation_settings(session)
        if not config["order_confirmation"]["enabled"]:
            return {"disabled": 1}
        state = live_state(session, now)
        lookback = now - timedelta(hours=int(config["order_confirmation"]["lookback_hours"]))
        keyed = Message.idempotency_key == _key("order_confirmation:", Order.id)
        orders = (
            session.execute(
                select(Order)
                .where(
                    Order.paid_at >= lookback,
                    Order.paid_at >= state["since"],  # paid before going live: history
                    Order.paid_at <= now,
                    Order.source != "import",
                    Order.status.in_(PAID_STATUSES),
                    ~exists().where(keyed),
                )
                .order_by(Order.paid_at)
                .limit(5000)
            )
            .scalars()
            .all()
        )
        for order in orders:
            enqueue_order_confirmation(session, order, send_after=now)
    return {"queued": len(orders)}


# -- when the automations went live: history never triggers them ------------------------------
LIVE_KEY = "automations_live"


def live_state(session: Session, now: datetime, *, record: bool = True) -> dict[str, Any]:
    """When the automations went live on this store, and which history the owner let in.

    Klaviyo's rule: a flow acts on events after it goes live, never on the past. The first tick of
    an automation records `since` (that tick's instant); an order paid at or before it, or any
    imported order, is history and triggers nothing (a seeded demo or a year of imported orders
    does not wake up). The owner may let in the recent history on 설정 (`include_history`):
    orders paid from `history_from` on then count too, still under the window and the cap."""
    row = session.get(Setting, LIVE_KEY)
    value = dict(row.value or {}) if row is not None else {}
    if not value.get("since"):
        value = {"since": now.isoformat(), "history_from": None}
        if not record:  # a look from 설정 before the worker's first tick: nothing went live yet
            return {"since": now, "history_from": None}
        try:
            with session.begin_nested():
                session.add(Setting(key=LIVE_KEY, value=value, updated_at=now))
        except IntegrityError:  # another worker went live at the same moment: its instant wins
            session.expire_all()
            value = dict(session.get(Setting, LIVE_KEY).value or {})
    since = clock.parse_instant(value["since"])
    history_from = clock.parse_instant(value["history_from"]) if value.get("history_from") else None
    return {"since": since, "history_from": history_from}


def _live_orders(state: dict[str, Any]) -> Any:
    """SQL: orders that are live events (not history the owner has not let in)."""
    live = and_(Order.paid_at > state["since"], Order.source != "import")
    if state["history_from"] is None:
        return live
    return or_(live, and_(Order.paid_at >= state["history_from"], Order.paid_at <= state["since"]))


# -- review request and reminder -----------------------------------------------------------------
def _no_review_no_refund():
    """Paid, not refunded, and an item still without a submitted review (a review of the whole order,
    from before reviews were per item, settles the order)."""
    rated = Review.rating.is_not(None)  # type: ignore[union-attr]
    return and_(
        ~exists().where(Review.order_id == Order.id, rated, Review.order_item_id.is_(None)),  # type: ignore[union-attr]
        exists().where(
            OrderItem.order_id == Order.id,
            ~exists().where(Review.order_item_id == OrderItem.id, rated),
        ),
        ~exists().where(Refund.order_id == Order.id),
        Order.status == OrderStatus.PAID.value,
        Order.refunded_amount == 0,
    )


def _requested_orders(variables: dict[str, Any] | None, key: str) -> set[int]:
    """The orders a review request named (older rows were keyed one order each)."""
    ids = (variables or {}).get(ORDER_IDS)
    if ids:
        return {int(i) for i in ids}
    tail = key.rpartition(":")[2]
    return {int(tail)} if tail.isdigit() and key.count(":") == 1 else set()


def review_candidates(
    session: Session, now: datetime, rule: dict[str, Any], state: dict[str, Any]
) -> dict[int, list[Order]]:
    """customer -> the orders one review request would name now (window, history, cap applied).

    An order qualifies when it is paid (not refunded, not cancelled), has no review, and was
    delivered (or paid, with no delivery date) between `window_days` and `days_after` days ago.
    A customer asked in the last `cap_days` days waits; orders an earlier request named are never
    named again. Several qualifying orders become one message."""
    base = func.coalesce(Order.delivered_at, Order.paid_at)
    due_before = now - timedelta(days=int(rule["days_after"]))
    window_start = now - timedelta(days=int(rule["window_days"]))
    orders = (
        session.execute(
            select(Order)
            .where(
                base <= due_before,
                base >= window_start,
                Order.paid_at <= now,
                _no_review_no_refund(),
                _live_orders(state),
            )
            .order_by(Order.customer_id, base, Order.id)
            .limit(20000)
        )
        .scalars()
        .all()
    )
    by_customer: dict[int, list[Order]] = {}
    for order in orders:
        by_customer.setdefault(order.customer_id, []).append(order)
    if not by_customer:
        return {}
    cap_start = now - timedelta(days=int(rule["cap_days"]))
    asked = session.execute(
        select(Message.customer_id, Message.idempotency_key, Message.variables, Message.created_at).where(
            Message.customer_id.in_(list(by_customer)), Message.template_key == "review_request"
        )
    ).all()
    capped: set[int] = set()
    named: set[int] = set()
    for cid, key, variables, created_at in asked:
        named |= _requested_orders(variables, key)
        if clock.as_utc(created_at) > cap_start:
            capped.add(cid)
    result = {}
    for cid, items in by_customer.items():
        fresh = [o for o in items if o.id not in named]
        if fresh and cid not in capped:
            result[cid] = fresh
    return result


def review_requests(engine: Engine, now: datetime, *, review_link: ReviewLink) -> dict[str, int]:
    """Worker job (through core.reviews.jobs): ask for a review of recent orders, one message per
    customer at most every `cap_days` days naming every order due; one reminder per request after
    `reminder_days`, only for the orders with an item still without a review, and no refund.
    History never triggers (see live_state). `review_link` gives the /review token the message links to."""
    counts = {"requested": 0, "reminded": 0}
    with session_scope(engine) as session:
        config = automation_settings(session)
        rule = config["review_request"]
        if not rule["enabled"]:
            return {"disabled": 1}
        shop = config["shop"]
        state = live_state(session, now)
        for cid, orders in review_candidates(session, now, rule, state).items():
            _enqueue_review(
                session,
                cid,
                orders,
                "review_request",
                f"review_request:{cid}:{orders[-1].id}",
                shop,
                now,
                review_link,
            )
            counts["requested"] += 1
        if rule["reminder_enabled"]:
            counts["reminded"] = _review_reminders(session, now, rule, shop, review_link)
    return counts


def _review_reminders(
    session: Session, now: datetime, rule: dict[str, Any], shop: dict[str, Any], review_link: ReviewLink
) -> int:
    sent_before = now - timedelta(days=int(rule["reminder_days"]))
    first = Message.__table__.alias("first")
    reminded = Message.__table__.alias("reminded")
    requests = session.execute(
        select(first.c.id, first.c.customer_id, first.c.idempotency_key, first.c.variables).where(
            first.c.template_key == "review_request",
            first.c.status.in_((MessageStatus.SENT.value, MessageStatus.DELIVERED.value)),
            first.c.sent_at <= sent_before,
            first.c.sent_at >= sent_before - timedelta(days=30),
            ~exists().where(reminded.c.idempotency_key == _key("review_reminder:", first.c.id)),
        )
    ).all()
    count = 0
    for mid, cid, key, variables in requests:
        ids = _requested_orders(variables, key)
        if not ids:
            continue
        if len(ids) == 1 and key.count(":") == 1:
            reminder_key = f"review_reminder:{next(iter(ids))}"  # a request of the one-order era
        else:
            reminder_key = f"review_reminder:{mid}"
        if session.execute(select(Message.id).where(Message.idempotency_key == reminder_key)).first():
            continue
        still = (
            session.execute(select(Order).where(Order.id.in_(ids), _no_review_no_refund()).order_by(Order.id))
            .scalars()
            .all()
        )
        if still:
            _enqueue_review(
                session, cid, list(still), "review_reminder", reminder_key, shop, now, review_link
            )
            count += 1
    return count


def order_list_text(numbers: list[str], limit: int = 3) -> str:
    """'CD-1', 'CD-1, CD-2' or 'CD-1, CD-2, CD-3 외 2건': every order named, briefly."""
    shown = ", ".join(numbers[:limit])
    return shown if len(numbers) <= limit else f"{shown} 외 {len(numbers) - limit}건"


def _enqueue_review(
    session: Session,
    customer_id: int,
    orders: list[Order],
    template: str,
    key: str,
    shop: dict[str, Any],
    now: datetime,
    review_link: ReviewLink,
) -> Message:
    customer = session.get(Customer, customer_id)
    latest = orders[-1]
    token = review_link(session, orders, now) or ""
    message = enqueue(
        session,
        customer_id=customer_id,
        template_key=template,
        kind=MessageKind.INFORMATIONAL,
        variables={
            "고객명": customer.name if customer else "고객",
            "주문번호": order_list_text([o.order_number for o in orders]),
            "리뷰링크": _link(
                shop["review_url"], token=token, order_number=latest.order_number, order_id=latest.id
            ),
            ORDER_IDS: [o.id for o in orders],
        },
        idempotency_key=key,
        send_after=now,
    )
    message.created_at = now  # the cap counts from the job's instant (the test clock), not the wall
    return message


def history_preview(session: Session, now: datetime) -> dict[str, int]:
    """What letting in the recent history would do now: review requests (customers) and the
    orders they would name. Shown on 설정 before the owner confirms."""
    config = automation_settings(session)
    rule = config["review_request"]
    state = live_state(session, now, record=False)
    window_start = now - timedelta(days=int(rule["window_days"]))
    wider = {"since": state["since"], "history_from": min(window_start, state["since"])}
    with_history = review_candidates(session, now, rule, wider)
    without = review_candidates(session, now, rule, state)
    return {
        "customers": len(with_history) - len(without),
        "orders": sum(map(len, with_history.values())) - sum(map(len, without.values())),
        "window_days": int(rule["window_days"]),
    }


def include_history(session: Session, actor: Any, now: datetime) -> dict[str, int]:
    """Owner only, audited: let the last `window_days` of orders (seeded or imported included)
    trigger the automations, under the same window and per-customer cap. Returns the preview."""
    preview = history_preview(session, now)
    state = live_state(session, now)
    window_start = now - timedelta(days=preview["window_days"])
    value = {
        "since": state["since"].isoformat(),
        "history_from": min(window_start, state["since"]).isoformat(),
    }
    settings_store.put(session, actor, LIVE_KEY, value)
    return preview


# -- repurchase reminder -------------------------------------------------------------------------
def repurchase_reminders(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: at each product's replenishment cycle after the customer's last purchase of it.

    Skipped when bought again (the cycle restarts from the newer purchase), subscribed to it, an
    open inquiry, or a refund on that last order. Advertising: the sender's gate decides the rest.
    """
    counts = {"queued": 0, "skipped": 0}
    with session_scope(engine) as session:
        config = automation_settings(session)
        rule = config["repurchase"]
        if not rule["enabled"]:
            return {"disabled": 1}
        shop = config["shop"]
        state = live_state(session, now)
        today = clock.today_kst(now)
        last = (
            select(Order.customer_id, OrderItem.product_id, func.max(Order.paid_at).label("last_paid"))
            .join(OrderItem, OrderItem.order_id == Order.id)
            .where(
                Order.status.in_(PAID_STATUSES),
                OrderItem.product_id.is_not(None),
                Order.paid_at <= now,
                _live_orders(state),  # a purchase before the automations went live is history
            )
            .group_by(Order.customer_id, OrderItem.product_id)
            .subquery()
        )
        rows = session.execute(
            select(last.c.customer_id, last.c.last_paid, Product)
            .join(Product, Product.id == last.c.product_id)
            .where(Product.replenishment_days.is_not(None), Product.is_active)
        ).all()
        for customer_id, last_paid, product in rows:
            last_paid = clock.as_utc(last_paid)
            due = clock.today_kst(last_paid) + timedelta(
                days=product.replenishment_days - int(rule["days_before"])
            )
            if not (due <= today <= due + timedelta(days=int(rule["lookback_days"]))):
                continue
            key = f"repurchase:{customer_id}:{product.id}:{due.isoformat()}"
            if session.execute(select(Message.id).where(Message.idempotency_key == key)).first():
                continue
            if _repurchase_blocked(session, customer_id, product, last_paid):
                counts["skipped"] += 1
                continue
            customer = session.get(Customer, customer_id)
            enqueue(
                session,
                customer_id=customer_id,
                template_key="repurchase",
                kind=MessageKind.ADVERTISING,
                variables={
                    "고객명": customer.name if customer else "고객",
                    "상품명": product.name,
                    "경과일": (today - clock.today_kst(last_paid)).days,
                    "상품링크": _link(shop["product_url"], product_id=product.id),
                    CATEGORY_HINT: product.category,
                },
                idempotency_key=key,
                send_after=now,
            )
            counts["queued"] += 1
    return counts


def _repurchase_blocked(session: Session, customer_id: int, product: Product, last_paid: datetime) -> bool:
    subscribed = session.execute(
        select(Subscription.id)
        .join(SubscriptionPlan, SubscriptionPlan.id == Subscription.plan_id)
        .where(
            Subscription.customer_id == customer_id,
            SubscriptionPlan.product_id == product.id,
            Subscription.status.in_(
                (
                    SubscriptionStatus.ACTIVE.value,
                    SubscriptionStatus.PAUSED.value,
                    SubscriptionStatus.PAST_DUE.value,
                )
            ),
        )
    ).first()
    if subscribed:
        return True
    open_inquiry = session.execute(
        select(Inquiry.id).where(
            Inquiry.customer_id == customer_id, Inquiry.status != InquiryStatus.RESOLVED.value
        )
    ).first()
    if open_inquiry:
        return True
    refunded = session.execute(
        select(Order.id)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .where(
            Order.customer_id == customer_id,
            OrderItem.product_id == product.id,
            or_(
                exists().where(Refund.order_id == Order.id),
                Order.status.in_((OrderStatus.REFUNDED.value, OrderStatus.PARTIALLY_REFUNDED.value)),
            ),
            Order.paid_at >= last_paid,
        )
    ).first()
    return refunded is not None


def sample_variables(session: Session, template_key: str, customer: Customer | None) -> dict[str, Any]:
    """Variables for a template preview: the customer's latest order when there is one."""
    shop = automation_settings(session)["shop"]
    name = customer.name if customer else "홍길동"
    order = None
    if customer is not None:
        order = (
            session.execute(
                select(Order).where(Order.customer_id == customer.id).order_by(Order.ordered_at.desc())
            )
            .scalars()
            .first()
        )
    values: dict[str, Any] = {
        "고객명": name,
        "주문번호": "CD-20261201-0001",
        "상품목록": "- 데일리 샴푸 x 2: 30,000원",
        "결제금액": "30,000원",
        "배송방법": "택배",
        "배송예정일": "2026-12-02",
        "배송조회": "출고 후 안내해 드립니다",
        "반품정책": refund_policy(session),  # the owner's one policy (설정)
        "환불정책": refund_policy(session),
        "반품주소": shop["return_address"],
        "리뷰링크": _link(
            shop["review_url"], token=SAMPLE_REVIEW_TOKEN, order_number="CD-20261201-0001", order_id=0
        ),
        "상품명": "데일리 샴푸",
        "경과일": 30,
        "상품링크": _link(shop["product_url"], product_id=1),
        "amount": 39000,
        "tid": "T1234567890123456789",
        "payment_id": 1,
        "내용": "[결제 오류] 12번 첫 응답 기한 임박 (기한 2026-12-01 09:30) · 결제가 안 돼요",
        # recurring billing (core/billing/); optional sentences shown filled in
        "언제": "내일",
        "결제일": "12월 1일",
        "금액": "39,000원",
        "다음결제안내": " 다음 결제일은 1월 1일입니다.",
        "사유": "잔액 부족",
        "재시도안내": " 12월 2일에 다시 결제를 시도합니다.",
        "결제안내": " 아래 링크에서 직접 결제하실 수 있습니다: https://example.com/pay?link=…",
        "조치": "일시정지",
        "재개안내": " 1월 15일에 다시 시작됩니다.",
        "다음결제일": "1월 1일",
        "해지상태": "접수되었습니다",
        "종료일": "1월 1일",
        # payment links, refunds, inquiry replies
        "환불금액": "30,000원",
        "결제링크": "https://example.com/pay?link=…",
        "만료일시": "2026-12-03 12:00",
        "답변": "문의 주셔서 감사합니다. 환불은 오늘 처리해 드렸습니다.",
        # referrals (core/rewards)
        "추천링크": referral_url("ABCD2345", 1),
        "보상": "3,000원 할인 쿠폰(ABCD-EFGH-JKMN, 2027-01-05까지)",
    }
    if order is not None:
        values.update(order_confirmation_variables(session, order, shop))
        values["리뷰링크"] = _link(
            shop["review_url"], token=SAMPLE_REVIEW_TOKEN, order_number=order.order_number, order_id=order.id
        )
    return values
