"""Payment links: a ready-made (per product) or custom quote a staff member sends in the chat.

Creating a link stores it and gives a copy-ready Korean chat text; no gateway call (a KakaoPay tid
lives ~15 minutes, a link days). The customer's flow, KakaoPay's documented one:

    open the link (opened) -> start_payment: ready, a fresh tid (ready) -> redirect to KakaoPay
    -> approval_url?pg_token=... -> pay_link: approve once (approved) -> order, payment, message
    -> or cancel_url / fail_url -> return_from_gateway (cancelled / failed)

The sandbox plays KakaoPay's page in our own /pay (web/customer/pay.py; select_method gives the pg_token). Each
step is a funnel event in the audit log and moves the link's status (created -> opened -> method
selected -> paid, or quit / failed / expired). Paying creates the order and the payment, once. Like refunds, no
database transaction is held across a gateway call (the sandbox writes on its own connection, and a
real gateway may be slow), so these services commit the session around the call.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.config import get_settings
from core.customers import service as customers
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
from core.payments.gateways.base import AlreadyProcessed, PaymentError, PermanentPaymentError
from core.payments.gateways.router import NOT_PAID_STATUSES, PAID_STATUSES, PaymentRouter, note
from core.payments.orders import check_amount, record_paid_order

# failure_code of a payment whose last answer was a refusal that implies an earlier success (a used
# pg_token): the reconciliation looks every such payment up, whatever its status.
ALREADY_PROCESSED = "ALREADY_PROCESSED"
UNKNOWN_LABEL = "결제 대행사 응답 확인 중"
LINK_SETTINGS_KEY = "payment_links"


@dataclass(frozen=True)
class LinkHooks:
    """What a higher domain does around a link's approval when the link pays one of its rows (a dunning
    link pays a failed subscription charge): `claim` before the gateway call (the worker must not
    charge the card too), `release` when the gateway refuses, `settle` when paid, in the same
    transaction. Billing registers them (core/billing/__init__.py), so payments never imports billing."""

    claim: Callable[[Session, PaymentLink], None]
    release: Callable[[Session, PaymentLink, PaymentError], None]
    settle: Callable[[Session, PaymentLink, Order, Payment], None]


_LINK_HOOKS: list[LinkHooks] = []


def register_link_hooks(hooks: LinkHooks) -> None:
    """Register a domain's hooks once (importing core.billing does it)."""
    if hooks not in _LINK_HOOKS:
        _LINK_HOOKS.append(hooks)


def _link_hooks() -> list[LinkHooks]:
    """The registered hooks; none means billing was never imported, and a dunning link paid then could
    be charged by the worker too, so refuse rather than pay blind."""
    if not _LINK_HOOKS:
        raise RuntimeError("core.billing is not imported: the dunning-link hooks are not registered")
    return _LINK_HOOKS
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


GATEWAY_TROUBLE = "결제사 응답에 문제가 있어 결제를 마치지 못했습니다. 잠시 후 다시 시도하거나 상담원에게 문의해 주세요."


def customer_message(exc: Exception) -> str:
    """What the public pay page shows for a refusal: our own sentences as they are, but one that
    carries a gateway's text (codes, English, internals) becomes one fixed Korean sentence. The
    detail stays for staff on the payment (failure_message, routing_log)."""
    cause = exc.__cause__
    if isinstance(cause, PaymentError) and str(cause) and str(cause) in str(exc):
        return GATEWAY_TROUBLE
    return str(exc)


def link_settings(session: Session) -> dict[str, int]:
    from core import settings_store

    stored = settings_store.get(session, LINK_SETTINGS_KEY) or {}
    return {**LINK_DEFAULTS, **{k: int(v) for k, v in stored.items() if k in LINK_DEFAULTS}}


def _router(session: Session, router: PaymentRouter | None) -> PaymentRouter:
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
    gateway = _router(session, router).primary.name  # an unknown gateway in configuration fails here
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


def _expire_if_due(session: Session, link: PaymentLink, now: datetime) -> bool:
    if link.status in OPEN_STATUSES and link.expires_at is not None and link.expires_at <= now:
        link.status = PaymentLinkStatus.EXPIRED
        session.add(link)
        return True
    return False


def _event(session: Session, link: PaymentLink, event: str, **detail: Any) -> None:
    """One funnel event (opened, ready, approved, failed, cancelled) in the audit log, any gateway."""
    from core.accounts.actor import SYSTEM_ACTOR

    audit.record(session, SYSTEM_ACTOR, f"payment_link.{event}", "payment_link", link.id, **detail)


def _link_payment(session: Session, link: PaymentLink) -> Payment | None:
    return session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).first()


def _sandbox(session: Session, link: PaymentLink, router: PaymentRouter | None) -> Any:
    gateway = _router(session, router).gateway(link.gateway or "sandbox")
    if not hasattr(gateway, "select_method"):
        raise ValidationFailed("이 결제 페이지는 sandbox 결제 전용입니다")
    return gateway


def is_hosted(session: Session, link: PaymentLink, router: PaymentRouter | None = None) -> bool:
    """True when the gateway hosts its own payment page (KakaoPay): our page redirects there."""
    return not hasattr(_router(session, router).gateway(link.gateway or "sandbox"), "select_method")


def open_link(session: Session, code: str, router: PaymentRouter | None = None) -> PaymentLink:
    """The customer opened the link (public page: no staff actor). No gateway call yet."""
    link = get_link(session, code)
    if _expire_if_due(session, link, clock.now()):
        session.commit()
        return link
    if link.status in (PaymentLinkStatus.CREATED, PaymentLinkStatus.QUIT, PaymentLinkStatus.FAILED):
        link.status = PaymentLinkStatus.OPENED
        link.opened_at = link.opened_at or clock.now()
        session.add(link)
        _event(session, link, "opened")
    session.commit()
    return link


@dataclass(frozen=True)
class PaymentStart:
    """A readied payment: where to send the customer (KakaoPay's page) and which attempt it is."""

    tid: str
    attempt: str
    redirect_pc_url: str | None
    redirect_mobile_url: str | None
    redirect_app_url: str | None


def _payable(session: Session, link: PaymentLink) -> None:
    if _expire_if_due(session, link, clock.now()):
        session.commit()
        raise ValidationFailed("만료된 결제 링크입니다")
    if link.status == PaymentLinkStatus.PAID:
        raise ValidationFailed("이미 결제된 링크입니다")
    if link.status not in OPEN_STATUSES:
        raise ValidationFailed("결제할 수 없는 링크입니다")


def start_payment(
    session: Session,
    code: str,
    *,
    customer_name: str | None = None,
    customer_phone: str | None = None,
    router: PaymentRouter | None = None,
) -> PaymentStart:
    """The customer starts paying: ready now (a fresh tid each attempt), then go to the gateway's page.

    The approval, cancel and fail URLs carry the link code and a random attempt id, so the return
    from an older tab approves the tid that attempt readied, and nothing else.
    """
    link = get_link(session, code)
    _payable(session, link)
    payment = _link_payment(session, link)
    if payment is not None and payment.status in (PaymentStatus.UNKNOWN, PaymentStatus.APPROVED):
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요")
    customer = _find_or_create_customer(session, link, customer_name, customer_phone)
    if payment is None:
        payment = Payment(
            customer_id=customer.id,
            gateway=link.gateway or "sandbox",
            gateway_cid=getattr(_router(session, router).gateway(link.gateway or "sandbox"), "cid", None),
            amount=link.amount,
            tax_free_amount=link.tax_free_amount,
            status=PaymentStatus.READY,
            idempotency_key=f"link:{link.code}",
        )
    payment.customer_id = customer.id
    session.add(payment)
    request = dict(
        partner_order_id=partner_order_id(link),
        partner_user_id=customer.public_id,
        item_name=link.item_name,
        quantity=1,
        total_amount=link.amount,
        tax_free_amount=link.tax_free_amount,
    )
    gateway = payment.gateway
    attempt = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
    back = f"{get_settings().public_base_url.rstrip('/')}/pay?link={link.code}&attempt={attempt}"
    router = _router(session, router)
    session.commit()  # no transaction is held across the gateway call (read nothing until it answers)

    log: list[dict[str, Any]] = []
    try:
        ready = router.call(
            gateway,
            "ready",
            log,
            **request,
            approval_url=f"{back}&result=ok",
            cancel_url=f"{back}&result=cancel",
            fail_url=f"{back}&result=fail",
        )
    except PaymentError as exc:
        payment.routing_log = [*payment.routing_log, *log]
        session.add(payment)
        session.commit()
        raise ValidationFailed(f"결제를 시작할 수 없습니다: {exc}") from exc
    note(log, gateway, "ready", "readied", tid=ready.tid, attempt=attempt)
    payment.routing_log = [*payment.routing_log, *log]
    # The payment's tid moves to this attempt only while nothing is being approved: an approve in
    # flight from another tab (UNKNOWN) keeps the tid the reconciliation must look up.
    session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.READY)  # type: ignore[arg-type]
        .values(gateway_tid=ready.tid)
    )
    link.gateway_tid = ready.tid
    if link.status in (PaymentLinkStatus.CREATED, PaymentLinkStatus.QUIT, PaymentLinkStatus.FAILED):
        link.status = PaymentLinkStatus.OPENED
    link.opened_at = link.opened_at or clock.now()
    session.add_all([payment, link])
    _event(session, link, "ready", tid=ready.tid, attempt=attempt)
    session.commit()
    return PaymentStart(
        tid=ready.tid,
        attempt=attempt,
        redirect_pc_url=ready.redirect_pc_url,
        redirect_mobile_url=ready.redirect_mobile_url,
        redirect_app_url=ready.redirect_app_url,
    )


def _attempt_tid(payment: Payment, attempt: str | None) -> str | None:
    """The tid an attempt readied (from the payment's routing log); the latest one without an attempt."""
    if not attempt:
        return payment.gateway_tid
    for entry in reversed(payment.routing_log):
        if entry.get("op") == "ready" and entry.get("attempt") == attempt:
            return entry.get("tid")
    return None


def select_method(
    session: Session, code: str, method: str, router: PaymentRouter | None = None, *, tid: str | None = None
) -> str:
    """The customer chose CARD or MONEY on the sandbox page; returns the pg_token for approve."""
    link = get_link(session, code)
    _payable(session, link)
    tid = tid or link.gateway_tid
    if not tid:
        raise ValidationFailed("결제를 먼저 시작해 주세요")
    sandbox = _sandbox(session, link, router)
    session.commit()
    try:
        token = sandbox.select_method(tid, method)
    except PermanentPaymentError as exc:
        raise ValidationFailed(str(exc)) from exc
    link.status = PaymentLinkStatus.METHOD_SELECTED
    link.opened_at = link.opened_at or clock.now()
    session.add(link)
    session.commit()
    return token


def return_from_gateway(
    session: Session,
    code: str,
    result: str,
    *,
    attempt: str | None = None,
    router: PaymentRouter | None = None,
) -> PaymentLink:
    """The customer came back on cancel_url (quit) or fail_url (failed): the funnel records it.

    Nothing moves money here, and a paid link stays paid whatever URL is opened afterwards.
    """
    link = get_link(session, code)
    event = {"cancel": "cancelled", "fail": "failed"}.get(result)
    if event is None:
        raise ValidationFailed("알 수 없는 결제 결과입니다")
    if link.status in (PaymentLinkStatus.PAID, PaymentLinkStatus.EXPIRED):
        return link
    payment = _link_payment(session, link)
    tid = _attempt_tid(payment, attempt) if payment is not None else None
    if tid is not None and link.gateway != "sandbox":
        tid_status = _gateway_status(session, link.gateway or "sandbox", tid, router)
        if tid_status in ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT"):
            return link  # paid after all: the approval return (or the reconciliation) records it
    link.status = PaymentLinkStatus.QUIT if result == "cancel" else PaymentLinkStatus.FAILED
    session.add(link)
    if payment is not None and payment.status == PaymentStatus.READY:
        payment.failure_code = "USER_CANCEL" if result == "cancel" else "FAIL_PAYMENT"
        payment.failure_message = (
            "고객이 결제를 취소했습니다" if result == "cancel" else "결제에 실패했습니다"
        )
        session.add(payment)
    _event(session, link, event, tid=tid, attempt=attempt)
    session.commit()
    return link


def _gateway_status(session: Session, gateway: str, tid: str, router: PaymentRouter | None) -> str | None:
    """The gateway's own word on a tid, or None when it cannot be asked right now."""
    router = _router(session, router)
    session.commit()
    try:
        return router.lookup(gateway, [], tid=tid).status
    except PaymentError:
        return None


def quit_link(session: Session, code: str, router: PaymentRouter | None = None) -> PaymentLink:
    """The customer quit on the sandbox page (KakaoPay's page would send them to cancel_url)."""
    link = get_link(session, code)
    tid = link.gateway_tid
    if tid and link.status in (PaymentLinkStatus.OPENED, PaymentLinkStatus.METHOD_SELECTED):
        sandbox = _sandbox(session, link, router)
        session.commit()
        sandbox.quit(tid)
    return return_from_gateway(session, code, "cancel", router=router)


def _find_or_create_customer(
    session: Session, link: PaymentLink, name: str | None, phone: str | None
) -> Customer:
    if link.customer_id is not None:
        customer = session.get(Customer, link.customer_id)
        assert customer is not None
        return customer
    # One person, one customer: the number in any shape finds the row that carries its consent.
    if not (name or "").strip() or not (phone or "").strip():
        raise ValidationFailed("이름과 휴대폰 번호를 입력하세요")
    return customers.find_or_create_by_phone(session, name, phone, require_mobile=True)


def pay_link(
    session: Session,
    code: str,
    *,
    pg_token: str,
    attempt: str | None = None,
    router: PaymentRouter | None = None,
) -> Order:
    """Approve with the pg_token from the approval return URL; creates the order exactly once.

    The payment is claimed first (READY -> UNKNOWN in one conditional UPDATE), so a double click, a
    reload of the return URL or two tabs send one approve; the others get the order or "checking".
    A pg_token issued for another payment is refused by the gateway. A lost answer leaves the payment
    UNKNOWN for the reconciliation job (lookup by tid); it is never approved blindly twice.
    """
    link = get_link(session, code)
    if link.status == PaymentLinkStatus.PAID and link.order_id is not None:
        order = session.get(Order, link.order_id)
        assert order is not None
        return order
    _payable(session, link)
    pg_token = (pg_token or "").strip()
    if not pg_token or len(pg_token) > 100:
        raise ValidationFailed("결제 인증 토큰(pg_token)이 없습니다")
    payment = _link_payment(session, link)
    if payment is None:
        raise ValidationFailed("결제를 먼저 시작해 주세요")
    tid = _attempt_tid(payment, attempt)
    if tid is None:
        raise ValidationFailed("이 링크의 결제 요청이 아닙니다 (attempt)")
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.READY)  # type: ignore[arg-type]
        .values(status=PaymentStatus.UNKNOWN, gateway_tid=tid)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.commit()
        session.refresh(link)
        if link.order_id is not None:
            order = session.get(Order, link.order_id)
            assert order is not None
            return order
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요")
    link.gateway_tid = tid
    session.add(link)
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    request = dict(
        tid=tid,
        partner_order_id=partner_order_id(link),
        partner_user_id=customer.public_id,
        pg_token=pg_token,
    )
    gateway = payment.gateway
    router = _router(session, router)
    for hooks in _link_hooks():  # a dunning link pays a failed subscription charge: the worker must not too
        hooks.claim(session, link)
    session.commit()  # no transaction is held across the gateway call

    log: list[dict[str, Any]] = []
    try:
        approval = router.call(gateway, "approve", log, **request)
    except PaymentError as exc:
        return _approve_unanswered(session, link, payment, router, tid, exc, log)
    payment.routing_log = [*payment.routing_log, *log]
    return complete_link_payment(
        session, link, payment, method=approval.method, approved_at=approval.approved_at
    )


def _approve_unanswered(
    session: Session,
    link: PaymentLink,
    payment: Payment,
    router: PaymentRouter,
    tid: str,
    exc: PaymentError,
    log: list[dict[str, Any]],
) -> Order:
    """An approve without a definite yes: the tid is looked up at once, before anything else.

    Paid per the lookup -> the order is recorded (issue 13: a 5xx after KakaoPay approved, or its
    refusal of the reused pg_token, is how a customer was charged twice). The payment goes back to
    READY (the customer may pay again) only when the lookup says not paid: a terminal failure, or
    after a definite refusal any unpaid state. Otherwise it stays UNKNOWN with its reason, for the
    reconciliation and for staff (주문, 문의).
    """
    from core.payments.refunds import payment_cid

    payment.failure_code = ALREADY_PROCESSED if isinstance(exc, AlreadyProcessed) else exc.code
    payment.failure_message = str(exc)[:500]
    cid = payment_cid(session, payment)
    session.add(payment)
    session.commit()  # UNKNOWN with its reason is on record before the lookup goes out
    try:
        found = router.lookup(payment.gateway, log, tid=tid, cid=cid)
    except PaymentError as lookup_error:
        note(log, payment.gateway, "approve", "still_unknown", error=str(lookup_error))
        found = None
    payment.routing_log = [*payment.routing_log, *log]
    if found is not None and found.status in PAID_STATUSES:
        note(payment.routing_log, payment.gateway, "approve", "paid_per_lookup", tid=tid)
        return complete_link_payment(
            session,
            link,
            payment,
            method=(found.raw or {}).get("payment_method_type"),
            approved_at=found.approved_at,
        )
    refused = isinstance(exc, PermanentPaymentError)
    if found is not None and (found.status in NOT_PAID_STATUSES or refused):
        payment.status = PaymentStatus.READY
        link.status = PaymentLinkStatus.FAILED
        session.add_all([payment, link])
        _event(session, link, "failed", tid=tid, code=exc.code, gateway_status=found.status)
        for hooks in _link_hooks():
            hooks.release(session, link, exc)
        session.commit()
        raise ValidationFailed(f"결제가 승인되지 않았습니다: {exc}") from exc
    session.add(payment)
    session.commit()
    raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요") from exc


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
    payment.failure_code = payment.failure_message = None  # an approval clears the earlier failure
    link.status = PaymentLinkStatus.PAID
    link.paid_at = now
    link.order_id = order.id
    session.add_all([payment, link])
    session.flush()
    from core.messaging.automations import (
        enqueue_order_confirmation,  # the post-purchase flow owns its content
    )

    enqueue_order_confirmation(session, order)
    for hooks in _link_hooks():
        hooks.settle(session, link, order, payment)  # a dunning link: the charge is paid
    from core.accounts.actor import SYSTEM_ACTOR

    audit.record(
        session,
        SYSTEM_ACTOR,
        "payment_link.approved",
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
