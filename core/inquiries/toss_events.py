"""Toss Payments webhooks (PAYMENT_STATUS_CHANGED, CANCEL_STATUS_CHANGED): a hint to look a payment up.

The body is never trusted (CONTRACTS.md): it only names a paymentKey. We fetch that payment from
the Toss API and compare what Toss says with our books:

- a payment of ours whose outcome we do not know (UNKNOWN, or READY/FAILED after an "already
  processed" refusal) is settled the way the reconciliation settles it (core.payments.jobs.settle_payment);
- a paid payment whose cancelled total at Toss equals our refunded total: nothing to do;
- a refund of ours still in flight (REQUESTED/UNKNOWN): the worker's reconciliation settles it
  (a webhook never sends money);
- anything else (cancelled at Toss beyond what we refunded, a paid payment Toss calls failed): a
  결제 오류 inquiry for the customer, once per (payment, Toss state) by its dedupe key;
- a paymentKey we never made: answered 200 (Toss stops resending), logged, nothing written.

Idempotent: the same event again (same type, key, status, createdAt) within DUPLICATE_WINDOW is
answered from the log without a lookup, so a storm of 1,000 identical events is one lookup and one
effect; out-of-order events are harmless because only the lookup's answer is acted on. A lookup
that fails (Toss down, an HTML 502, a reset) answers 503 so Toss delivers again later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import Actor
from core.config import ConfigError
from core.inquiries import inbound_log, service
from core.models import Payment, PaymentStatus, Refund, RefundStatus, Role
from core.models.orders import PAYMENT_STATUS_LABELS
from core.money import format_krw
from core.payments.gateways.base import LookupResult, PaymentError
from core.payments.gateways.router import PAID_STATUSES, PaymentRouter

WEBHOOK_ACTOR = Actor(id=None, name="토스페이먼츠 웹훅", role=Role.OWNER)
HANDLED_EVENTS = ("PAYMENT_STATUS_CHANGED", "CANCEL_STATUS_CHANGED")
DUPLICATE_WINDOW = timedelta(hours=24)
SETTLED_OUTCOMES = ("reconciled", "consistent", "mismatch", "unknown_payment", "pending_refund")
MAX_KEY = 200
UNSETTLED = (PaymentStatus.UNKNOWN, PaymentStatus.READY, PaymentStatus.FAILED)
TOSS_STATUS_WORDS = {
    "SUCCESS_PAYMENT": "결제 완료",
    "PART_CANCEL_PAYMENT": "부분 취소",
    "CANCEL_PAYMENT": "전액 취소",
    "FAIL_PAYMENT": "실패/만료",
    "READY": "결제 전",
    "SELECT_METHOD": "결제 진행 중",
}


class BadEvent(ValueError):
    """Not a Toss event we can read (400)."""


@dataclass(frozen=True)
class Event:
    event_type: str
    payment_key: str | None
    status: str
    created_at: str

    @property
    def digest(self) -> str:
        return inbound_log.digest(self.event_type, self.payment_key or "", self.status, self.created_at)


@dataclass(frozen=True)
class Handled:
    status_code: int
    outcome: str
    inquiry_id: int | None = None
    payment_id: int | None = None


def parse(payload: Any) -> Event:
    if not isinstance(payload, dict) or not isinstance(payload.get("eventType"), str):
        raise BadEvent("eventType이 없습니다")
    data = payload.get("data")
    event_type = payload["eventType"][:64]
    if event_type not in HANDLED_EVENTS:
        return Event(event_type, None, "", "")
    if not isinstance(data, dict):
        raise BadEvent("data가 없습니다")
    key = data.get("paymentKey")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY or any(ord(c) < 33 for c in key):
        raise BadEvent("paymentKey가 없거나 올바르지 않습니다")
    status = data.get("status") if isinstance(data.get("status"), str) else ""
    created = payload.get("createdAt") if isinstance(payload.get("createdAt"), str) else ""
    return Event(event_type, key, status[:40], created[:40])


def _payment_of(session: Session, payment_key: str) -> Payment | None:
    return session.exec(
        select(Payment).where(Payment.gateway == "toss", Payment.gateway_tid == payment_key)
    ).first()


def handle(engine: Engine, event: Event, router: Callable[[], PaymentRouter], *, address: str = "",
           started: float | None = None) -> Handled:
    """Act on one (parsed) event and log it; see the module docstring for what each case does.
    `router` builds the Toss client only when a lookup is needed (Toss unconfigured: 503)."""
    started = started if started is not None else time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        result = _handle(session, event, router)
        inbound_log.record(
            session, channel="toss", status_code=result.status_code, outcome=result.outcome,
            verified=result.outcome not in ("ignored", "lookup_failed"), started=started, address=address,
            inquiry_id=result.inquiry_id, digest=event.digest, event_type=event.event_type,
            body_status=event.status, payment_id=result.payment_id,
        )
        session.commit()
    return result


def _handle(session: Session, event: Event, make_router: Callable[[], PaymentRouter]) -> Handled:
    if event.payment_key is None:
        return Handled(200, "ignored")
    first = inbound_log.seen_within(session, "toss", event.digest, DUPLICATE_WINDOW, SETTLED_OUTCOMES)
    if first is not None:
        return Handled(200, "duplicate", first.inquiry_id)
    payment = _payment_of(session, event.payment_key)
    if payment is None:
        return Handled(200, "unknown_payment")
    payment_id = payment.id
    session.commit()  # no transaction is held across the gateway call
    try:
        router = make_router()
        found = router.lookup("toss", [], tid=event.payment_key)
    except (PaymentError, ConfigError):
        return Handled(503, "lookup_failed", payment_id=payment_id)
    payment = session.exec(
        select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    ).one()
    if payment.status in UNSETTLED:
        from core.payments.jobs import settle_payment

        settled = settle_payment(session, payment_id, clock.now(), router=router, actor=WEBHOOK_ACTOR)  # type: ignore[arg-type]
        return Handled(200, "reconciled" if settled in ("paid", "failed") else "consistent", payment_id=payment_id)
    if found.status in PAID_STATUSES and found.canceled_amount == payment.refunded_amount:
        return Handled(200, "consistent", payment_id=payment_id)
    in_flight = session.exec(
        select(Refund.id).where(
            Refund.payment_id == payment_id,
            col(Refund.status).in_((RefundStatus.REQUESTED, RefundStatus.UNKNOWN)),
        )
    ).first()
    if in_flight is not None:
        return Handled(200, "pending_refund", payment_id=payment_id)
    inquiry = _open_mismatch(session, payment, found)
    return Handled(200, "mismatch", inquiry.id, payment_id)


def _open_mismatch(session: Session, payment: Payment, found: LookupResult) -> Any:
    ours = PAYMENT_STATUS_LABELS.get(PaymentStatus(payment.status), payment.status)
    theirs = TOSS_STATUS_WORDS.get(found.status, found.status)
    body = (
        f"토스페이먼츠 결제 상태가 우리 기록과 다릅니다 (웹훅 알림 후 조회 결과).\n"
        f"우리 기록: {ours}, 결제 {format_krw(payment.amount)}, 환불 {format_krw(payment.refunded_amount)}\n"
        f"토스 조회: {theirs}, 결제 {format_krw(found.total_amount)}, 취소 {format_krw(found.canceled_amount)}\n"
        "토스 관리자 화면에서 직접 취소했는지, 고객에게 안내가 필요한지 확인하세요."
    )
    return service.create_inquiry(
        session, WEBHOOK_ACTOR, customer_id=payment.customer_id, body=body, inquiry_type="payment_error",
        subject=f"토스 결제 상태 불일치: {theirs}", order_id=payment.order_id, payment_id=payment.id,
        source="toss_webhook",
        dedupe_key=f"toss:{payment.id}:{found.status}:{found.canceled_amount}",
        evidence={"toss_status": found.status, "toss_canceled": found.canceled_amount,
                  "our_status": payment.status, "our_refunded": payment.refunded_amount},
    )
