"""Payment links, the staff side: create one, read it, and the rules of a link's state.

A ready-made (per product) or custom quote a staff member sends in the chat. Creating a link stores
it and gives a copy-ready Korean chat text; no gateway call (a KakaoPay tid lives ~15 minutes, a
link days). What the customer does with it lives in link_checkout.py (open, ready, the return from
the gateway) and link_approval.py (approve once, the order); reminders, expiry and the look-ups of
unknown outcomes are the worker's (jobs.py). The state rules both sides share are here: when a link
has expired, whether it can be paid, its payment and the tid an attempt readied, its funnel events.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.config import get_settings
from core.errors import NotFound, ValidationFailed
from core.models import Customer, PaymentLink, PaymentLinkStatus, Product, Role
from core.models.orders import Payment
from core.money import format_krw
from core.payments.gateways.router import PaymentRouter
from core.payments.orders import check_amount

LINK_SETTINGS_KEY = "payment_links"


LINK_DEFAULTS = {"reminder_after_hours": 24, "expire_after_hours": 72}


OPEN_STATUSES = (
    PaymentLinkStatus.CREATED,
    PaymentLinkStatus.OPENED,
    PaymentLinkStatus.METHOD_SELECTED,
    PaymentLinkStatus.QUIT,
    PaymentLinkStatus.FAILED,
)


# KakaoPay order status -> link funnel status.
GATEWAY_FUNNEL = {
    "READY": PaymentLinkStatus.CREATED,
    "SEND_TMS": PaymentLinkStatus.OPENED,
    "OPEN_PAYMENT": PaymentLinkStatus.OPENED,
    "SELECT_METHOD": PaymentLinkStatus.METHOD_SELECTED,
    "ARS_WAITING": PaymentLinkStatus.METHOD_SELECTED,
    "AUTH_PASSWORD": PaymentLinkStatus.METHOD_SELECTED,
    "QUIT_PAYMENT": PaymentLinkStatus.QUIT,
    "FAIL_PAYMENT": PaymentLinkStatus.FAILED,
    "FAIL_AUTH_PASSWORD": PaymentLinkStatus.FAILED,
}


def link_settings(session: Session) -> dict[str, int]:
    from core import settings_store

    stored = settings_store.get(session, LINK_SETTINGS_KEY) or {}
    return {**LINK_DEFAULTS, **{k: int(v) for k, v in stored.items() if k in LINK_DEFAULTS}}


def link_router(session: Session, router: PaymentRouter | None) -> PaymentRouter:
    """The router a caller passed (tests, the worker), else the configured one for this database."""
    if router is not None:
        return router
    from core.payments.gateways.registry import get_router

    return get_router(engine=session.get_bind())  # type: ignore[arg-type]


def link_url(link: PaymentLink) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/pay?link={link.code}"


def chat_text(link: PaymentLink) -> str:
    """What staff paste into the KakaoTalk chat."""
    lines = [
        f"[{get_settings().shop_name}] 결제 안내",
        f"상품: {link.item_name}",
        f"결제 금액: {format_krw(link.amount)}",
    ]
    if link.memo:
        lines.append(f"안내: {link.memo}")
    lines += ["아래 링크에서 카카오페이로 결제해 주세요.", link_url(link)]
    if link.expires_at:
        lines.append(f"링크 유효기간: {clock.format_kst(link.expires_at)}까지")
    return "\n".join(lines)


def partner_order_id(link: PaymentLink) -> str:
    return code_order_id(link.code)


def code_order_id(code: str) -> str:
    """The partner_order_id the gateway knows a link's payment by."""
    return f"PL-{code}"


def create_payment_link(
    session: Session,
    actor: Actor,
    *,
    product_id: int | None = None,
    item_name: str | None = None,
    amount: Any = None,
    tax_free_amount: Any = 0,
    memo: str | None = None,
    customer_id: int | None = None,
    inquiry_id: int | None = None,
    router: PaymentRouter | None = None,
) -> PaymentLink:
    """A ready-made link (product_id) or a custom quote (item_name + amount); commits the session.

    No gateway call here: KakaoPay's tid lives about 15 minutes and a link lives for days, so the
    payment is readied when the customer starts paying (start_payment).
    """
    require_role(actor, Role.OWNER, Role.CS, Role.STAFF)
    product = None
    if product_id is not None:
        product = session.get(Product, product_id)
        if product is None or not product.is_active:
            raise ValidationFailed(f"판매 중인 상품이 아닙니다 (#{product_id})")
        item_name = item_name or product.name
        amount = product.price if amount in (None, "") else amount
        if product.is_tax_free and not tax_free_amount:
            tax_free_amount = amount
    item_name = (item_name or "").strip()
    if not item_name or len(item_name) > 120:
        raise ValidationFailed("상품명을 1~120자로 입력하세요")
    amount = check_amount(amount, "결제 금액")
    tax_free_amount = check_amount(tax_free_amount or 0, "면세 금액", allow_zero=True)
    if tax_free_amount > amount:
        raise ValidationFailed(
            f"면세 금액({format_krw(tax_free_amount)})이 결제 금액({format_krw(amount)})보다 큽니다"
        )
    memo = (memo or "").strip() or None
    if memo and len(memo) > 500:
        raise ValidationFailed("메모는 500자 이내로 입력하세요")
    customer = None
    if customer_id is not None:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise ValidationFailed(f"없는 고객입니다 (#{customer_id})")
    settings = link_settings(session)
    gateway = link_router(session, router).primary.name  # an unknown gateway in configuration fails here
    code = secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")
    link = PaymentLink(
        code=code,
        product_id=product_id,
        customer_id=customer_id,
        inquiry_id=inquiry_id,
        item_name=item_name,
        amount=amount,
        tax_free_amount=tax_free_amount,
        memo=memo,
        gateway=gateway,
        created_by=actor.id,
        expires_at=clock.now() + timedelta(hours=settings["expire_after_hours"]),
    )
    session.add(link)
    session.flush()
    audit.record(
        session,
        actor,
        "payment_link.create",
        "payment_link",
        link.id,
        amount=amount,
        item_name=item_name,
        customer_id=customer_id,
    )
    session.commit()
    return link


def get_link(session: Session, code: str) -> PaymentLink:
    link = session.exec(select(PaymentLink).where(PaymentLink.code == (code or "").strip())).first()
    if link is None:
        raise NotFound("없는 결제 링크입니다")
    return link


def expire_if_due(session: Session, link: PaymentLink, now: datetime) -> bool:
    """Mark an open link past its expiry EXPIRED (not committed); True when it did."""
    if link.status in OPEN_STATUSES and link.expires_at is not None and link.expires_at <= now:
        link.status = PaymentLinkStatus.EXPIRED
        session.add(link)
        return True
    return False


def check_payable(session: Session, link: PaymentLink) -> None:
    """Refuse, in Korean, a link that is expired (recorded first), paid or otherwise closed."""
    if expire_if_due(session, link, clock.now()):
        session.commit()
        raise ValidationFailed("만료된 결제 링크입니다")
    if link.status == PaymentLinkStatus.PAID:
        raise ValidationFailed("이미 결제된 링크입니다")
    if link.status not in OPEN_STATUSES:
        raise ValidationFailed("결제할 수 없는 링크입니다")


def funnel_event(session: Session, link: PaymentLink, event: str, **detail: Any) -> None:
    """One funnel event (opened, ready, approved, failed, cancelled) in the audit log, any gateway."""
    from core.accounts.actor import SYSTEM_ACTOR

    audit.record(session, SYSTEM_ACTOR, f"payment_link.{event}", "payment_link", link.id, **detail)


def link_payment(session: Session, link: PaymentLink) -> Payment | None:
    """The link's one payment (its idempotency key), None before the first start_payment."""
    return session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).first()


def attempt_tid(payment: Payment, attempt: str | None) -> str | None:
    """The tid an attempt readied (from the payment's routing log); the latest one without an attempt."""
    if not attempt:
        return payment.gateway_tid
    for entry in reversed(payment.routing_log):
        if entry.get("op") == "ready" and entry.get("attempt") == attempt:
            return entry.get("tid")
    return None


def funnel(session: Session, since: datetime | None = None) -> dict[str, int]:
    """Links per status (the owner's funnel of links sent vs paid)."""
    statement = select(PaymentLink.status, func.count()).group_by(PaymentLink.status)
    if since is not None:
        statement = statement.where(PaymentLink.created_at >= since)
    counts = {status.value: 0 for status in PaymentLinkStatus}
    for status, count in session.exec(statement).all():
        counts[status] = count
    return counts


def recent_links(session: Session, limit: int = 100) -> list[PaymentLink]:
    return list(session.exec(select(PaymentLink).order_by(PaymentLink.created_at.desc()).limit(limit)).all())  # type: ignore[attr-defined]
