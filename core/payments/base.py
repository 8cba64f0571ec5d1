"""The gateway protocol every gateway implements, its results and its errors.

Errors follow httpx's style: one root, a retriable branch and a permanent branch, plus the one
state that is neither: the outcome is unknown (a timeout after the request left), which must be
resolved by a lookup before anything else is tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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
