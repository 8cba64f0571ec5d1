"""The gateway protocol every gateway implements, its results and its errors.

Errors follow httpx's style: one root, a retriable branch and a permanent branch, plus the one
state that is neither: the outcome is unknown (a timeout after the request left), which must be
resolved by a lookup before anything else is tried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from core.money import format_krw


class PaymentError(Exception):
    """Root of every gateway error."""

    def __init__(self, message: str, *, code: str | None = None, raw: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.raw = raw


class RetriablePaymentError(PaymentError):
    """Busy, locked, 5xx, connection refused: nothing happened, trying again is safe."""


class PermanentPaymentError(PaymentError):
    """Declined card, closed account, bad request: trying again will not help."""


class PaymentOutcomeUnknown(PaymentError):
    """The request may or may not have taken effect: look the payment up before anything else."""


class AlreadyProcessed(PaymentOutcomeUnknown):
    """A refusal that only makes sense if an earlier attempt went through.

    KakaoPay's used pg_token / already-approved tid, Toss's ALREADY_PROCESSED_PAYMENT or a duplicate
    Idempotency-Key: the money may well have moved, so it is looked up, never read as "failed".
    """


# The calls that move money: once such a request may have reached the gateway, only a well-formed
# definite answer counts (see `moves_money`).
MONEY_MOVING = ("approve", "charge", "cancel")


@dataclass(frozen=True)
class ReadyResult:
    tid: str
    redirect_pc_url: str | None
    redirect_mobile_url: str | None
    redirect_app_url: str | None
    created_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ApprovalResult:
    """A successful payment: from approve or from a recurring charge."""

    tid: str
    aid: str | None
    sid: str | None  # recurring instrument issued with the first payment (KakaoPay SID)
    method: str | None  # CARD or MONEY
    total_amount: int
    tax_free_amount: int
    vat_amount: int
    approved_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class LookupResult:
    tid: str
    status: str  # KakaoPay status vocabulary: READY ... SUCCESS_PAYMENT, PART_CANCEL_PAYMENT, ...
    total_amount: int
    canceled_amount: int
    cancel_available_amount: int
    approved_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class CancelResult:
    tid: str
    status: str
    approved_cancel_amount: int
    canceled_amount: int
    cancel_available_amount: int
    canceled_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class PaymentGateway(Protocol):
    """What every gateway does. Amounts are integer KRW; refs are opaque ids, never personal data."""

    name: str

    def ready(
        self,
        *,
        partner_order_id: str,
        partner_user_id: str,
        item_name: str,
        quantity: int,
        total_amount: int,
        tax_free_amount: int,
        approval_url: str,
        cancel_url: str,
        fail_url: str,
        recurring: bool = False,
    ) -> ReadyResult: ...

    def approve(
        self,
        *,
        tid: str,
        partner_order_id: str,
        partner_user_id: str,
        pg_token: str,
        recurring: bool = False,
    ) -> ApprovalResult: ...

    def lookup(self, *, tid: str, partner_order_id: str | None = None) -> LookupResult: ...

    def cancel(
        self,
        *,
        tid: str,
        cancel_amount: int,
        cancel_tax_free_amount: int,
        idempotency_key: str,
        reason: str = "",
    ) -> CancelResult: ...

    def charge(
        self,
        *,
        instrument_ref: str,
        partner_order_id: str,
        partner_user_id: str,
        item_name: str,
        total_amount: int,
        tax_free_amount: int,
        idempotency_key: str,
    ) -> ApprovalResult: ...

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        """Look a payment up by our own order id (after an unknown outcome); None if never seen."""
        ...

    def deactivate(self, *, instrument_ref: str) -> None: ...


F = TypeVar("F", bound=Callable[..., Any])


def moves_money(method: F) -> F:
    """The one rule for every call that moves money (approve, charge, cancel), on every gateway.

    Every gateway's approve/charge/cancel is wrapped in this, so the rule is written once: an answer
    the client could not read (a parsing error of any kind) or one that does not say what was asked
    (no tid, no amount, another amount charged or refunded than requested) is an unknown outcome,
    raised as PaymentOutcomeUnknown with the reason: the caller looks it up, never retries blind and
    never reads it as "not paid". Refusals and retriable errors the client classified pass through.
    """
    operation = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, **kwargs)
        except PaymentError:
            raise
        except Exception as exc:  # noqa: BLE001 - an answer we cannot read is not an answer
            raise PaymentOutcomeUnknown(
                f"{self.name} {operation}: 응답을 읽을 수 없습니다 ({exc.__class__.__name__}: {exc})",
                code="UNREADABLE",
            ) from exc
        problem = unsettled_answer(result, kwargs)
        if problem is not None:
            code, why = problem
            raise PaymentOutcomeUnknown(
                f"{self.name} {operation}: {why}", code=code, raw=getattr(result, "raw", None)
            )
        return result

    return wrapper  # type: ignore[return-value]


def unsettled_answer(result: Any, request: dict[str, Any]) -> tuple[str, str] | None:
    """Why an answer to a money-moving call is not a definite one: (code, reason for staff), or None.

    A success must name the payment (tid) and the amount that moved, and that amount must be the
    one asked for: a cancel answered with another cancelled amount is not "refunded as asked".
    """
    if isinstance(result, ApprovalResult):
        if not isinstance(result.tid, str) or not result.tid:
            return "MISSING_FIELDS", "응답에 결제 번호(tid)가 없습니다"
        if isinstance(result.total_amount, bool) or not isinstance(result.total_amount, int) or result.total_amount <= 0:
            return "MISSING_FIELDS", "응답에 결제 금액이 없습니다"
        asked = request.get("total_amount")
        if asked is not None and result.total_amount != asked:
            return (
                "AMOUNT_MISMATCH",
                f"요청 {format_krw(asked)}과 다른 금액 {format_krw(result.total_amount)}이 승인되었습니다",
            )
        return None
    if isinstance(result, CancelResult):
        asked = request.get("cancel_amount")
        if asked is not None and result.approved_cancel_amount != asked:
            return (
                "AMOUNT_MISMATCH",
                f"요청한 환불 {format_krw(asked)}과 다른 금액 "
                f"{format_krw(result.approved_cancel_amount)}이 취소되었습니다",
            )
        return None
    return "MALFORMED", "응답 형식이 올바르지 않습니다"
