"""KakaoPay online payment API client (open-api.kakaopay.com, SECRET_KEY auth, JSON bodies).

No webhook and no idempotency header: we dedupe on our own partner_order_id and reconcile by tid.
`partner_user_id` is always the customer's opaque public_id, never a name, phone or email.

KakaoPay cannot be asked "what happened to partner_order_id X": its order lookup takes a tid. So
after an unknown outcome (find_charge):
- a tid this client saw for the order (a ready, or an answer it could not trust but which carried
  a tid) is looked up with `/online/v1/payment/order` under the CID it was made with;
- a recurring charge whose answer was lost entirely is judged by the SID status
  (`/manage/subscription/status`, `last_approved_at`): no approval on the SID since the charge was
  opened, read after the earlier attempt has settled, means it was not charged (safe to charge);
- an approval since then whose tid we never saw is left for a person, explicitly (code
  NEEDS_REVIEW, with the partner_order_id to find in KakaoPay's merchant admin); never charged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from core import clock
from core.config import ConfigError, Settings
from core.money import vat_of
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

# An earlier attempt's request has surely finished at KakaoPay this long after we gave up on it.
SETTLE_GRACE = timedelta(minutes=2)
NEEDS_REVIEW = "NEEDS_REVIEW"

# method_result_code values meaning "busy / locked, try again shortly" (others are permanent).
RETRIABLE_METHOD_CODES = frozenset({"USER_LOCKED", "SYSTEM_BUSY", "TEMPORARY_ERROR", "IN_PROGRESS"})
# Refusals that only make sense if an earlier attempt went through: the tid is already approved
# (-702, "payment already done") or its pg_token was already used. Codes as data (unverified against
# every KakaoPay release): a wrong guess only costs a lookup, never a double charge.
ALREADY_DONE_CODES = frozenset({"-702", "ALREADY_APPROVED", "ALREADY_USED_PG_TOKEN"})
ALREADY_DONE_WORDS = ("already", "이미")


def parse_kst(value: Any) -> datetime | None:
    """KakaoPay timestamps carry no offset and are KST."""
    if not value:
        return None
    try:
        return clock.parse_instant(str(value))
    except ValueError:
        return None


def classify_error(response: httpx.Response, body: dict[str, Any] | None) -> PaymentError:
    body = body or {}
    extras = body.get("extras") or {}
    method_code = extras.get("method_result_code") if isinstance(extras, dict) else None
    message = (
        (extras.get("method_result_message") if isinstance(extras, dict) else None)
        or body.get("error_message")
        or f"HTTP {response.status_code}"
    )
    code = str(method_code or body.get("error_code") or response.status_code)
    text = f"kakaopay: {message} ({code})"
    if method_code in RETRIABLE_METHOD_CODES:
        return RetriablePaymentError(text, code=code, raw=body)
    said = f"{message} {body.get('error_message') or ''}".lower()
    if (
        code in ALREADY_DONE_CODES
        or str(body.get("error_code")) in ALREADY_DONE_CODES
        or any(word in said for word in ALREADY_DONE_WORDS)
    ):
        return AlreadyProcessed(f"{text}: 이미 처리된 결제일 수 있어 조회로 확인합니다", code=code, raw=body)
    return PermanentPaymentError(text, code=code, raw=body)


@dataclass(frozen=True)
class SidStatus:
    sid: str
    status: str  # ACTIVE / INACTIVE
    available: bool
    last_approved_at: datetime | None


def needs_review(partner_order_id: str, why: str) -> PaymentOutcomeUnknown:
    """An outcome only a person can settle: the message says what to check and where."""
    return PaymentOutcomeUnknown(
        f"kakaopay: {why}. 카카오페이 가맹점 관리자에서 주문번호 {partner_order_id}의 결제를 확인한 뒤 "
        "결제 완료 또는 실패로 처리해 주세요 (다시 청구하지 않습니다)",
        code=NEEDS_REVIEW,
    )


class KakaoPayGateway:
    name = "kakaopay"
    idempotent_cancel = False  # no idempotency: compare the cancelled totals before any resend
    max_concurrent_charges = (
        8  # remote: billing overlaps this many charge requests (httpx.Client is thread-safe)
    )

    def __init__(
        self,
        *,
        secret_key: str,
        base_url: str = "https://open-api.kakaopay.com",
        cid: str = "TC0ONETIME",
        subscription_cid: str = "TCSUBSCRIP",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # partner_order_id -> (tid, cid) for every tid this client has seen (see find_charge).
        self.tids: dict[str, tuple[str, str]] = {}
        if not secret_key:
            raise ConfigError("KAKAOPAY_SECRET_KEY가 설정되지 않았습니다 (KakaoPay를 쓰려면 필요합니다)")
        self.cid = cid
        self.subscription_cid = subscription_cid
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"SECRET_KEY {secret_key}", "Content-Type": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> KakaoPayGateway:
        return cls(
            secret_key=settings.kakaopay_secret_key or "",
            base_url=settings.kakaopay_base_url,
            cid=settings.kakaopay_cid,
            subscription_cid=settings.kakaopay_subscription_cid,
        )

    def _post(self, path: str, payload: dict[str, Any], *, mutating: bool) -> dict[str, Any]:
        try:
            body = send(
                self.client,
                self.name,
                "POST",
                f"/online/v1/payment/{path}",
                mutating=mutating,
                classify_error=classify_error,
                json=payload,
            )
        except PaymentError as exc:
            self._remember(payload, exc.raw if isinstance(exc.raw, dict) else None)
            raise
        self._remember(payload, body)
        return body

    def _remember(self, payload: dict[str, Any], body: dict[str, Any] | None) -> None:
        """Keep partner_order_id -> tid from any answer that names a tid (even one we cannot trust)."""
        order_id = payload.get("partner_order_id") or (body or {}).get("partner_order_id")
        tid = (body or {}).get("tid") or payload.get("tid")
        if order_id and isinstance(tid, str) and tid:
            self.tids[str(order_id)] = (tid, str(payload.get("cid") or self.cid))

    def ready(self, request: ReadyRequest) -> ReadyResult:
        body = self._post(
            "ready",
            {
                "cid": self.subscription_cid if request.recurring else self.cid,
                "partner_order_id": request.partner_order_id,
                "partner_user_id": request.partner_user_id,
                "item_name": request.item_name,
                "quantity": request.quantity,
                "total_amount": request.total_amount,
                "tax_free_amount": request.tax_free_amount,
                "vat_amount": vat_of(request.total_amount, request.tax_free_amount),
                "approval_url": request.approval_url,
                "cancel_url": request.cancel_url,
                "fail_url": request.fail_url,
            },
            mutating=False,
        )  # ready moves no money: a lost answer just means a new ready
        require(body, self.name, "ready", "tid", "next_redirect_pc_url", mutating=False)
        return ReadyResult(
            tid=body["tid"],
            redirect_pc_url=body.get("next_redirect_pc_url"),
            redirect_mobile_url=body.get("next_redirect_mobile_url"),
            redirect_app_url=body.get("next_redirect_app_url"),
            created_at=parse_kst(body.get("created_at")),
            raw=body,
        )

    @moves_money
    def approve(self, request: ApproveRequest) -> ApprovalResult:
        body = self._post(
            "approve",
            {
                "cid": self.subscription_cid if request.recurring else self.cid,
                "tid": request.tid,
                "partner_order_id": request.partner_order_id,
                "partner_user_id": request.partner_user_id,
                "pg_token": request.pg_token,
            },
            mutating=True,
        )
        return self._approval(body, "approve")

    def _approval(self, body: dict[str, Any], operation: str) -> ApprovalResult:
        require(body, self.name, operation, "tid", "aid", "amount", mutating=True)
        amount = body["amount"]
        if not isinstance(amount, dict) or amount.get("total") is None:
            raise PaymentOutcomeUnknown(
                f"kakaopay {operation}: amount.total이 없습니다", code="MISSING_FIELDS", raw=body
            )
        return ApprovalResult(
            tid=body["tid"],
            aid=body.get("aid"),
            sid=body.get("sid"),
            method=body.get("payment_method_type"),
            total_amount=int(amount["total"]),
            tax_free_amount=int(amount.get("tax_free") or 0),
            vat_amount=int(amount.get("vat") or 0),
            approved_at=parse_kst(body.get("approved_at")),
            raw=body,
        )

    def lookup(
        self, *, tid: str, partner_order_id: str | None = None, cid: str | None = None
    ) -> LookupResult:
        body = self._post("order", {"cid": cid or self.cid, "tid": tid}, mutating=False)
        require(body, self.name, "order", "status", "amount", mutating=False)
        amount = body["amount"] if isinstance(body["amount"], dict) else {}
        approved = [
            a for a in body.get("payment_action_details") or [] if a.get("payment_action_type") == "PAYMENT"
        ]
        return LookupResult(
            tid=body.get("tid") or tid,
            status=body["status"],
            total_amount=int(amount.get("total") or 0),
            canceled_amount=int((body.get("canceled_amount") or {}).get("total") or 0)
            if isinstance(body.get("canceled_amount"), dict)
            else int(body.get("canceled_amount") or 0),
            cancel_available_amount=int((body.get("cancel_available_amount") or {}).get("total") or 0)
            if isinstance(body.get("cancel_available_amount"), dict)
            else int(body.get("cancel_available_amount") or 0),
            approved_at=parse_kst(approved[0].get("approved_at")) if approved else None,
            raw=body,
        )

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        """Only a tid this client saw for the order can be looked up (see find_charge)."""
        return self.find_charge(partner_order_id=partner_order_id)

    def find_charge(
        self,
        *,
        partner_order_id: str,
        instrument_ref: str | None = None,
        not_before: datetime | None = None,
        last_attempt_at: datetime | None = None,
    ) -> LookupResult | None:
        """What became of an earlier attempt for `partner_order_id`; None means it was not charged.

        `not_before` is the earliest instant the earlier attempt could have been approved (when the
        charge was opened); `last_attempt_at` when we gave up on its answer. Raises
        PaymentOutcomeUnknown(code NEEDS_REVIEW) when only a person can tell.
        """
        known = self.tids.get(partner_order_id)
        if known is not None:
            tid, cid = known
            return self.lookup(tid=tid, cid=cid)
        if not instrument_ref or not_before is None:
            raise needs_review(partner_order_id, "tid 없이 주문번호로는 결제를 조회할 수 없습니다")
        now = clock.now()
        if last_attempt_at is None or now - last_attempt_at < SETTLE_GRACE:
            raise PaymentOutcomeUnknown(
                "kakaopay: 직전 요청이 아직 끝나지 않았을 수 있어 잠시 후 다시 확인합니다", code="SETTLING"
            )
        try:
            status = self.sid_status(instrument_ref)
        except PermanentPaymentError as exc:
            raise needs_review(partner_order_id, f"정기결제 키(SID) 상태를 읽을 수 없습니다 ({exc})") from exc
        if status.last_approved_at is None or status.last_approved_at < not_before:
            return None  # no approval on this SID since the charge was opened: it was not charged
        raise needs_review(
            partner_order_id,
            f"정기결제 키(SID)로 {clock.format_kst(status.last_approved_at)}에 승인된 결제가 있으나 "
            "응답을 받지 못해 tid를 알 수 없습니다",
        )

    def sid_status(self, sid: str) -> SidStatus:
        """`/manage/subscription/status`: whether the SID is usable and when it last paid."""
        body = send(
            self.client,
            self.name,
            "POST",
            "/online/v1/payment/manage/subscription/status",
            mutating=False,
            classify_error=classify_error,
            json={"cid": self.subscription_cid, "sid": sid},
        )
        require(body, self.name, "subscription/status", "status", mutating=False)
        if "last_approved_at" not in body:  # without it a lost charge cannot be judged
            raise PermanentPaymentError(
                "kakaopay subscription/status: 응답에 last_approved_at이 없습니다",
                code="MISSING_FIELDS",
                raw=body,
            )
        return SidStatus(
            sid=str(body.get("sid") or sid),
            status=str(body["status"]),
            available=bool(body.get("available")),
            last_approved_at=parse_kst(body.get("last_approved_at")),
        )

    @moves_money
    def cancel(self, request: CancelRequest) -> CancelResult:
        body = self._post(
            "cancel",
            {
                "cid": request.cid or self.cid,
                "tid": request.tid,
                "cancel_amount": request.cancel_amount,
                "cancel_tax_free_amount": request.cancel_tax_free_amount,
                "cancel_vat_amount": vat_of(request.cancel_amount, request.cancel_tax_free_amount),
            },
            mutating=True,
        )
        require(
            body,
            self.name,
            "cancel",
            "tid",
            "status",
            "approved_cancel_amount",
            "cancel_available_amount",
            mutating=True,
        )

        def total(value: Any) -> int:
            return int(value.get("total") or 0) if isinstance(value, dict) else int(value or 0)

        return CancelResult(
            tid=body.get("tid") or request.tid,
            status=body["status"],
            approved_cancel_amount=total(body["approved_cancel_amount"]),
            canceled_amount=total(body.get("canceled_amount")),
            cancel_available_amount=total(body["cancel_available_amount"]),
            canceled_at=parse_kst(body.get("canceled_at")),
            raw=body,
        )

    @moves_money
    def charge(self, request: ChargeRequest) -> ApprovalResult:
        body = self._post(
            "subscription",
            {
                "cid": self.subscription_cid,
                "sid": request.instrument_ref,
                "partner_order_id": request.partner_order_id,
                "partner_user_id": request.partner_user_id,
                "item_name": request.item_name,
                "quantity": 1,
                "total_amount": request.total_amount,
                "tax_free_amount": request.tax_free_amount,
                "vat_amount": vat_of(request.total_amount, request.tax_free_amount),
            },
            mutating=True,
        )
        return self._approval(body, "subscription")

    def deactivate(self, *, instrument_ref: str) -> None:
        body = send(
            self.client,
            self.name,
            "POST",
            "/online/v1/payment/manage/subscription/inactive",
            mutating=True,
            classify_error=classify_error,
            json={"cid": self.subscription_cid, "sid": instrument_ref},
        )
        require(body, self.name, "inactive", "status", mutating=True)
        if body["status"] != "INACTIVE":
            raise PermanentPaymentError(f"kakaopay: SID 비활성화 실패 (status {body['status']})", raw=body)
