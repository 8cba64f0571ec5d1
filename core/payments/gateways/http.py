"""What the KakaoPay and Toss clients share: one request, classified into our gateway errors.

- Connection refused / connect timeout: the request never left -> retriable.
- Read timeout, dropped connection after sending: the gateway may have acted -> outcome unknown.
- 429 (rate limited: not processed) -> retriable, of any body.
- 5xx: for a call that moves money the gateway may have acted before its proxy answered (issue 13:
  an HTML 502 after the approve went through) -> outcome unknown; for a read -> retriable.
- Other 4xx -> the gateway's error body decides (see each client); for a call that moves money a
  4xx whose body is not the gateway's JSON error (a proxy's page) is not a refusal -> unknown.
- A success status with a body that is not a JSON object (HTML from a proxy, empty, a JSON list or
  string) is not a success we can trust: moving money -> unknown, a read -> retriable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from core.payments.gateways.base import (
    PaymentError,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    RetriablePaymentError,
)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def describe_body(response: httpx.Response) -> str:
    text = response.text.strip()
    if not text:
        return "빈 응답 (empty body)"
    kind = "HTML" if text.lstrip().lower().startswith(("<!doctype", "<html")) else "JSON이 아닌 응답"
    return f"{kind}: {text[:80]!r}"


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def send(
    client: httpx.Client,
    gateway: str,
    method: str,
    path: str,
    *,
    mutating: bool,
    classify_error: Callable[[httpx.Response, dict[str, Any] | None], PaymentError],
    **kwargs: Any,
) -> dict[str, Any]:
    try:
        response = client.request(method, path, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetriablePaymentError(
            f"{gateway}: 연결할 수 없습니다 ({exc.__class__.__name__})", code="CONNECT"
        ) from exc
    except httpx.TimeoutException as exc:
        raise PaymentOutcomeUnknown(
            f"{gateway}: 응답 시간 초과, 결과를 확인해야 합니다", code="TIMEOUT"
        ) from exc
    except httpx.TransportError as exc:  # dropped connection, protocol error after sending
        raise PaymentOutcomeUnknown(
            f"{gateway}: 연결이 끊겼습니다 ({exc.__class__.__name__})", code="DROPPED"
        ) from exc
    body = json_object(response)
    if response.is_success:
        if body is None:
            message = f"{gateway}: HTTP {response.status_code} 이지만 {describe_body(response)}"
            if mutating:
                raise PaymentOutcomeUnknown(message, code="MALFORMED", raw=response.text[:500])
            raise RetriablePaymentError(message, code="MALFORMED", raw=response.text[:500])
        return body
    detail = describe_body(response) if body is None else body
    code, raw = f"HTTP_{response.status_code}", body or response.text[:500]
    if response.status_code == 429:
        raise RetriablePaymentError(f"{gateway}: 요청이 너무 많습니다 (HTTP 429)", code=code, raw=raw)
    if response.status_code >= 500:
        message = f"{gateway}: HTTP {response.status_code} ({detail})"
        if mutating:
            raise PaymentOutcomeUnknown(f"{message}, 처리되었을 수 있어 결과를 확인합니다", code=code, raw=raw)
        raise RetriablePaymentError(message, code=code, raw=raw)
    if body is None:
        message = f"{gateway}: HTTP {response.status_code}, {detail}"
        if mutating:
            raise PaymentOutcomeUnknown(message, code=code, raw=raw)
        raise PermanentPaymentError(message, code=code, raw=raw)
    raise classify_error(response, body)


def require(body: dict[str, Any], gateway: str, operation: str, *fields: str, mutating: bool) -> None:
    """Every field the code relies on must be there; a success we cannot read is not a success."""
    missing = [name for name in fields if body.get(name) is None]
    if missing:
        message = f"{gateway} {operation}: 응답에 필드가 없습니다 ({', '.join(missing)})"
        if mutating:
            raise PaymentOutcomeUnknown(message, code="MISSING_FIELDS", raw=body)
        raise PermanentPaymentError(message, code="MISSING_FIELDS", raw=body)
