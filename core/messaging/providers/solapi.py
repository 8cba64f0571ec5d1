"""Solapi AlimTalk (with SMS/LMS fallback) over httpx, as documented (see design/CONTRACTS.md).

HTTP 200 is not success per message: a message rejected at registration comes back inside
`failedMessageList`, so results are read per message from the body. The client never retries a
send by itself (a send is not idempotent at Solapi); it classifies the failure so the sender can
retry what was not taken and look up what may have been taken.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from core.messaging.providers.base import (
    Outcome,
    OutgoingMessage,
    PermanentProviderError,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    SendResult,
)
from core.models import MessageKind

SEND_PATH = "/messages/v4/send-many/detail"
LIST_PATH = "/messages/v4/list"
MAX_BATCH = 10_000
OK_STATUS_CODES = {"2000", "3000", "4000"}
KEY_FIELD = "idempotencyKey"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

# Kakao / Solapi result codes mapped to reasons staff can act on.
RESULT_REASONS = {
    "3018": "카카오톡을 사용하지 않는 번호라 보낼 수 없음 (SMS 대체 발송 대상)",
    "3019": "카카오톡 사용자가 아님",
    "3020": "고객이 채널을 차단함",
    "3015": "알림톡 템플릿을 찾을 수 없음 (템플릿 ID 확인)",
    "3016": "메시지가 승인된 템플릿과 다름",
    "3022": "광고 발송 가능 시간이 아님 (08:00~20:50)",
    "3025": "변수 길이 초과",
}
RETRY_CODES = {"3022"}  # the sender holds these until 08:00 rather than failing them
DELIVERED_CODE = "4000"  # 수신 완료: the final report that the message reached the phone
PENDING_CODES = {"2000", "3000"}  # accepted / with the carrier: no final report yet
FALLBACK_TYPES = {"SMS", "LMS", "MMS"}
REPORT_PAGE_SIZE = 500


class RateLimiter:
    """A token bucket shared by the threads of one client: at most `rate` requests a second."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        wait = start - now
        if wait > 0:
            time.sleep(wait)
        return wait


def auth_header(api_key: str, api_secret: str, *, date: str | None = None, salt: str | None = None) -> str:
    """`HMAC-SHA256 apiKey=..., date=..., salt=..., signature=hex(HMAC(secret, date + salt))`."""
    date = date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    salt = salt or secrets.token_hex(16)
    signature = hmac.new(api_secret.encode(), (date + salt).encode(), hashlib.sha256).hexdigest()
    return f"HMAC-SHA256 apiKey={api_key}, date={date}, salt={salt}, signature={signature}"


def reason_for(code: str | None, message: str | None) -> str:
    base = RESULT_REASONS.get(str(code)) if code is not None else None
    detail = f"[{code}] {message}" if message else f"[{code}]"
    return f"{base} {detail}" if base else f"발송 실패 {detail}"


class SolapiClient:
    name = "solapi"
    max_batch = MAX_BATCH

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        sender: str,
        pf_id: str,
        rate_per_second: float = 100.0,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.sender = sender
        self.pf_id = pf_id
        self.limiter = RateLimiter(rate_per_second)
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> SolapiClient:
        missing = [
            name
            for name in ("solapi_api_key", "solapi_api_secret", "solapi_sender", "solapi_pfid")
            if not getattr(settings, name) and name.removeprefix("solapi_") not in overrides
        ]
        if missing:
            raise PermanentProviderError(f"Solapi 설정이 없습니다: {', '.join(m.upper() for m in missing)}")
        values = dict(
            base_url=settings.solapi_base_url,
            api_key=settings.solapi_api_key,
            api_secret=settings.solapi_api_secret,
            sender=settings.solapi_sender,
            pf_id=settings.solapi_pfid,
            rate_per_second=settings.message_rate_per_second,
        )
        values.update(overrides)
        return cls(**values)

    def close(self) -> None:
        self.http.close()

    # -- wire shapes -------------------------------------------------------------------------
    def message_body(self, message: OutgoingMessage) -> dict[str, Any]:
        advertising = message.kind == MessageKind.ADVERTISING
        kakao: dict[str, Any] = {"pfId": self.pf_id, "disableSms": False}
        if not advertising:
            kakao["templateId"] = message.template_id
            kakao["variables"] = message.variables
        return {
            "to": message.to,
            "from": self.sender,
            # Informational = AlimTalk from an approved template; advertising = FriendTalk (CTA).
            "type": "CTA" if advertising else "ATA",
            "text": message.text,
            "kakaoOptions": kakao,
            "customFields": {KEY_FIELD: message.key},
        }

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.limiter.acquire()
        headers = {"Authorization": auth_header(self.api_key, self.api_secret)}
        try:
            response = self.http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetriableProviderError(f"Solapi에 연결할 수 없음: {exc.__class__.__name__}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderOutcomeUnknown(f"Solapi 응답 시간 초과: {exc.__class__.__name__}") from exc
        except httpx.TransportError as exc:
            raise ProviderOutcomeUnknown(f"Solapi 연결이 끊김: {exc.__class__.__name__}") from exc
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        if status == 429:
            raise RetriableProviderError("Solapi 요청 한도 초과 (429)")
        if status in (401, 403):
            raise PermanentProviderError(
                f"Solapi 인증 실패 ({status}): {_error_text(data, response)} (API 키·시크릿·서버 시각 확인)"
            )
        if 400 <= status < 500:
            raise PermanentProviderError(f"Solapi 요청 거부 ({status}): {_error_text(data, response)}")
        if status >= 500:
            raise ProviderOutcomeUnknown(f"Solapi 서버 오류 ({status})")
        if not isinstance(data, dict):
            kind = "HTML" if "html" in response.headers.get("content-type", "").lower() else "읽을 수 없는"
            raise ProviderOutcomeUnknown(f"Solapi가 {kind} 응답을 보냄 (HTTP {status})")
        return data

    # -- protocol ----------------------------------------------------------------------------
    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if not messages:
            return []
        if len(messages) > MAX_BATCH:
            raise ValueError(f"한 번에 {MAX_BATCH:,}건까지 보낼 수 있습니다")
        body = {"messages": [self.message_body(m) for m in messages], "allowDuplicates": False}
        data = self._request("POST", SEND_PATH, json=body)
        return parse_send_response(data, messages)

    def lookup(self, messages: list[OutgoingMessage], since: datetime) -> dict[str, SendResult]:
        """Page through messages created since `since`, matching our key in customFields."""
        wanted = {m.key for m in messages}
        found: dict[str, SendResult] = {}
        start_key: str | None = None
        for _page in range(1000):
            params: dict[str, Any] = {
                "criteria": "dateCreated",
                "cond": "gte",
                "value": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "limit": 500,
            }
            if start_key:
                params["startKey"] = start_key
            data = self._request("GET", LIST_PATH, params=params)
            for item in _items(data.get("messageList")):
                key = (item.get("customFields") or {}).get(KEY_FIELD)
                if key in wanted:
                    found[key] = _result_from_item(key, item, data.get("groupId"))
            start_key = data.get("nextKey")
            if not start_key or len(found) == len(wanted):
                break
        return found

    def delivery_reports(self, group_id: str) -> dict[str, SendResult]:
        """The final result of every message of one send group, by our key (GET /messages/v4/list
        with criteria=groupId, paged by startKey). A message still in flight comes back ACCEPTED."""
        reports: dict[str, SendResult] = {}
        start_key: str | None = None
        for _page in range(1000):
            params: dict[str, Any] = {
                "criteria": "groupId",
                "cond": "eq",
                "value": group_id,
                "limit": REPORT_PAGE_SIZE,
            }
            if start_key:
                params["startKey"] = start_key
            data = self._request("GET", LIST_PATH, params=params)
            for item in _items(data.get("messageList")):
                report = report_from_item(item, group_id)
                if report is not None:
                    reports[report.key] = report
            start_key = data.get("nextKey")
            if not start_key:
                break
        return reports


def report_from_item(item: dict[str, Any], group_id: str | None = None) -> SendResult | None:
    """One message of a delivery report as a result: DELIVERED (4000), ACCEPTED (2000/3000: not
    final yet) or FAILED with the code's reason. `replacement: true` (or an SMS/LMS type) means the
    AlimTalk could not be delivered and Solapi sent the text as SMS/LMS instead (disableSms: false)."""
    key = (item.get("customFields") or {}).get(KEY_FIELD)
    if key is None:
        return None  # not one of ours
    code = str(item.get("statusCode") or "")
    message_id = item.get("messageId") or item.get("_id")
    group = item.get("groupId") or group_id
    kind = str(item.get("type") or "").upper()
    fallback = bool(item.get("replacement")) or kind in FALLBACK_TYPES
    via = f"문자({kind})" if kind in FALLBACK_TYPES else "문자"
    if code == DELIVERED_CODE:
        reason = f"알림톡 대신 {via} 대체 발송으로 전달" if fallback else None
        return SendResult(key, Outcome.DELIVERED, message_id, group, code, reason)
    if not code or code in PENDING_CODES:
        return SendResult(key, Outcome.ACCEPTED, message_id, group, code or None)
    reason = reason_for(code, item.get("statusMessage") or item.get("reason"))
    if fallback:
        reason = f"알림톡 실패 후 {via} 대체 발송도 실패: {reason}"
    return SendResult(key, Outcome.FAILED, message_id, group, code, reason)


def _error_text(data: Any, response: httpx.Response) -> str:
    if isinstance(data, dict):
        return str(data.get("errorMessage") or data.get("errorCode") or data)[:200]
    return response.text[:120] or "(빈 응답)"


def _items(value: Any) -> list[dict[str, Any]]:
    """messageList comes as a list or as an object keyed by messageId."""
    if isinstance(value, dict):
        return [dict(v, messageId=v.get("messageId", k)) for k, v in value.items() if isinstance(v, dict)]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _result_from_item(key: str, item: dict[str, Any], group_id: str | None) -> SendResult:
    code = str(item.get("statusCode", ""))
    group = item.get("groupId") or group_id
    if code in OK_STATUS_CODES or not code:
        return SendResult(key, Outcome.ACCEPTED, item.get("messageId"), group, code or None)
    outcome = Outcome.RETRY if code in RETRY_CODES else Outcome.FAILED
    return SendResult(
        key, outcome, item.get("messageId"), group, code, reason_for(code, item.get("statusMessage"))
    )


def parse_send_response(data: dict[str, Any], messages: list[OutgoingMessage]) -> list[SendResult]:
    """One result per message: failures from failedMessageList, the rest accepted."""
    group_id = (data.get("groupInfo") or {}).get("groupId")
    failed: dict[str, SendResult] = {}
    unkeyed_failures = 0
    for item in _items(data.get("failedMessageList")):
        key = (item.get("customFields") or {}).get(KEY_FIELD)
        if key is None:
            unkeyed_failures += 1
            continue
        failed[key] = _result_from_item(key, item, group_id)
    accepted = {}
    for item in _items(data.get("messageList")):
        key = (item.get("customFields") or {}).get(KEY_FIELD)
        if key is not None and key not in failed:
            accepted[key] = _result_from_item(key, item, group_id)
    if unkeyed_failures:
        # A failure we cannot attribute: do not guess which message succeeded.
        raise ProviderOutcomeUnknown(f"Solapi 실패 목록에 식별할 수 없는 메시지 {unkeyed_failures}건")
    results = []
    for message in messages:
        result = failed.get(message.key) or accepted.get(message.key)
        results.append(result or SendResult(message.key, Outcome.ACCEPTED, group_id=group_id, code="2000"))
    return results
