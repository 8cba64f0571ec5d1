"""POST /hooks/toss: Toss Payments webhooks (register this URL in the Toss developer center).

Thin: read at most MAX_BODY, parse, and hand the event to core.inquiries.toss_events, which looks
the payment up through the Toss API (the body is a hint, never proof) and reconciles. Answers:
400 for a body that is not a Toss event, 200 for everything handled (an unknown payment too: Toss
stops resending), 503 when the lookup failed (Toss resends later). Only HTTP 200 counts for Toss.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.db import session_scope
from core.inquiries import inbound_log, toss_events
from core.payments.gateways.router import PaymentRouter
from web import hooks
from web.hooks import BodyTooLarge, client_address, read_body

PATH = "/hooks/toss"
MAX_BODY = 64 * 1024  # a Toss event is a few hundred bytes

log = logging.getLogger(__name__)


def router() -> PaymentRouter:
    """The Toss client (TOSS_BASE_URL, TOSS_SECRET_KEY) behind the router's retries on 5xx."""
    from core.payments.gateways.registry import get_gateway

    toss = get_gateway("toss")
    return PaymentRouter(toss, resolve=lambda _name: toss)


def _refuse(status: int, outcome: str, started: float, address: str, **detail: object) -> JSONResponse:
    with session_scope(hooks.engine()) as session:
        inbound_log.record(session, channel="toss", status_code=status, outcome=outcome, verified=False,
                           started=started, address=address, **detail)
    return JSONResponse({"ok": False, "reason": outcome}, status_code=status)


def _handle(event: toss_events.Event, started: float, address: str) -> toss_events.Handled:
    return toss_events.handle(hooks.engine(), event, router, address=address, started=started)


async def toss_webhook(request: Request) -> JSONResponse:
    started = time.perf_counter()
    address = client_address(request)
    try:
        body = await read_body(request, MAX_BODY)
    except BodyTooLarge:
        return await run_in_threadpool(_refuse, 413, "too_large", started, address)
    try:
        event = toss_events.parse(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, toss_events.BadEvent) as exc:
        return await run_in_threadpool(_refuse, 400, "bad_request", started, address, reason=str(exc)[:100])
    try:
        handled = await run_in_threadpool(_handle, event, started, address)
    except Exception:
        log.exception("toss webhook: handling failed")
        return await run_in_threadpool(_refuse, 500, "error", started, address)
    return JSONResponse({"ok": handled.status_code == 200, "result": handled.outcome},
                        status_code=handled.status_code)
