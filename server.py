"""The served app: Streamlit's st.App (ASGI) around app.py, with every HTTP route ChannelDesk adds.

    streamlit run server.py --server.port 8501      (scripts/start.sh does this)

Why st.App and not a login form inside the script: a Streamlit script talks to the browser over a
websocket and cannot set a cookie, least of all an HttpOnly one. Here the login is a plain HTML form
posted to /auth/login (works on any phone browser, no JavaScript, the password never crosses the
websocket); the answer sets an HttpOnly, SameSite=Lax (Secure on https) cookie holding a random
token, and app.py reads it from st.context.cookies on every run and asks core.accounts.auth whose it is.
Staff page URLs without a valid session are redirected to the login before Streamlit loads at all.

Add new routes (webhooks, customer pages) to ROUTES below: this module is the one place they live.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import streamlit as st
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.accounts import auth
from core.accounts.screens import PUBLIC_SCREENS, SCREENS
from core.db import get_engine, read_scope, upgrade
from core.demo.seed import DEMO_PASSWORD, DEMO_USERS
from web import sockets
from web.customer import go as customer_go
from web.customer import help as customer_help
from web.customer import pay as customer_pay
from web.customer import referral as customer_referral
from web.customer import review as customer_review
from web.customer import showcase as customer_showcase
from web.hooks import kakao_skill, toss

LOGIN_PATH = "/auth/login"
LOGOUT_PATH = "/auth/logout"
MAX_FORM_BYTES = 128 * 1024  # a login form is a few hundred bytes; 10,000 Hangul characters (90 KB encoded) fit
STAFF_PATHS = frozenset({"/", *(f"/{s.url_path}" for s in SCREENS)})
# Customer pages: plain HTML routes below (web/customer), never the Streamlit app, never behind the login.
CUSTOMER_PATHS = frozenset({
    customer_pay.PATH, customer_go.PATH, customer_help.PATH, customer_review.PATH, customer_review.PHOTO_PATH,
    customer_showcase.PATH, customer_showcase.PHOTO_PATH,
})
PUBLIC_PATHS = frozenset({*CUSTOMER_PATHS, *(f"/{s.url_path}" for s in PUBLIC_SCREENS)})


def _engine() -> Engine:
    return get_engine()


def client_of(request: Request | Scope) -> auth.Client:
    """The address and browser of a request (kept on the session row)."""
    scope = request.scope if isinstance(request, Request) else request
    client = scope.get("client")
    headers = dict(scope.get("headers") or [])
    agent = headers.get(b"user-agent", b"").decode("latin-1")
    return auth.Client(ip=client[0] if client else "", user_agent=agent)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no //other.host, no scheme): the login cannot be an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or auth.has_control_chars(target):
        return "/"
    return target


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _same_origin(request: Request) -> bool:
    """A form post from another site (login CSRF) carries that site's Origin; browsers always send it."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _login_html(*, next_path: str, username: str = "", failed: bool = False, notice: str = "",
                demo: bool = False) -> str:
    """The login page: plain HTML, every word Korean, every value escaped."""
    error = f'<p class="error" role="alert">{html.escape(auth.LOGIN_REFUSED)}</p>' if failed else ""
    info = f'<p class="info">{html.escape(notice)}</p>' if notice else ""
    demo_box = ""
    if demo:
        names = ", ".join(html.escape(u) for u, _name, _role in DEMO_USERS)
        demo_box = (f'<p class="demo">데모 매장입니다. 데모 계정: {names} (비밀번호 '
                    f'{html.escape(DEMO_PASSWORD)})</p>')
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ChannelDesk 로그인</title>
<style>
 body{{font-family:system-ui,-apple-system,"Noto Sans KR",sans-serif;background:#f6f7f9;margin:0}}
 main{{max-width:360px;margin:10vh auto;background:#fff;padding:2rem;border-radius:12px;
   box-shadow:0 1px 4px rgba(0,0,0,.08)}}
 h1{{font-size:1.4rem;margin:0 0 .25rem}} .sub{{color:#666;margin:0 0 1.5rem}}
 label{{display:block;margin:.75rem 0 .25rem;font-weight:600}}
 input{{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #ccc;border-radius:8px}}
 button{{margin-top:1.25rem;width:100%;padding:.7rem;font-size:1rem;border:0;border-radius:8px;
   background:#ff4b4b;color:#fff;font-weight:600}}
 .error{{color:#b00020}} .info{{color:#1d4ed8}} .demo{{background:#fff7d6;padding:.5rem;border-radius:8px}}
</style></head>
<body><main>
<h1>ChannelDesk 로그인</h1><p class="sub">카카오톡 채널 샵의 백오피스</p>
{info}{error}{demo_box}
<form method="post" action="{LOGIN_PATH}">
 <input type="hidden" name="next" value="{html.escape(next_path)}">
 <label for="username">아이디</label>
 <input id="username" name="username" autocomplete="username" maxlength="64" required
   value="{html.escape(username)}">
 <label for="password">비밀번호</label>
 <input id="password" name="password" type="password" autocomplete="current-password" required>
 <button type="submit">로그인</button>
</form></main></body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _set_session_cookie(response: Response, token: str, request: Request) -> None:
    from core.config import get_settings

    response.set_cookie(auth.SESSION_COOKIE, token, max_age=get_settings().session_max_minutes * 60, path="/",
                        httponly=True, samesite="lax", secure=_is_https(request))


def _clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_is_https(request))


def _is_demo() -> bool:
    with read_scope(_engine()) as session:
        return auth.is_demo_store(session)


NOTICES = {
    "ended": "로그인이 끝났습니다. 다시 로그인하세요.",
    "logout": "로그아웃했습니다.",
}


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        notice = NOTICES.get(request.query_params.get("notice", ""), "")
        page = _page(_login_html(next_path=safe_next(request.query_params.get("next")), notice=notice,
                                 demo=await run_in_threadpool(_is_demo)))
        if auth.SESSION_COOKIE in request.cookies:
            _clear_session_cookie(page, request)  # a stale cookie is dropped whenever the login shows
        return page
    form = await _read_form(request)
    next_path = safe_next(form.get("next"))
    username = form.get("username", "")
    if form is _TOO_BIG or not _same_origin(request):
        return _page(_login_html(next_path=next_path, failed=True), status=400)
    try:
        token, _actor = await run_in_threadpool(auth.login, _engine(), username, form.get("password", ""),
                                                client_of(request))
    except auth.LoginFailed:
        shown = username if not auth.has_control_chars(username) else ""
        return _page(_login_html(next_path=next_path, username=shown[:64], failed=True,
                                 demo=await run_in_threadpool(_is_demo)), status=401)
    response = RedirectResponse(next_path, status_code=303)
    _set_session_cookie(response, token, request)
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: Request) -> Response:
    """POST: end every session of this person (all browsers, all servers) and drop the cookie."""
    if not _same_origin(request):
        return _page(_login_html(next_path="/"), status=400)
    await run_in_threadpool(auth.logout, _engine(), request.cookies.get(auth.SESSION_COOKIE))
    response = RedirectResponse(f"{LOGIN_PATH}?notice=logout", status_code=303)
    _clear_session_cookie(response, request)
    return response


_TOO_BIG: dict[str, str] = {}


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, read up to MAX_FORM_BYTES (a bigger body is refused, not buffered)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return _TOO_BIG
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10)
    return {key: values[0] for key, values in fields.items()}


class LoginGate:
    """Staff page loads without a valid session go to the login first (the script checks again on
    every run; this only spares an anonymous visitor a Streamlit page that can show them nothing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"] in STAFF_PATHS:
            request = Request(scope)
            token = request.cookies.get(auth.SESSION_COOKIE)
            actor = await run_in_threadpool(auth.resolve_session, _engine(), token, touch=False) if token else None
            if actor is None:
                target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
                notice = "&notice=ended" if token else ""
                response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}{notice}", status_code=303)
                response.headers["Cache-Control"] = "no-store"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    await run_in_threadpool(upgrade, _engine())  # the login answers even before the first page run
    sockets.no_delay_on_listeners()  # no answer waits 40-200 ms for an ACK (web/sockets.py says why)
    yield


ROUTES = [
    Route(LOGIN_PATH, login_page, methods=["GET", "POST"]),
    Route(LOGOUT_PATH, logout, methods=["POST"]),
    Route(kakao_skill.PATH, kakao_skill.kakao_skill, methods=["POST"]),
    Route(toss.PATH, toss.toss_webhook, methods=["POST"]),
    Route(customer_help.PATH, customer_help.help_page, methods=["GET", "POST"]),
    Route(customer_pay.PATH, customer_pay.pay, methods=["GET", "POST"]),
    Route(customer_go.PATH, customer_go.go, methods=["GET"]),
    Route(customer_review.PATH, customer_review.review_page, methods=["GET", "POST"]),
    Route(customer_review.PHOTO_PATH, customer_review.review_photo, methods=["GET"]),
    Route(customer_showcase.PATH, customer_showcase.showcase, methods=["GET"]),
    Route(customer_showcase.PHOTO_PATH, customer_showcase.showcase_photo, methods=["GET"]),
    Route(customer_referral.PATH, customer_referral.referral, methods=["GET"]),
]

app = st.App("app.py", routes=ROUTES, middleware=[Middleware(LoginGate)], lifespan=lifespan)
