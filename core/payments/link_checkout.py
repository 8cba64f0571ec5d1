"""A payment link's public checkout life, from the customer opening it to the gateway's return.

KakaoPay's documented flow:

    open the link (opened) -> start_payment: ready, a fresh tid (ready) -> redirect to KakaoPay
    -> approval_url?pg_token=... -> pay_link (link_approval.py): approve once (approved)
    -> or cancel_url / fail_url -> return_from_gateway (cancelled / failed)

The sandbox plays KakaoPay's page in our own /pay (web/customer/pay.py; select_method gives the
pg_token). Each step is a funnel event in the audit log and moves the link's status (created ->
opened -> method selected -> paid, or quit / failed / expired). No database transaction is held
across a gateway call (the sandbox writes on its own connection, and a real gateway may be slow),
so these services commit the session around the call.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from core import clock
from core.config import get_settings
from core.customers import service as customers
from core.errors import ValidationFailed
from core.models import Customer, PaymentLink, PaymentLinkStatus, PaymentStatus
from core.models.orders import Payment
from core.payments.gateways.base import PaymentError, PermanentPaymentError, ReadyRequest
from core.payments.gateways.router import PaymentRouter, note
from core.payments.links import (
    attempt_tid,
    check_payable,
    expire_if_due,
    funnel_event,
    get_link,
    link_payment,
    link_router,
    partner_order_id,
)

GATEWAY_TROUBLE = (
    "결제사 응답에 문제가 있어 결제를 마치지 못했습니다. 잠시 후 다시 시도하거나 상담원에게 문의해 주세요."
)


def customer_message(exc: Exception) -> str:
    """What the public pay page shows for a refusal: our own sentences as they are, but one that
    carries a gateway's text (codes, English, internals) becomes one fixed Korean sentence. The
    detail stays for staff on the payment (failure_message, routing_log)."""
    cause = exc.__cause__
    if isinstance(cause, PaymentError) and str(cause) and str(cause) in str(exc):
        return GATEWAY_TROUBLE
    return str(exc)


def _sandbox(session: Session, link: PaymentLink, router: PaymentRouter | None) -> Any:
    gateway = link_router(session, router).gateway(link.gateway or "sandbox")
    if not hasattr(gateway, "select_method"):
        raise ValidationFailed("이 결제 페이지는 sandbox 결제 전용입니다")
    return gateway


def is_hosted(session: Session, link: PaymentLink, router: PaymentRouter | None = None) -> bool:
    """True when the gateway hosts its own payment page (KakaoPay): our page redirects there."""
    return not hasattr(link_router(session, router).gateway(link.gateway or "sandbox"), "select_method")


def open_link(session: Session, code: str, router: PaymentRouter | None = None) -> PaymentLink:
    """The customer opened the link (public page: no staff actor). No gateway call yet."""
    link = get_link(session, code)
    if expire_if_due(session, link, clock.now()):
        session.commit()
        return link
    if link.status in (PaymentLinkStatus.CREATED, PaymentLinkStatus.QUIT, PaymentLinkStatus.FAILED):
        link.status = PaymentLinkStatus.OPENED
        link.opened_at = link.opened_at or clock.now()
        session.add(link)
        funnel_event(session, link, "opened")
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
    check_payable(session, link)
    payment = link_payment(session, link)
    if payment is not None and payment.status in (PaymentStatus.UNKNOWN, PaymentStatus.APPROVED):
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요")
    customer = _find_or_create_customer(session, link, customer_name, customer_phone)
    if payment is None:
        payment = Payment(
            customer_id=customer.id,
            gateway=link.gateway or "sandbox",
            gateway_cid=getattr(link_router(session, router).gateway(link.gateway or "sandbox"), "cid", None),
            amount=link.amount,
            tax_free_amount=link.tax_free_amount,
            status=PaymentStatus.READY,
            idempotency_key=f"link:{link.code}",
        )
    payment.customer_id = customer.id
    session.add(payment)
    gateway = payment.gateway
    attempt = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
    back = f"{get_settings().public_base_url.rstrip('/')}/pay?link={link.code}&attempt={attempt}"
    fields = dict(  # read before the commit: nothing is read again until the gateway answers
        partner_order_id=partner_order_id(link),
        partner_user_id=customer.public_id,
        item_name=link.item_name,
        quantity=1,
        total_amount=link.amount,
        tax_free_amount=link.tax_free_amount,
    )
    router = link_router(session, router)
    session.commit()  # no transaction is held across the gateway call (read nothing until it answers)

    log: list[dict[str, Any]] = []
    try:
        request = ReadyRequest(
            **fields,
            approval_url=f"{back}&result=ok",
            cancel_url=f"{back}&result=cancel",
            fail_url=f"{back}&result=fail",
        )
        ready = router.ready(gateway, log, request)
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
    funnel_event(session, link, "ready", tid=ready.tid, attempt=attempt)
    session.commit()
    return PaymentStart(
        tid=ready.tid,
        attempt=attempt,
        redirect_pc_url=ready.redirect_pc_url,
        redirect_mobile_url=ready.redirect_mobile_url,
        redirect_app_url=ready.redirect_app_url,
    )


def select_method(
    session: Session, code: str, method: str, router: PaymentRouter | None = None, *, tid: str | None = None
) -> str:
    """The customer chose CARD or MONEY on the sandbox page; returns the pg_token for approve."""
    link = get_link(session, code)
    check_payable(session, link)
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
    payment = link_payment(session, link)
    tid = attempt_tid(payment, attempt) if payment is not None else None
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
    funnel_event(session, link, event, tid=tid, attempt=attempt)
    session.commit()
    return link


def _gateway_status(session: Session, gateway: str, tid: str, router: PaymentRouter | None) -> str | None:
    """The gateway's own word on a tid, or None when it cannot be asked right now."""
    router = link_router(session, router)
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
