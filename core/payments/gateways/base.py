"""The gateway protocol every gateway implements, its requests, its results and its errors.

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


# -- requests: what a caller asks, one frozen object per verb ---------------------------------------
# Every gateway (kakaopay, toss, sandbox, each test fake) takes the same object, so a verb's fields
# are written once, here, and a request no gateway could honour is refused when it is built, before
# anything is sent: a missing id (MISSING_FIELDS), an amount that is not a positive whole number of
# won or a tax-free part outside 0..total (-705, KakaoPay's "invalid amount"), a cancel amount
# likewise (-798, KakaoPay's "invalid cancel amount"). The refusal is a PermanentPaymentError, the
# answer every caller already handles for a gateway's own refusal.

INVALID_AMOUNT = "-705"
INVALID_CANCEL_AMOUNT = "-798"
MISSING_FIELDS = "MISSING_FIELDS"


def _require_ids(request: object, *names: str) -> None:
    for name in names:
        value = getattr(request, name)
        if not isinstance(value, str) or not value.strip():
            raise PermanentPaymentError(f"결제 요청에 {name} 값이 없습니다", code=MISSING_FIELDS)


def _is_won(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_amounts(total: object, tax_free: object, code: str, what: str) -> None:
    """A positive whole amount and a tax-free part between 0 and it."""
    if not _is_won(total) or total <= 0:  # type: ignore[operator]
        raise PermanentPaymentError(f"{what} 금액이 올바르지 않습니다 ({total!r})", code=code)
    if not _is_won(tax_free) or not 0 <= tax_free <= total:  # type: ignore[operator]
        raise PermanentPaymentError(
            f"{what} 면세 금액이 올바르지 않습니다 ({tax_free!r}, 금액 {total!r})", code=code
        )


@dataclass(frozen=True)
class ReadyRequest:
    """Ready a payment the customer then approves on the gateway's page (a payment link)."""

    partner_order_id: str
    partner_user_id: str
    item_name: str
    quantity: int
    total_amount: int
    tax_free_amount: int
    approval_url: str
    cancel_url: str
    fail_url: str
    recurring: bool = False  # KakaoPay: ready under the subscription CID (the first payment issues a SID)

    def __post_init__(self) -> None:
        _require_ids(
            self, "partner_order_id", "partner_user_id", "item_name", "approval_url", "cancel_url", "fail_url"
        )
        if not _is_won(self.quantity) or self.quantity < 1:
            raise PermanentPaymentError(f"수량이 올바르지 않습니다 ({self.quantity!r})", code=INVALID_AMOUNT)
        _require_amounts(self.total_amount, self.tax_free_amount, INVALID_AMOUNT, "결제")


@dataclass(frozen=True)
class ApproveRequest:
    """Approve a readied payment with the pg_token the approval return carried."""

    tid: str
    partner_order_id: str
    partner_user_id: str
    pg_token: str
    recurring: bool = False

    def __post_init__(self) -> None:
        _require_ids(self, "tid", "partner_order_id", "partner_user_id", "pg_token")


@dataclass(frozen=True)
class CancelRequest:
    """Cancel (refund) part or all of a paid payment; the key makes a repeat return the first result
    where the gateway dedupes (Toss, sandbox). `cid` is KakaoPay's merchant code the payment was made
    under (None: the gateway's one-time CID)."""

    tid: str
    cancel_amount: int
    cancel_tax_free_amount: int
    idempotency_key: str
    reason: str = ""
    cid: str | None = None

    def __post_init__(self) -> None:
        _require_ids(self, "tid", "idempotency_key")
        _require_amounts(self.cancel_amount, self.cancel_tax_free_amount, INVALID_CANCEL_AMOUNT, "취소")


@dataclass(frozen=True)
class ChargeRequest:
    """Charge an enrolled instrument (KakaoPay SID, Toss billing key) without the customer present."""

    instrument_ref: str
    partner_order_id: str
    partner_user_id: str
    item_name: str
    total_amount: int
    tax_free_amount: int
    idempotency_key: str

    def __post_init__(self) -> None:
        _require_ids(
            self, "instrument_ref", "partner_order_id", "partner_user_id", "item_name", "idempotency_key"
        )
        _require_amounts(self.total_amount, self.tax_free_amount, INVALID_AMOUNT, "결제")


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

    def ready(self, request: ReadyRequest) -> ReadyResult: ...

    def approve(self, request: ApproveRequest) -> ApprovalResult: ...

    def lookup(self, *, tid: str, partner_order_id: str | None = None) -> LookupResult: ...

    def cancel(self, request: CancelRequest) -> CancelResult: ...

    def charge(self, request: ChargeRequest) -> ApprovalResult: ...

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
    def wrapper(self: Any, request: ApproveRequest | CancelRequest | ChargeRequest) -> Any:
        try:
            result = method(self, request)
        except PaymentError:
            raise
        except Exception as exc:  # noqa: BLE001 - an answer we cannot read is not an answer
            raise PaymentOutcomeUnknown(
                f"{self.name} {operation}: 응답을 읽을 수 없습니다 ({exc.__class__.__name__}: {exc})",
                code="UNREADABLE",
            ) from exc
        problem = unsettled_answer(result, request)
        if problem is not None:
            code, why = problem
            raise PaymentOutcomeUnknown(
                f"{self.name} {operation}: {why}", code=code, raw=getattr(result, "raw", None)
            )
        return result

    return wrapper  # type: ignore[return-value]


def unsettled_answer(
    result: Any, request: ApproveRequest | CancelRequest | ChargeRequest
) -> tuple[str, str] | None:
    """Why an answer to a money-moving call is not a definite one: (code, reason for staff), or None.

    A success must name the payment (tid) and the amount that moved, and that amount must be the
    one asked for: a cancel answered with another cancelled amount is not "refunded as asked".
    """
    if isinstance(result, ApprovalResult):
        if not isinstance(result.tid, str) or not result.tid:
            return "MISSING_FIELDS", "응답에 결제 번호(tid)가 없습니다"
        if (
            isinstance(result.total_amount, bool)
            or not isinstance(result.total_amount, int)
            or result.total_amount <= 0
        ):
            return "MISSING_FIELDS", "응답에 결제 금액이 없습니다"
        asked = request.total_amount if isinstance(request, ChargeRequest) else None
        if asked is not None and result.total_amount != asked:
            return (
                "AMOUNT_MISMATCH",
                f"요청 {format_krw(asked)}과 다른 금액 {format_krw(result.total_amount)}이 승인되었습니다",
            )
        return None
    if isinstance(result, CancelResult):
        asked = request.cancel_amount if isinstance(request, CancelRequest) else None
        if asked is not None and result.approved_cancel_amount != asked:
            return (
                "AMOUNT_MISMATCH",
                f"요청한 환불 {format_krw(asked)}과 다른 금액 "
                f"{format_krw(result.approved_cancel_amount)}이 취소되었습니다",
            )
        return None
    return "MALFORMED", "응답 형식이 올바르지 않습니다"
