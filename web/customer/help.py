"""/help: the customer inquiry form (issue 21), plain HTML, feeding the same inquiry service as the
KakaoTalk chatbot (core.inquiries.inbound.receive_help).

GET shows the form. POST, in this order: refuse a body over MAX_FORM_BYTES (413), refuse an address
or a phone over its throttle (429, Retry-After), refuse a missing or foreign CSRF token (403),
then prove the order (phone + order number, or "주문 없음"), file the inquiry and show the SLA promise.
A refusal says the same thing whichever of phone and order number is wrong, and shows nothing of any
customer; what the customer typed comes back escaped in the form. Every post is logged
(core.inquiries.inbound_log), which is also what the throttles count.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core.db import read_scope, session_scope
from core.errors import ValidationFailed
from core.inquiries import inbound, inbound_log
from core.models.inquiries import INQUIRY_TYPE_LABELS
from web import hooks
from web.customer.render import FormTooBig, csrf_ok, form_page, message_page, read_form
from web.hooks import client_address

PATH = "/help"
PURPOSE = "help"
TYPES = [(t.value, INQUIRY_TYPE_LABELS[t]) for t in inbound.HELP_TYPES]
EMPTY = {"phone": "", "order_mode": "order", "order_number": "", "type": "", "text": ""}


def _form(request: Request, *, values: dict[str, str] | None = None, error: str = "", status: int = 200) -> HTMLResponse:
    return form_page(request, "help.html", purpose=PURPOSE, status=status, title="문의하기", types=TYPES,
                     values={**EMPTY, **(values or {})}, error=error, max_text=inbound.MAX_TEXT)


def _log(status: int, outcome: str, started: float, address: str, phone: str | None, **detail: Any) -> None:
    with session_scope(hooks.engine()) as session:
        inbound_log.record(session, channel="help", status_code=status, outcome=outcome, verified=False,
                           started=started, address=address,
                           subject=inbound.phone_subject(phone) if phone else None, **detail)


def _throttled(address: str, phone: str | None) -> bool:
    with read_scope(hooks.engine()) as session:
        return inbound.help_throttled(session, address=address, phone=phone)


def _file(values: dict[str, str], started: float, address: str) -> inbound.Received:
    with session_scope(hooks.engine()) as session:
        return inbound.receive_help(
            session, phone_raw=values["phone"],
            order_number=values["order_number"] if values["order_mode"] != "none" else None,
            inquiry_type=values["type"], text=values["text"], started=started, address=address,
        )


async def help_page(request: Request) -> Response:
    if request.method != "POST":
        return _form(request)
    started = time.perf_counter()
    address = client_address(request)
    try:
        form = await read_form(request, max_bytes=MAX_TEXT_BYTES, max_fields=10)
    except FormTooBig:
        await run_in_threadpool(_log, 413, "too_large", started, address, None)
        return message_page("문의하기", f"내용이 너무 길어요. {inbound.MAX_TEXT:,}자 이내로 줄여 주세요.", status=413,
                            tone="error")
    values = {key: form.get(key, "") for key in EMPTY}
    values["phone"], values["order_number"] = values["phone"][:30], values["order_number"][:40]
    phone = inbound.canonical_phone(values["phone"])
    if await run_in_threadpool(_throttled, address, phone):
        await run_in_threadpool(_log, 429, "throttled", started, address, phone)
        response = message_page("문의하기", "요청이 너무 많아요. 잠시 후 다시 시도해 주세요.", status=429, tone="warn")
        response.headers["Retry-After"] = "60"
        return response
    if not csrf_ok(request, form, PURPOSE):
        await run_in_threadpool(_log, 403, "refused", started, address, phone)
        return _form(request, values=values, error="페이지가 오래되었어요. 내용을 확인하고 다시 보내 주세요.", status=403)
    if values["order_mode"] != "none" and not values["order_number"].strip():
        await run_in_threadpool(_log, 400, "bad_request", started, address, phone)
        return _form(request, values=values, error="주문번호를 쓰거나 “주문 없음”을 골라 주세요.", status=400)
    try:
        result = await run_in_threadpool(_file, values, started, address)
    except inbound.NotProven as exc:
        await run_in_threadpool(_log, 400, "not_proven", started, address, phone)
        return _form(request, values=values, error=str(exc), status=400)
    except ValidationFailed as exc:
        await run_in_threadpool(_log, 400, "bad_request", started, address, phone)
        return _form(request, values=values, error=str(exc), status=400)
    return form_page(request, "help_done.html", purpose=PURPOSE, title="문의 접수", promise=result.reply,
                     inquiry_id=result.inquiry_id)


# 100,000 characters of Hangul are ~900 KB urlencoded: refused at the door. 10,000 (the limit)
# of Hangul are ~90 KB, plus the other fields.
MAX_TEXT_BYTES = 128 * 1024
