"""/r/{code}: a customer's personal referral link (shared from the 결제 완료 page or the order confirmation).

    GET /r/{code}[?p=<product id>]   the checkout of the product (the referrer's last one without p),
                                     remembered as this referral; 303 to /pay?link=...

Each visitor gets a checkout of their own (a payment link is paid once); the browser keeps it in a
cookie, so coming back opens the same checkout while it can be paid and the 30 days count from the
first visit. A malformed code or product is a Korean 400 page and an unknown one a Korean 404 page;
neither writes anything. More than 30 visits in 10 minutes from one address get a Korean 429 page
(web/customer/throttle.py says why).
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import clock
from core.db import session_scope
from core.errors import NotFound
from core.rewards import rules
from core.rewards import service as reward_service
from web.customer import render, throttle
from web.customer.pay import valid_code
from web.hooks import client_address

PATH = "/r/{code}"
COOKIE = "cd_ref"
COOKIE_DAYS = 30
PRODUCT = re.compile(r"[0-9]{1,12}")


def _visit(code: str, product_id: int | None, previous: str | None) -> str:
    with session_scope(render.engine()) as session:
        link = reward_service.visit_referral(
            session, code, product_id=product_id, previous_link=previous, now=clock.now()
        )
        return link.code


async def referral(request: Request) -> Response:
    code = request.path_params.get("code", "")
    product = request.query_params.get("p")
    if not rules.valid_referral_code(code) or (product is not None and not PRODUCT.fullmatch(product)):
        return render.message_page(
            "추천 링크 오류",
            "추천 링크가 올바르지 않습니다. 받은 링크를 다시 확인해 주세요.",
            status=400,
            tone="error",
        )
    previous = request.cookies.get(COOKIE)
    if not throttle.REFERRAL_VISITS.allow(client_address(request)):
        response = render.message_page(
            "추천 링크", "요청이 너무 많아요. 잠시 후 다시 시도해 주세요.", status=429, tone="warn"
        )
        response.headers["Retry-After"] = "60"
        return response
    try:
        link_code = await run_in_threadpool(
            _visit, code, int(product) if product else None, previous if valid_code(previous) else None
        )
    except NotFound as exc:
        return render.message_page(
            "추천 링크를 찾을 수 없습니다", f"{exc}. 받은 링크를 다시 확인해 주세요.", status=404, tone="warn"
        )
    response = RedirectResponse(f"/pay?link={link_code}", status_code=303)
    response.set_cookie(
        COOKIE,
        link_code,
        max_age=COOKIE_DAYS * 86400,
        path="/r/",
        httponly=True,
        samesite="lax",
        secure=render.is_https(request),
    )
    return render.secure_headers(response)
