"""POST /hooks/kakao/skill: the KakaoTalk channel chatbot's skill (Kakao i Open Builder).

Open Builder posts the customer's utterance with their channel key; we file it as an inquiry
(core.inquiries.inbound) and answer within Kakao's 5 seconds with a Korean SkillResponse that says
what happens next, plus quick replies for the common types. CONTRACTS.md has the shapes.

Answers:
- 401: the secret header (SECRET_HEADER, set in the skill's header settings in Open Builder) is
  missing or wrong (compared in constant time), or no secret is configured at all.
- 413: a body over MAX_BODY (a 1 MB utterance), refused before it is read to the end.
- 400: not JSON, not an object, no user key, no utterance text.
- 200: a SkillResponse; the same user with the same text again within 5 minutes adds nothing.
Every request is logged (core.inquiries.inbound_log) with its outcome and time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.db import read_scope, session_scope
from core.errors import ValidationFailed
from core.inquiries import channels, inbound, inbound_log
from web import hooks
from web.hooks import BodyTooLarge, client_address, read_body

PATH = channels.SKILL_PATH
SECRET_HEADER = channels.SECRET_HEADER
SECRET_SETTING = channels.SECRET_SETTING
MAX_BODY = 256 * 1024  # Kakao's utterances are short; 10,000 Hangul characters are 30 KB of JSON
MAX_USER_KEY = 80
ANSWER_WITHIN = 4.0  # seconds: Kakao gives up at 5
MAX_SIMPLE_TEXT = 1000
QUICK_REPLIES = ("결제 오류", "이중 결제", "환불 요청", "영수증 요청")

log = logging.getLogger(__name__)


def skill_response(text: str, *, quick_replies: bool = True) -> dict[str, Any]:
    """A SkillResponse 2.0: one simpleText (at most 1,000 characters) and the common types."""
    template: dict[str, Any] = {"outputs": [{"simpleText": {"text": text[:MAX_SIMPLE_TEXT]}}]}
    if quick_replies:
        template["quickReplies"] = [
            {"label": label, "action": "message", "messageText": f"{label} 문의"} for label in QUICK_REPLIES
        ]
    return {"version": "2.0", "template": template}


SECRET_TTL = 5.0  # seconds a read secret is reused: a new one on 설정 → 연동 counts within this
_secret_cache: dict[object, tuple[float, str | None]] = {}


def _secret() -> str | None:
    """KAKAO_SKILL_SECRET, else the one the owner made on 설정 → 연동 (read at most every SECRET_TTL)."""
    engine = hooks.engine()
    cached = _secret_cache.get(engine.url)
    if cached is not None and time.monotonic() - cached[0] < SECRET_TTL:
        return cached[1]
    with read_scope(engine) as session:
        value = channels.skill_secret(session)
    _secret_cache[engine.url] = (time.monotonic(), value)
    return value


def _log_only(**fields: Any) -> None:
    with session_scope(hooks.engine()) as session:
        inbound_log.record(session, channel="kakao_skill", **fields)


def _answer(status: int, text: str, *, started: float, address: str, outcome: str, verified: bool,
            quick_replies: bool = False, **detail: Any) -> JSONResponse:
    elapsed = int((time.perf_counter() - started) * 1000)
    _log_only(status_code=status, outcome=outcome, verified=verified, elapsed_ms=elapsed, address=address,
              **detail)
    return JSONResponse(skill_response(text, quick_replies=quick_replies), status_code=status)


def parse(body: bytes) -> tuple[str, str, bool | None]:
    """(user key, utterance, isFriend) from an Open Builder payload; ValueError says what is wrong."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError("JSON이 아닙니다") from exc
    request = payload.get("userRequest") if isinstance(payload, dict) else None
    if not isinstance(request, dict):
        raise ValueError("userRequest가 없습니다")
    user = request.get("user") if isinstance(request.get("user"), dict) else {}
    properties = user.get("properties") if isinstance(user.get("properties"), dict) else {}
    key = properties.get("plusfriendUserKey")
    if not (isinstance(key, str) and key.strip()):
        bot_key = user.get("id")
        key = f"bot:{bot_key}" if isinstance(bot_key, str) and bot_key.strip() else None
    if key is None or len(key) > MAX_USER_KEY or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValueError("사용자 키가 없거나 올바르지 않습니다")
    utterance = request.get("utterance")
    if not isinstance(utterance, str):
        raise ValueError("utterance가 없습니다")
    friend = properties.get("isFriend")
    return key.strip(), utterance, friend if isinstance(friend, bool) else None


def _file(user_key: str, utterance: str, is_friend: bool | None, started: float,
          address: str) -> inbound.Received:
    engine = hooks.engine()

    def work() -> inbound.Received:
        with session_scope(engine) as session:
            if user_key == channels.TEST_USER_KEY:  # 설정 → 연동's test button: answered, logged, never filed
                return inbound.answer_test(session, utterance, started=started, address=address)
            return inbound.receive_kakao(session, user_key=user_key, utterance=utterance, is_friend=is_friend,
                                         started=started, address=address)

    return hooks.with_retry_on_locked(engine, work)


def _report_late_failure(task: asyncio.Future[inbound.Received]) -> None:
    """A filing that outlived its early answer and then failed: never silent."""
    if not task.cancelled() and task.exception() is not None:
        log.error("kakao skill: a message answered early could not be filed", exc_info=task.exception())


async def kakao_skill(request: Request) -> JSONResponse:
    started = time.perf_counter()
    address = client_address(request)
    expected = await run_in_threadpool(_secret)
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        return await run_in_threadpool(
            lambda: _answer(401, "인증되지 않은 요청입니다.", started=started, address=address,
                            outcome="refused", verified=False, configured=bool(expected)))
    try:
        body = await read_body(request, MAX_BODY)
    except BodyTooLarge:
        return await run_in_threadpool(
            lambda: _answer(413, "메시지가 너무 길어요. 나눠서 다시 보내 주세요.", started=started,
                            address=address, outcome="too_large", verified=True))
    try:
        user_key, utterance, is_friend = parse(body)
    except ValueError as exc:
        reason = str(exc)
        return await run_in_threadpool(
            lambda: _answer(400, "요청을 읽을 수 없습니다.", started=started, address=address,
                            outcome="bad_request", verified=True, reason=reason))
    work = asyncio.ensure_future(run_in_threadpool(_file, user_key, utterance, is_friend, started, address))
    try:
        result = await asyncio.wait_for(asyncio.shield(work), timeout=ANSWER_WITHIN)
    except TimeoutError:
        # Still being filed (the store is busy): it will land; Kakao must not wait past 5 s.
        work.add_done_callback(_report_late_failure)
        log.warning("kakao skill: filing took over %.1f s; answered before it finished", ANSWER_WITHIN)
        return JSONResponse(skill_response("문의를 접수하고 있어요. 잠시 후 담당자가 확인할게요."))
    except ValidationFailed:
        return await run_in_threadpool(
            lambda: _answer(200, "궁금하신 내용을 적어 보내 주세요.", started=started, address=address,
                            outcome="bad_request", verified=True, quick_replies=True, reason="empty"))
    except Exception:
        log.exception("kakao skill: filing failed")
        return await run_in_threadpool(
            lambda: _answer(500, "잠시 후 다시 보내 주세요.", started=started, address=address,
                            outcome="error", verified=True))
    return JSONResponse(skill_response(result.reply))
