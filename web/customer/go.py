"""/go: a campaign's tracked link. Record the click, then 303 to the campaign's own target.

    GET /go?c=<campaign id>&u=<customer public id>&v=<variant>      (core.campaigns.content builds it)

The target is the campaign's link_url (checked as http(s) when saved, checked again here), never a
value of the request: a URL in any parameter (`?next=https://...`, `u=//evil`, a scheme, a
backslash) is refused with 400, so /go can't be used as an open redirect. An unknown or malformed
campaign is a Korean 404 page. One short transaction; no Streamlit, no template for the happy path.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import campaigns
from core.db import session_scope
from web.customer import render

PATH = "/go"
CAMPAIGN = re.compile(r"[0-9]{1,12}")
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
VARIANT = re.compile(r"[A-Za-z0-9가-힣]{1,8}")
KNOWN = frozenset({"c", "u", "v"})
# A value that could send a browser elsewhere: a scheme, a network path, a backslash, a bare host.
URLISH = re.compile(r"(?i)[a-z][a-z0-9+.-]*:|//|\\|^www\.")


def looks_like_url(value: str) -> bool:
    """True for anything a browser might follow to another site, also after percent-decoding twice."""
    return any(URLISH.search(candidate) for candidate in (value, unquote(value), unquote(unquote(value))))


def _record(campaign_id: str, public_id: str, variant: str | None) -> str | None:
    with session_scope(render.engine()) as session:
        return campaigns.record_click(session, campaign_id=campaign_id, public_id=public_id, variant=variant)


def _gone() -> Response:
    return render.message_page("링크를 찾을 수 없습니다", "이 링크는 더 이상 유효하지 않습니다.", status=404, tone="warn")


async def go(request: Request) -> Response:
    items = request.query_params.multi_items()
    if len(items) > 10 or any(looks_like_url(key) or looks_like_url(value) for key, value in items):
        return render.message_page("허용되지 않는 링크", "다른 사이트로 보내는 링크는 열 수 없습니다.",
                                   status=400, tone="error")
    params = dict(items)
    campaign_id, public_id = params.get("c", ""), params.get("u", "")
    variant = params.get("v") or None
    if (not CAMPAIGN.fullmatch(campaign_id) or not PUBLIC_ID.fullmatch(public_id)
            or (variant is not None and not VARIANT.fullmatch(variant))):
        return _gone()
    target = await run_in_threadpool(_record, campaign_id, public_id, variant)
    parts = urlsplit(target or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ord(ch) < 32 for ch in target or ""):
        return _gone()
    response = RedirectResponse(target, status_code=303)  # type: ignore[arg-type]
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the customer's public id stays here
    return response
