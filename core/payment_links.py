"""Payment links: a ready-made (per product) or custom quote a staff member sends in the chat.

Creating a link readies a payment at the primary gateway and gives a copy-ready Korean chat text.
The link's status follows the gateway's funnel (created -> opened -> method selected -> paid, or
quit / failed / expired). Paying it creates the order and the payment, once. Like refunds, no
database transaction is held across a gateway call (the sandbox writes on its own connection, and a
real gateway may be slow), so these services commit the session around the call.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from core import audit, clock
from core.auth import Actor, require_role
from core.config import get_settings
from core.errors import NotFound, ValidationFailed
from core.models import (
    Customer,
    Order,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Product,
    Role,
)
from core.models.orders import Payment
from core.money import format_krw
from core.orders import check_amount, record_paid_order
from core.payments.base import PaymentError, PaymentOutcomeUnknown, PermanentPaymentError
from core.payments.router import PaymentRouter

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


def _router(session: Session, router: PaymentRouter | None) -> PaymentRouter:
    if router is not None:
        return router
    from core.payments.registry import get_router

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
    return f"PL-{link.code}"


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
    """A ready-made link (product_id) or a custom quote (item_name + amount); commits the session."""
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
    session.commit()  # hold no transaction across the gateway call

    router = _router(session, router)
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
        gateway=router.primary.name,
        created_by=actor.id,
        expires_at=clock.now() + timedelta(hours=settings["expire_after_hours"]),
    )
    base = get_settings().public_base_url.rstrip("/")
    try:
        ready = router.call(
            router.primary.name,
            "ready",
            [],
            partner_order_id=partner_order_id(link),
            partner_user_id=customer.public_id if customer else f"guest-{code}",
            item_name=item_name,
            quantity=1,
            total_amount=amount,
            tax_free_amount=tax_free_amount,
            approval_url=f"{base}/pay?link={code}&result=ok",
            cancel_url=f"{base}/pay?link={code}&result=cancel",
            fail_url=f"{base}/pay?link={code}&result=fail",
        )
    except PaymentError as exc:
        raise ValidationFailed(f"결제 링크를 만들 수 없습니다: {exc}") from exc
    link.gateway_tid = ready.tid
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


def _expire_if_due(session: Session, link: PaymentLink, now: datetime) -> bool:
    if link.status in OPEN_STATUSES and link.expires_at is not None and link.expires_at <= now:
        link.status = PaymentLinkStatus.EXPIRED
        session.add(link)
        return True
    return False


def _sandbox(session: Session, link: PaymentLink, router: PaymentRouter | None) -> Any:
    gateway = _router(session, router).gateway(link.gateway or "sandbox")
    if not hasattr(gateway, "select_method"):
        raise ValidationFailed("이 결제 페이지는 sandbox 결제 전용입니다")
    return gateway


def open_link(session: Session, code: str, router: PaymentRouter | None = None) -> PaymentLink:
    """The customer opened the link (public page: no staff actor)."""
    link = get_link(session, code)
    if _expire_if_due(session, link, clock.now()):
        session.commit()
        return link
    if link.status in (PaymentLinkStatus.CREATED, PaymentLinkStatus.QUIT):
        session.commit()
        _sandbox(session, link, router).open(link.gateway_tid)
        link.status = PaymentLinkStatus.OPENED
        link.opened_at = link.opened_at or clock.now()
        session.add(link)
    session.commit()
    return link


def select_method(session: Session, code: str, method: str, router: PaymentRouter | None = None) -> str:
    """The customer chose CARD or MONEY on the sandbox page; returns the pg_token for approve."""
    link = get_link(session, code)
    if _expire_if_due(session, link, clock.now()):
        session.commit()
        raise ValidationFailed("만료된 결제 링크입니다")
    if link.status not in OPEN_STATUSES:
        raise ValidationFailed("이미 결제되었거나 만료된 링크입니다")
    session.commit()
    try:
        token = _sandbox(session, link, router).select_method(link.gateway_tid, method)
    except PermanentPaymentError as exc:
        raise ValidationFailed(str(exc)) from exc
    link.status = PaymentLinkStatus.METHOD_SELECTED
    link.opened_at = link.opened_at or clock.now()
    session.add(link)
    session.commit()
    return token


def quit_link(session: Session, code: str, router: PaymentRouter | None = None) -> PaymentLink:
    link = get_link(session, code)
    if link.status in (
        PaymentLinkStatus.OPENED,
        PaymentLinkStatus.METHOD_SELECTED,
        PaymentLinkStatus.CREATED,
    ):
        session.commit()
        _sandbox(session, link, router).quit(link.gateway_tid)
        link.status = PaymentLinkStatus.QUIT
        session.add(link)
    session.commit()
    return link


def _find_or_create_customer(
    session: Session, link: PaymentLink, name: str | None, phone: str | None
) -> Customer:
    if link.customer_id is not None:
        customer = session.get(Customer, link.customer_id)
        assert customer is not None
        return customer
    name = (name or "").strip()
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if not name or not (10 <= len(digits) <= 11):
        raise ValidationFailed("이름과 휴대폰 번호(10~11자리)를 입력하세요")
    existing = session.exec(select(Customer).where(Customer.phone == digits)).first()
    if existing is not None:
        return existing
    customer = Customer(name=name[:64], phone=digits)
    session.add(customer)
    session.flush()
    return customer


def pay_link(
    session: Session,
    code: str,
    *,
    pg_token: str,
    customer_name: str | None = None,
    customer_phone: str | None = None,
    router: PaymentRouter | None = None,
) -> Order:
    """Approve the link's payment with the pg_token the gateway gave the customer; creates the order once.

    A pg_token issued for another payment is refused by the gateway. A lost answer leaves the
    payment UNKNOWN for the reconciliation job; it is never approved blindly twice.
    """
    link = get_link(session, code)
    if link.status == PaymentLinkStatus.PAID and link.order_id is not None:
        order = session.get(Order, link.order_id)
        assert order is not None
        return order
    if _expire_if_due(session, link, clock.now()):
        session.commit()
        raise ValidationFailed("만료된 결제 링크입니다")
    if link.status not in OPEN_STATUSES:
        raise ValidationFailed("결제할 수 없는 링크입니다")
    payment = session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).first()
    if payment is None:
        customer = _find_or_create_customer(session, link, customer_name, customer_phone)
        payment = Payment(
            customer_id=customer.id,
            gateway=link.gateway or "sandbox",
            gateway_tid=link.gateway_tid,
            amount=link.amount,
            tax_free_amount=link.tax_free_amount,
            status=PaymentStatus.READY,
            idempotency_key=f"link:{link.code}",
        )
        session.add(payment)
    elif payment.status == PaymentStatus.UNKNOWN:
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요")
    partner_user_id = link_partner_user_id(session, link)
    router = _router(session, router)
    from core import billing  # a dunning link pays a failed subscription charge: the worker must not too

    billing.claim_charge_for_link(session, link)
    session.commit()  # no transaction is held across the gateway call

    log: list[dict[str, Any]] = []
    try:
        approval = router.call(
            payment.gateway,
            "approve",
            log,
            tid=link.gateway_tid,
            partner_order_id=partner_order_id(link),
            partner_user_id=partner_user_id,
            pg_token=pg_token,
        )
    except PaymentOutcomeUnknown as exc:
        payment.status = PaymentStatus.UNKNOWN
        payment.routing_log = [*payment.routing_log, *log]
        session.add(payment)
        session.commit()
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요") from exc
    except PaymentError as exc:
        payment.routing_log = [*payment.routing_log, *log]
        payment.failure_code, payment.failure_message = exc.code, str(exc)[:500]
        session.add(payment)
        billing.release_charge_for_link(session, link, exc)
        session.commit()
        raise ValidationFailed(f"결제가 승인되지 않았습니다: {exc}") from exc
    payment.routing_log = [*payment.routing_log, *log]
    return complete_link_payment(
        session, link, payment, method=approval.method, approved_at=approval.approved_at
    )


def link_partner_user_id(session: Session, link: PaymentLink) -> str:
    """The opaque partner_user_id a link's payment was readied with (a guest link has no customer yet)."""
    if link.customer_id is None:
        return f"guest-{link.code}"
    customer = session.get(Customer, link.customer_id)
    assert customer is not None
    return customer.public_id


def complete_link_payment(
    session: Session, link: PaymentLink, payment: Payment, *, method: str | None, approved_at: datetime | None
) -> Order:
    """Record an approved link payment: the order, its item, the payment and a confirmation; once."""
    session.refresh(link)
    if link.order_id is not None:
        order = session.get(Order, link.order_id)
        assert order is not None
        return order
    now = clock.now()
    order = record_paid_order(
        session,
        order_number=f"PL{clock.to_kst(now):%y%m%d}-{link.code}",
        customer_id=payment.customer_id,
        product_id=link.product_id,
        item_name=link.item_name,
        amount=link.amount,
        tax_free_amount=link.tax_free_amount,
        source="link",
        ordered_at=link.created_at,
        paid_at=approved_at or now,
        payment_link_id=link.id,
    )
    payment.order_id = order.id
    payment.status = PaymentStatus.APPROVED
    payment.method = method
    payment.approved_at = approved_at or now
    link.status = PaymentLinkStatus.PAID
    link.paid_at = now
    link.order_id = order.id
    session.add_all([payment, link])
    session.flush()
    from core.automations import enqueue_order_confirmation  # the post-purchase flow owns its content

    enqueue_order_confirmation(session, order)
    from core import billing

    billing.settle_charge_by_link(session, link, order, payment)  # a dunning link: the charge is paid
    from core.auth import SYSTEM_ACTOR

    audit.record(
        session,
        SYSTEM_ACTOR,
        "payment_link.paid",
        "payment_link",
        link.id,
        order_id=order.id,
        payment_id=payment.id,
        amount=order.total_amount,
    )
    session.commit()
    return order


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
