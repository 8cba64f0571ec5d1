"""Failover router: the primary gateway first, retries on retriable errors, lookups on unknowns.

Rules (CONTRACTS.md): a retriable failure (busy/locked, 5xx, connection refused) is retried with
backoff, a bounded number of times. A timeout means the outcome is unknown: the payment is looked up
before anything else, and if the lookup cannot say, we stop (the payment stays UNKNOWN for the
reconciliation job) rather than risk charging twice. The backup gateway is used only when the
primary failed hard (still unavailable after the retries) and only with an instrument the customer
enrolled there ahead of time; a declined card is the customer's answer, not the gateway's failure, so
it never fails over. Every decision is appended to `log` (stored on Payment.routing_log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from core import clock
from core.payments.gateways.base import (
    ApprovalResult,
    ApproveRequest,
    CancelRequest,
    CancelResult,
    ChargeRequest,
    LookupResult,
    PaymentError,
    PaymentGateway,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    ReadyRequest,
    ReadyResult,
    RetriablePaymentError,
)

T = TypeVar("T")
PAID_STATUSES = ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")
NOT_PAID_STATUSES = ("FAIL_PAYMENT", "FAIL_AUTH_PASSWORD", "QUIT_PAYMENT")


class PrimaryUnavailable(RetriablePaymentError):
    """The primary gateway kept failing with retriable errors and there is no backup to use."""


@dataclass(frozen=True)
class RoutedCharge:
    gateway: str
    result: ApprovalResult


def note(log: list[dict[str, Any]], gateway: str, operation: str, decision: str, **detail: Any) -> None:
    entry = {"at": clock.now().isoformat(), "gateway": gateway, "op": operation, "decision": decision}
    entry.update({k: v for k, v in detail.items() if v is not None})
    log.append(entry)


class PaymentRouter:
    def __init__(
        self,
        primary: PaymentGateway,
        backup: PaymentGateway | None = None,
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        resolve: Callable[[str], PaymentGateway] | None = None,
    ) -> None:
        """`resolve` builds any other gateway a stored payment names (the registry passes its own
        builder, so the router never imports the registry)."""
        self.primary = primary
        self.backup = backup
        self.resolve = resolve
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def gateway(self, name: str) -> PaymentGateway:
        for gateway in (self.primary, self.backup):
            if gateway is not None and gateway.name == name:
                return gateway
        if self.resolve is None:
            raise PermanentPaymentError(f"설정되지 않은 결제 대행사입니다: {name}", code="UNKNOWN_GATEWAY")
        return self.resolve(name)

    def _with_retries(
        self, gateway: PaymentGateway, operation: str, call: Callable[[], T], log: list[dict[str, Any]]
    ) -> T:
        """Retry only what is safe to retry (nothing happened); re-raise everything else."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = call()
            except RetriablePaymentError as exc:
                note(
                    log, gateway.name, operation, "retriable", attempt=attempt, code=exc.code, error=str(exc)
                )
                if attempt == self.max_attempts:
                    raise
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                continue
            except PaymentOutcomeUnknown as exc:
                note(log, gateway.name, operation, "unknown", attempt=attempt, error=str(exc))
                raise
            except PermanentPaymentError as exc:
                note(
                    log, gateway.name, operation, "permanent", attempt=attempt, code=exc.code, error=str(exc)
                )
                raise
            note(log, gateway.name, operation, "ok", attempt=attempt)
            return result
        raise AssertionError("unreachable")

    # -- plain calls on one gateway (ready/approve/lookup/cancel stay on the payment's gateway) --
    def ready(self, gateway_name: str, log: list[dict[str, Any]], request: ReadyRequest) -> ReadyResult:
        gateway = self.gateway(gateway_name)
        return self._with_retries(gateway, "ready", lambda: gateway.ready(request), log)

    def approve(
        self, gateway_name: str, log: list[dict[str, Any]], request: ApproveRequest
    ) -> ApprovalResult:
        gateway = self.gateway(gateway_name)
        return self._with_retries(gateway, "approve", lambda: gateway.approve(request), log)

    def lookup(
        self, gateway_name: str, log: list[dict[str, Any]], *, tid: str, cid: str | None = None
    ) -> LookupResult:
        """A read: retried on 5xx and busy answers; `cid` is the one the payment was made with."""
        gateway = self.gateway(gateway_name)
        return self._with_retries(gateway, "lookup", lambda: _lookup(gateway, tid, cid), log)

    def cancel(
        self,
        gateway_name: str,
        log: list[dict[str, Any]],
        request: CancelRequest,
        *,
        canceled_before: int | None = None,
    ) -> CancelResult:
        """Cancel; after an unknown outcome, look up whether the cancel took. Never sent twice blind.

        `canceled_before` is the gateway's canceled total before this cancel (from our own books).
        The lookup settles it: grown by our amount -> done; unchanged -> sent again at once only on a
        gateway that dedupes cancels by key (Toss, sandbox), while a KakaoPay cancel stays unknown for
        the reconciliation, which looks again after its grace (an earlier request may still land);
        any other total -> unknown, with both totals in the reason.
        """
        gateway = self.gateway(gateway_name)
        try:
            return self._with_retries(gateway, "cancel", lambda: gateway.cancel(request), log)
        except PaymentOutcomeUnknown as exc:
            if canceled_before is None:
                raise
            found = self._lookup_after_unknown(
                gateway, log, lambda: _lookup(gateway, request.tid, request.cid)
            )
            verdict = cancel_verdict(found, canceled_before, request.cancel_amount)
            if verdict == "done":
                note(
                    log, gateway.name, "cancel", "confirmed_by_lookup", canceled_amount=found.canceled_amount
                )
                return confirmed_cancel(found, request.cancel_amount)
            if verdict == "not_applied" and getattr(gateway, "idempotent_cancel", False):
                note(log, gateway.name, "cancel", "not_applied_resent_with_same_key")
                return self._with_retries(gateway, "cancel", lambda: gateway.cancel(request), log)
            note(log, gateway.name, "cancel", "still_unknown", verdict=verdict)
            raise PaymentOutcomeUnknown(
                f"{exc} / 조회: 취소 합계 {found.canceled_amount:,}원 (이전 {canceled_before:,}원, 요청 "
                f"{request.cancel_amount:,}원)",
                code=exc.code,
                raw=exc.raw,
            ) from exc

    def _lookup_after_unknown(
        self, gateway: PaymentGateway, log: list[dict[str, Any]], lookup: Callable[[], LookupResult | None]
    ) -> LookupResult | None:
        try:
            found = self._with_retries(gateway, "lookup", lookup, log)
        except PaymentError as exc:
            note(log, gateway.name, "lookup", "still_unknown", error=str(exc))
            raise PaymentOutcomeUnknown(f"{gateway.name}: 결과 확인 불가, 나중에 다시 확인합니다") from exc
        return found

    # -- recurring charge with failover ----------------------------------------------------------
    def charge(
        self, log: list[dict[str, Any]], request: ChargeRequest, *, instruments: dict[str, str]
    ) -> RoutedCharge:
        """Charge the primary's instrument; fail over only on a hard failure and an enrolled backup.

        Each gateway is sent `request` with the instrument enrolled there (`instruments`, gateway
        name -> SID / billing key) and its own idempotency key (`request.idempotency_key:gateway`).
        """
        order = [self.primary] + ([self.backup] if self.backup is not None else [])
        last_error: PaymentError | None = None
        for index, gateway in enumerate(order):
            ref = instruments.get(gateway.name)
            if ref is None:
                note(log, gateway.name, "charge", "no_instrument_enrolled")
                continue
            if index > 0:
                note(log, gateway.name, "charge", "failover", reason=str(last_error))
            try:
                on_gateway = replace(
                    request, instrument_ref=ref, idempotency_key=f"{request.idempotency_key}:{gateway.name}"
                )
                result = self._charge_on(gateway, log, on_gateway)
                return RoutedCharge(gateway=gateway.name, result=result)
            except RetriablePaymentError as exc:  # still failing after the retries: a hard failure
                last_error = exc
                continue
        if last_error is not None:
            raise PrimaryUnavailable(
                f"결제 대행사 응답 없음: {last_error}", code=last_error.code
            ) from last_error
        raise PermanentPaymentError(
            "등록된 결제 수단이 없습니다 (no enrolled instrument)", code="NO_INSTRUMENT"
        )

    def _charge_on(
        self, gateway: PaymentGateway, log: list[dict[str, Any]], request: ChargeRequest
    ) -> ApprovalResult:
        for _ in range(self.max_attempts):
            try:
                return self._with_retries(gateway, "charge", lambda: gateway.charge(request), log)
            except PaymentOutcomeUnknown:
                found = self._lookup_after_unknown(
                    gateway, log, lambda: gateway.find_by_order(partner_order_id=request.partner_order_id)
                )
                if found is not None and found.status in PAID_STATUSES:
                    note(log, gateway.name, "charge", "paid_per_lookup", tid=found.tid)
                    return _approval_from_lookup(found)
                if found is not None and found.status not in NOT_PAID_STATUSES:
                    note(log, gateway.name, "charge", "in_progress_per_lookup", status=found.status)
                    raise PaymentOutcomeUnknown(f"{gateway.name}: 결제 진행 중 ({found.status})") from None
                note(log, gateway.name, "charge", "not_charged_per_lookup_retrying")
        raise PaymentOutcomeUnknown(f"{gateway.name}: 결과를 확인할 수 없습니다")


def _lookup(gateway: PaymentGateway, tid: str, cid: str | None) -> LookupResult:
    """Look a tid up under the CID the payment was made with (KakaoPay); cid is not sent when None."""
    return gateway.lookup(tid=tid, **({"cid": cid} if cid else {}))


def find_charge(
    gateway: PaymentGateway,
    *,
    partner_order_id: str,
    instrument_ref: str | None = None,
    not_before: datetime | None = None,
    last_attempt_at: datetime | None = None,
) -> LookupResult | None:
    """What became of an earlier charge attempt (None: not charged). The billing engine's hook.

    A gateway that can look our order id up (sandbox, Toss) just does; KakaoPay cannot, and is
    given what it needs to judge otherwise: the instrument (SID), when the charge was opened and
    when its last answer was lost (core.payments.gateways.kakaopay.KakaoPayGateway.find_charge).
    """
    finder = getattr(gateway, "find_charge", None)
    if finder is None:
        return gateway.find_by_order(partner_order_id=partner_order_id)
    return finder(
        partner_order_id=partner_order_id,
        instrument_ref=instrument_ref,
        not_before=not_before,
        last_attempt_at=last_attempt_at,
    )


def cancel_verdict(found: LookupResult, canceled_before: int, cancel_amount: int) -> str:
    """What the gateway's cancelled total says about our cancel: done, not_applied or unclear.

    Exactly our amount on top of what was cancelled before is ours; unchanged means it did not take;
    anything else (more, less, another refund in between) is for the reconciliation or a person.
    """
    if found.canceled_amount == canceled_before + cancel_amount:
        return "done"
    if found.canceled_amount == canceled_before:
        return "not_applied"
    return "unclear"


def confirmed_cancel(found: LookupResult, cancel_amount: int) -> CancelResult:
    return CancelResult(
        tid=found.tid,
        status=found.status,
        approved_cancel_amount=cancel_amount,
        canceled_amount=found.canceled_amount,
        cancel_available_amount=found.cancel_available_amount,
        canceled_at=None,
        raw=found.raw,
    )


def _approval_from_lookup(found: LookupResult) -> ApprovalResult:
    raw = found.raw or {}
    return ApprovalResult(
        tid=found.tid,
        aid=raw.get("aid"),
        sid=raw.get("sid"),
        method=raw.get("payment_method_type"),
        total_amount=found.total_amount,
        tax_free_amount=int(raw.get("tax_free_amount") or 0),
        vat_amount=int(raw.get("vat_amount") or 0),
        approved_at=found.approved_at,
        raw=raw,
    )
