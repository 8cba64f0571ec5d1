"""A small in-memory gateway and builders for the billing tests."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from core import billing, clock
from core.accounts.actor import Actor
from core.models import Customer, Subscription, SubscriptionPlan
from core.payments.gateways.base import (
    ApprovalResult,
    ChargeRequest,
    LookupResult,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    RetriablePaymentError,
)


class FakeGateway:
    """Records every successful charge by our order id; faults are scripted per call.

    Fault kinds: decline (permanent), busy (retriable), timeout (charged, then the answer is lost),
    lost (unknown, nothing charged). Thread-safe, so two workers can share it.
    """

    name = "fake"

    def __init__(self, inactive_refs: set[str] | None = None, delay: float = 0.0) -> None:
        self.faults: deque[str] = deque()
        self.charged: dict[str, list[ApprovalResult]] = {}
        self.by_key: dict[str, ApprovalResult] = {}
        self.calls: list[tuple[str, str]] = []
        self.inactive_refs = inactive_refs or set()
        self.delay = delay
        self._lock = threading.Lock()

    def inject(self, kind: str, times: int = 1) -> None:
        self.faults.extend([kind] * times)

    def charge(self, request: ChargeRequest) -> ApprovalResult:
        partner_order_id, instrument_ref, idempotency_key = (
            request.partner_order_id,
            request.instrument_ref,
            request.idempotency_key,
        )
        if self.delay:
            threading.Event().wait(self.delay)  # lets two worker threads interleave
        with self._lock:
            self.calls.append(("charge", partner_order_id))
            kind = self.faults.popleft() if self.faults else None
            if kind == "busy":
                raise RetriablePaymentError("잠시 후 다시 시도하세요 (busy)", code="USER_LOCKED")
            if kind == "decline":
                raise PermanentPaymentError("카드가 거절되었습니다", code="DECLINED")
            if kind == "lost":
                raise PaymentOutcomeUnknown("no answer")
            if instrument_ref in self.inactive_refs:
                raise PermanentPaymentError("유효하지 않은 정기결제 키(SID)입니다", code="-796")
            if idempotency_key in self.by_key:
                return self.by_key[idempotency_key]
            result = ApprovalResult(
                tid=f"T{len(self.by_key) + 1:019d}",
                aid=None,
                sid=instrument_ref,
                method="CARD",
                total_amount=request.total_amount,
                tax_free_amount=request.tax_free_amount,
                vat_amount=0,
                approved_at=clock.now(),
            )
            self.by_key[idempotency_key] = result
            self.charged.setdefault(partner_order_id, []).append(result)
            if kind == "timeout":
                raise PaymentOutcomeUnknown("timed out after taking effect")
            return result

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        with self._lock:
            self.calls.append(("find_by_order", partner_order_id))
            found = self.charged.get(partner_order_id)
            if not found:
                return None
            first = found[0]
            return LookupResult(
                tid=first.tid,
                status="SUCCESS_PAYMENT",
                total_amount=first.total_amount,
                canceled_amount=0,
                cancel_available_amount=first.total_amount,
                approved_at=first.approved_at,
            )

    @property
    def charge_calls(self) -> int:
        return sum(1 for op, _ in self.calls if op == "charge")

    def double_charged(self) -> dict[str, int]:
        return {order: len(v) for order, v in self.charged.items() if len(v) > 1}


def kst(text: str) -> datetime:
    return clock.parse_instant(text)


_NUMBERS = itertools.count(1000)


def make_subscription(
    engine: Engine,
    actor: Actor,
    *,
    start: date,
    anchor_day: int | None = None,
    amount: int = 39000,
    plan_name: str = "월회비",
    instrument_ref: str | None = "SID0000000000000001",
    interval_unit: str = "month",
    interval_count: int = 1,
    customer_name: str = "김회원",
) -> int:
    with Session(engine) as session:
        # a number of their own: one customer per number (a unique index on customer.mobile)
        customer = Customer(name=customer_name, phone=f"010{next(_NUMBERS) % 9000 + 1000:04d}5678")
        session.add(customer)
        session.flush()
        plan = billing.create_plan(
            session,
            actor,
            name=plan_name,
            amount=amount,
            interval_unit=interval_unit,
            interval_count=interval_count,
        )
        subscription = billing.create_subscription(
            session,
            actor,
            customer_id=customer.id or 0,
            plan_id=plan.id or 0,
            start=start,
            anchor_day=anchor_day,
            instrument_gateway="kakaopay" if instrument_ref else None,
            instrument_ref=instrument_ref,
        )
        session.commit()
        return subscription.id or 0


def get_subscription(engine: Engine, subscription_id: int) -> Subscription:
    with Session(engine) as session:
        row = session.get(Subscription, subscription_id)
        assert row is not None
        return row


def plan_of(engine: Engine, subscription_id: int) -> SubscriptionPlan:
    with Session(engine) as session:
        sub = session.get(Subscription, subscription_id)
        assert sub is not None
        plan = session.get(SubscriptionPlan, sub.plan_id)
        assert plan is not None
        return plan
