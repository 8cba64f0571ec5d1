"""Shared helpers of the customer pages: one Jinja2 environment, the page answer, forms and CSRF.

Every customer page is plain HTML rendered on the server (web/templates/base.html: lang="ko", a
proper title, viewport meta, inline CSS, 44 px tap targets, no JavaScript needed). Jinja2 escapes
every value (autoescape on for every template), so a staff-typed item name or a customer's text
is shown as text, never as markup.

CSRF (every form post): a signed double-submit token. The browser holds a random nonce in an
HttpOnly, SameSite=Lax cookie (`cd_csrf`); the form carries HMAC(secret, nonce | purpose). A post
is accepted only when the cookie is there and the field is that nonce's HMAC for this very purpose
(e.g. "pay:<code>"), so another site can neither read nor forge it, a token for one link does not
work for another, and a cookie planted by a sibling host does not help without the secret. A
foreign Origin header is refused as well (KakaoTalk's in-app browser sends the page's own).

Handlers are Starlette coroutines; core services run in a thread (run_in_threadpool). Nothing here
imports streamlit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CSRF_COOKIE = "cd_csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 256 * 1024  # a help text of 100,000 Hangul characters is ~300 KB: refused, not buffered
SECRET_KEY = "web.secret"  # the store's key when WEB_SECRET is not configured

ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# default-src 'none': no script can run on a customer page even if a value slipped through unescaped.
# form-action allows https: because the pay form's answer is a 303 to the gateway's own page.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'self' https:; frame-ancestors 'none'")


def engine() -> Engine:
    """The store of the configured DATABASE_URL (one engine per URL per process)."""
    from core.config import get_settings
    from core.db import get_engine

    return get_engine(get_settings().database_url)


def shop_context() -> dict[str, Any]:
    """The shop's name and contact, shown on every customer page (trust, seed 003), and its refund
    policy, read only when a page shows it (base.html's refund_policy block; a message page does not)."""
    from core.config import get_settings

    settings = get_settings()
    return {"shop_name": settings.shop_name, "shop_phone": settings.shop_phone, "refund_policy": _refund_policy}


def _refund_policy() -> str:
    """The owner's refund policy from 설정 (core.payments.checkout), or its default."""
    from core.db import read_scope
    from core.payments.checkout import refund_policy

    with read_scope(engine()) as session:
        return refund_policy(session)


def render_html(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**shop_context(), **context)


def page(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A customer page with the headers every one carries (never cached, never framed, no script)."""
    response = HTMLResponse(render_html(template, **context), status_code=status)
    secure_headers(response)
    return response


def secure_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link code stays out of other sites' logs
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CSP
    return response


def allow_script(response: Response, nonce: str) -> Response:
    """Let this one page's inline script carrying `nonce` run (the 결제 완료 share button); no other."""
    response.headers["Content-Security-Policy"] = f"{CSP}; script-src 'nonce-{nonce}'"
    return response


def message_page(title: str, message: str, *, status: int, tone: str = "info", **context: Any) -> HTMLResponse:
    """A one-message page (unknown link, refused request, ...): a clear Korean sentence and the status."""
    return page("message.html", status=status, title=title, message=message, tone=tone, **context)


# ---------------------------------------------------------------- forms

class FormTooBig(Exception):
    """The body passed MAX_FORM_BYTES: refused before it is all read."""


async def read_form(request: Request, *, max_bytes: int = MAX_FORM_BYTES, max_fields: int = 20) -> dict[str, str]:
    """An urlencoded form, first value per field; FormTooBig past max_bytes (read no further)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormTooBig
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=max_fields)
    except ValueError as exc:  # more fields than max_fields
        raise FormTooBig from exc
    return {key: values[0] for key, values in fields.items()}


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def foreign_origin(request: Request) -> bool:
    """True when the post names another site as its origin (a missing or "null" Origin is left to the token)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc != request.headers.get("host", "")


# ---------------------------------------------------------------- CSRF

_secret_cache: list[bytes] = []


def _secret() -> bytes:
    """WEB_SECRET when configured, else one random key created once in the store (every server shares it)."""
    if _secret_cache:
        return _secret_cache[0]
    from core.config import get_settings

    configured = get_settings().web_secret
    key = configured.encode() if configured else _stored_secret().encode()
    _secret_cache.append(key)
    return key


def _stored_secret() -> str:
    from sqlalchemy.exc import IntegrityError

    from core.db import session_scope
    from core.models import Setting

    with session_scope(engine()) as session:
        row = session.get(Setting, SECRET_KEY)
        if row is not None and isinstance(row.value, str):
            return row.value
    try:
        with session_scope(engine()) as session:
            session.add(Setting(key=SECRET_KEY, value=secrets.token_urlsafe(32)))
    except IntegrityError:
        pass  # another server created it first: read theirs
    with session_scope(engine()) as session:
        row = session.get(Setting, SECRET_KEY)
        assert row is not None
        return str(row.value)


def reset_secret_cache() -> None:
    """Tests switch databases: forget the cached key."""
    _secret_cache.clear()


def _valid_nonce(value: str | None) -> bool:
    return bool(value) and 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()  # type: ignore[union-attr]


def csrf_nonce(request: Request) -> str:
    """The browser's nonce (from its cookie), or a new one to set with set_csrf_cookie."""
    current = request.cookies.get(CSRF_COOKIE)
    return current if _valid_nonce(current) else secrets.token_urlsafe(24)  # type: ignore[return-value]


def csrf_token(nonce: str, purpose: str) -> str:
    """What the form carries: HMAC of the nonce and the form's purpose (e.g. "pay:<code>")."""
    return hmac.new(_secret(), f"{nonce}|{purpose}".encode(), hashlib.sha256).hexdigest()


def set_csrf_cookie(response: Response, request: Request, nonce: str) -> None:
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(CSRF_COOKIE, nonce, path="/", httponly=True, samesite="lax", secure=is_https(request))


def csrf_ok(request: Request, form: dict[str, str], purpose: str) -> bool:
    """The post carries the token of this browser's nonce for this purpose, from no foreign origin."""
    nonce = request.cookies.get(CSRF_COOKIE)
    submitted = form.get(CSRF_FIELD, "")
    if not _valid_nonce(nonce) or not submitted or foreign_origin(request):
        return False
    return hmac.compare_digest(submitted, csrf_token(nonce, purpose))  # type: ignore[arg-type]


def form_page(request: Request, template: str, *, purpose: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page with a form: renders `csrf_token` for it and sets the nonce cookie when the browser has none."""
    nonce = csrf_nonce(request)
    response = page(template, status=status, csrf_field=CSRF_FIELD, csrf_token=csrf_token(nonce, purpose), **context)
    set_csrf_cookie(response, request, nonce)
    return response
