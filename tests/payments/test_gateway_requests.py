"""The gateway request objects refuse, when built, what no gateway could honour (nothing is sent).

Codes are the gateway layer's own: -705 KakaoPay's invalid amount, -798 its invalid cancel amount,
MISSING_FIELDS a required id that is empty. The refusal is a PermanentPaymentError, so every caller
handles it like a gateway's refusal (a link cannot start, a charge fails hard, a refund is refused).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from core.payments.gateways.base import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    PermanentPaymentError,
    ReadyRequest,
)
from core.payments.gateways.kakaopay import KakaoPayGateway

READY: dict[str, Any] = dict(
    partner_order_id="PL-abc",
    partner_user_id="pub123",
    item_name="수분 크림",
    quantity=1,
    total_amount=39_000,
    tax_free_amount=0,
    approval_url="https://shop.test/pay?result=ok",
    cancel_url="https://shop.test/pay?result=cancel",
    fail_url="https://shop.test/pay?result=fail",
)
APPROVE: dict[str, Any] = dict(
    tid="T1234567890123456789", partner_order_id="PL-abc", partner_user_id="pub123", pg_token="tok"
)
CANCEL: dict[str, Any] = dict(
    tid="T1234567890123456789", cancel_amount=3_000, cancel_tax_free_amount=0, idempotency_key="refund:1"
)
CHARGE: dict[str, Any] = dict(
    instrument_ref="S1234567890123456789",
    partner_order_id="S7-20270301",
    partner_user_id="pub123",
    item_name="월회비",
    total_amount=29_000,
    tax_free_amount=0,
    idempotency_key="charge:7",
)
KINDS = {ReadyRequest: READY, ApproveRequest: APPROVE, CancelRequest: CANCEL, ChargeRequest: CHARGE}

REFUSED = [
    # (request, changed fields, code)
    (ReadyRequest, {"total_amount": -1}, "-705"),
    (ReadyRequest, {"total_amount": 0}, "-705"),
    (ReadyRequest, {"tax_free_amount": 39_001}, "-705"),
    (ReadyRequest, {"tax_free_amount": -1}, "-705"),
    (ReadyRequest, {"total_amount": 39_000.0}, "-705"),
    (ReadyRequest, {"total_amount": True}, "-705"),
    (ReadyRequest, {"quantity": 0}, "-705"),
    (ReadyRequest, {"partner_order_id": ""}, "MISSING_FIELDS"),
    (ReadyRequest, {"partner_user_id": "  "}, "MISSING_FIELDS"),
    (ReadyRequest, {"item_name": ""}, "MISSING_FIELDS"),
    (ReadyRequest, {"approval_url": ""}, "MISSING_FIELDS"),
    (ApproveRequest, {"tid": ""}, "MISSING_FIELDS"),
    (ApproveRequest, {"pg_token": ""}, "MISSING_FIELDS"),
    (ApproveRequest, {"partner_order_id": None}, "MISSING_FIELDS"),
    (ApproveRequest, {"partner_user_id": ""}, "MISSING_FIELDS"),
    (CancelRequest, {"cancel_amount": -3_000}, "-798"),
    (CancelRequest, {"cancel_amount": 0}, "-798"),
    (CancelRequest, {"cancel_tax_free_amount": 3_001}, "-798"),
    (CancelRequest, {"cancel_tax_free_amount": -1}, "-798"),
    (CancelRequest, {"tid": ""}, "MISSING_FIELDS"),
    (CancelRequest, {"idempotency_key": ""}, "MISSING_FIELDS"),
    (ChargeRequest, {"total_amount": -29_000}, "-705"),
    (ChargeRequest, {"tax_free_amount": 29_001}, "-705"),
    (ChargeRequest, {"instrument_ref": ""}, "MISSING_FIELDS"),
    (ChargeRequest, {"partner_order_id": ""}, "MISSING_FIELDS"),
    (ChargeRequest, {"idempotency_key": ""}, "MISSING_FIELDS"),
]


@pytest.mark.parametrize(("kind", "changed", "code"), REFUSED)
def test_a_request_no_gateway_could_honour_is_refused_when_built(
    kind: type, changed: dict[str, Any], code: str
) -> None:
    with pytest.raises(PermanentPaymentError) as refused:
        kind(**{**KINDS[kind], **changed})
    assert refused.value.code == code
    assert any("가" <= ch <= "힣" for ch in str(refused.value))  # a Korean reason for staff


ACCEPTED = [
    (ReadyRequest, {"tax_free_amount": 39_000}),  # all of it tax-free (a tax-free product)
    (ReadyRequest, {"total_amount": 1, "tax_free_amount": 0}),
    (CancelRequest, {"cancel_tax_free_amount": 3_000}),
    (CancelRequest, {"cancel_amount": 1}),
    (ChargeRequest, {"tax_free_amount": 29_000}),
]


@pytest.mark.parametrize(("kind", "changed"), ACCEPTED)
def test_the_boundaries_are_accepted(kind: type, changed: dict[str, Any]) -> None:
    request = kind(**{**KINDS[kind], **changed})
    assert all(getattr(request, name) == value for name, value in changed.items())


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_request_cannot_be_changed_after_it_is_checked(kind: type) -> None:
    request = kind(**KINDS[kind])
    field = dataclasses.fields(request)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(request, field, "")


def test_a_refused_request_never_reaches_the_gateway() -> None:
    sent: list[httpx.Request] = []
    gateway = KakaoPayGateway(
        secret_key="k",
        base_url="https://kp.test",
        transport=httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(500)),
    )
    with pytest.raises(PermanentPaymentError):
        gateway.cancel(CancelRequest(**{**CANCEL, "cancel_amount": -3_000}))
    assert sent == []
