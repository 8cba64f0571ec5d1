"""Toss Payments client (the backup gateway): billing charges, cancels and lookups.

Basic auth with the secret key; every charge and cancel carries an Idempotency-Key header (a repeat
returns the first result), so a retry after a lost answer cannot charge or refund twice.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from core.config import ConfigError, Settings
from core.payments.gateways.base import (
    AlreadyProcessed,
    ApprovalResult,
    ApproveRequest,
    CancelRequest,
    CancelResult,
    ChargeRequest,
    LookupResult,
    PaymentError,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    ReadyRequest,
    ReadyResult,
    RetriablePaymentError,
    moves_money,
)
from core.payments.gateways.http import DEFAULT_TIMEOUT, require, send

RETRIABLE_CODES = frozenset(
    {
        "PROVIDER_ERROR",
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        "IDEMPOTENT_REQUEST_PROCESSING",
        "FAILED_CARD_COMPANY_RESPONSE",
    }
)
# Refusals that only make sense if an earlier attempt went through (the first request with this key
# or this orderId was processed): looked up, never read as "failed". Names as data, partly unverified.
ALREADY_DONE_CODES = frozenset(
    {
        "ALREADY_PROCESSED_PAYMENT",
        "ALREADY_CANCELED_PAYMENT",
        "DUPLICATED_ORDER_ID",
        "DUPLICATED_IDEMPOTENCY_KEY",
        "IDEMPOTENCY_KEY_ALREADY_USED",
    }
)
# Toss status -> the KakaoPay vocabulary the rest of the code speaks.
STATUS_MAP = {
    "READY": "READY",
    "IN_PROGRESS": "SELECT_METHOD",
    "WAITING_FOR_DEPOSIT": "SELECT_METHOD",
    "DONE": "SUCCESS_PAYMENT",
    "PARTIAL_CANCELED": "PART_CANCEL_PAYMENT",
    "CANCELED": "CANCEL_PAYMENT",
    "ABORTED": "FAIL_PAYMENT",
    "EXPIRED": "FAIL_PAYMENT",
}
METHOD_MAP = {"카드": "CARD", "CARD": "CARD", "간편결제": "MONEY", "EASY_PAY": "MONEY"}


def classify_error(response: httpx.Response, body: dict[str, Any] | None) -> PaymentError:
    body = body or {}
    code = str(body.get("code") or response.status_code)
    text = f"toss: {body.get('message') or 'HTTP ' + str(response.status_code)} ({code})"
    if code in RETRIABLE_CODES:
        return RetriablePaymentError(text, code=code, raw=body)
    if code in ALREADY_DONE_CODES:
        return AlreadyProcessed(f"{text}: 이미 처리된 결제일 수 있어 조회로 확인합니다", code=code, raw=body)
    return PermanentPaymentError(text, code=code, raw=body)


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))  # Toss sends ISO-8601 with +09:00
    except ValueError:
        return None


class TossGateway:
    name = "toss"
    idempotent_cancel = True  # Idempotency-Key: a repeat returns the first result
    max_concurrent_charges = (
        8  # remote: billing overlaps this many charge requests (httpx.Client is thread-safe)
    )

    def __init__(
        self,
        *,
        secret_key: str,
        base_url: str = "https://api.tosspayments.com",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret_key:
            raise ConfigError("TOSS_SECRET_KEY가 설정되지 않았습니다 (Toss Payments를 쓰려면 필요합니다)")
        token = base64.b64encode(f"{secret_key}:".encode()).decode()
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TossGateway:
        return cls(secret_key=settings.toss_secret_key or "", base_url=settings.toss_base_url)

    def _call(
        self,
        method: str,
        path: str,
        *,
        mutating: bool,
        idempotency_key: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key[:300]} if idempotency_key else None
        return send(
            self.client,
            self.name,
            method,
            path,
            mutating=mutating,
            classify_error=classify_error,
            json=payload,
            headers=headers,
        )

    # Payment links go through KakaoPay (or the sandbox); Toss is the backup for recurring billing.
    def ready(self, request: ReadyRequest) -> ReadyResult:
        raise PermanentPaymentError(
            "toss: 결제 링크는 지원하지 않습니다 (정기결제 백업 전용)", code="UNSUPPORTED"
        )

    def approve(self, request: ApproveRequest) -> ApprovalResult:
        raise PermanentPaymentError(
            "toss: 결제 링크는 지원하지 않습니다 (정기결제 백업 전용)", code="UNSUPPORTED"
        )

    def _payment(self, body: dict[str, Any], operation: str, *, mutating: bool) -> LookupResult:
        require(body, self.name, operation, "paymentKey", "status", "totalAmount", mutating=mutating)
        total = int(body["totalAmount"])
        balance = int(body.get("balanceAmount") if body.get("balanceAmount") is not None else total)
        status = STATUS_MAP.get(body["status"], body["status"])
        paid = status in ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")
        return LookupResult(
            tid=body["paymentKey"],
            status=status,
            total_amount=total,
            canceled_amount=(total - balance) if paid else 0,
            cancel_available_amount=balance if paid else 0,
            approved_at=_instant(body.get("approvedAt")),
            raw={
                **body,
                "payment_method_type": METHOD_MAP.get(str(body.get("method")), body.get("method")),
                "tax_free_amount": body.get("taxFreeAmount"),
                "vat_amount": body.get("vat"),
            },
        )

    def lookup(
        self, *, tid: str, partner_order_id: str | None = None, cid: str | None = None
    ) -> LookupResult:
        body = self._call("GET", f"/v1/payments/{quote(tid, safe='')}", mutating=False)
        return self._payment(body, "lookup", mutating=False)

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        try:
            body = self._call(
                "GET", f"/v1/payments/orders/{quote(partner_order_id, safe='')}", mutating=False
            )
        except PermanentPaymentError as exc:
            if exc.code in ("NOT_FOUND_PAYMENT", "NOT_FOUND"):
                return None
            raise
        return self._payment(body, "lookup", mutating=False)

    @moves_money
    def cancel(self, request: CancelRequest) -> CancelResult:
        """request.cid is KakaoPay's merchant code: a Toss payment is found by its key alone."""
        body = self._call(
            "POST",
            f"/v1/payments/{quote(request.tid, safe='')}/cancel",
            mutating=True,
            idempotency_key=request.idempotency_key,
            payload={
                "cancelReason": request.reason or "고객 요청",
                "cancelAmount": request.cancel_amount,
                "taxFreeAmount": request.cancel_tax_free_amount,
            },
        )
        found = self._payment(body, "cancel", mutating=True)
        cancels = body.get("cancels") or []
        last = cancels[-1] if cancels and isinstance(cancels[-1], dict) else {}
        return CancelResult(
            tid=found.tid,
            status=found.status,
            approved_cancel_amount=int(last.get("cancelAmount") or 0),  # no cancel entry: not an answer
            canceled_amount=found.canceled_amount,
            cancel_available_amount=found.cancel_available_amount,
            canceled_at=_instant(last.get("canceledAt")),
            raw=body,
        )

    @moves_money
    def charge(self, request: ChargeRequest) -> ApprovalResult:
        body = self._call(
            "POST",
            f"/v1/billing/{quote(request.instrument_ref, safe='')}",
            mutating=True,
            idempotency_key=request.idempotency_key,
            payload={
                "customerKey": request.partner_user_id,
                "amount": request.total_amount,
                "orderId": request.partner_order_id,
                "orderName": request.item_name,
                "taxFreeAmount": request.tax_free_amount,
            },
        )
        found = self._payment(body, "billing", mutating=True)
        if found.status == "FAIL_PAYMENT":
            raise PermanentPaymentError(f"toss: 결제가 완료되지 않았습니다 ({body['status']})", raw=body)
        if found.status != "SUCCESS_PAYMENT":  # in progress, waiting: not an answer yet
            raise PaymentOutcomeUnknown(f"toss: 결제가 아직 끝나지 않았습니다 ({body['status']})", raw=body)
        return ApprovalResult(
            tid=found.tid,
            aid=body.get("lastTransactionKey"),
            sid=None,
            method=found.raw.get("payment_method_type"),
            total_amount=found.total_amount,
            tax_free_amount=int(body.get("taxFreeAmount") or 0),
            vat_amount=int(body.get("vat") or 0),
            approved_at=found.approved_at,
            raw=body,
        )

    def deactivate(self, *, instrument_ref: str) -> None:
        """Delete the billing key (endpoint unverified against Toss's docs: DELETE /v1/billing/{key})."""
        try:
            self._call("DELETE", f"/v1/billing/{quote(instrument_ref, safe='')}", mutating=True)
        except PaymentOutcomeUnknown as exc:
            if exc.code != "MALFORMED":  # a 2xx with an empty body is the normal answer to DELETE
                raise
