"""/review?t=…: the customer's review of one order item (issue 20, seed 004), plain HTML, no script.

GET shows the form (stars, text, optional photo), filled in while the review may still be edited
(7 days), read-only after; the shop's answer under it; the customer's other items still to review
with their own links (a request names every due order, the message links to one item). A link that
is malformed (400), unknown (404) or expired (60 days, 410) gets a clear Korean page.

POST (multipart, because of the photo), in this order: refuse a body over MAX_BODY_BYTES by its
Content-Length before reading, and cap the read (413); refuse a missing or foreign CSRF token (403);
then core.reviews.service.submit checks stars, text and photo before writing anything (400 with the
form kept), a locked review is 409. Photos are served only by /review/photo and /reviews/photo, as
the image type their bytes prove, never as a page.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core import clock
from core.db import read_scope, session_scope
from core.errors import ValidationFailed
from core.reviews import labels, queries, rules, service
from web import hooks
from web.customer import render
from web.customer.render import csrf_ok, form_page, message_page, secure_headers

PATH = "/review"
PHOTO_PATH = "/review/photo"
TITLE = "후기 남기기"
MAX_BODY_BYTES = rules.MAX_PHOTO_BYTES + 64 * 1024  # the photo plus 2,000 characters of text and the fields
STAR_CHOICES = [(n, labels.stars(n), labels.STAR_LABELS[n]) for n in reversed(rules.STARS)]


def _purpose(token: str) -> str:
    return f"review:{token}"


def _link(token: str) -> queries.ReviewLink:
    with read_scope(render.engine()) as session:
        return queries.link(session, token, clock.now())


def _refused(state: rules.TokenState) -> HTMLResponse:
    tone = "warn" if state == rules.TokenState.EXPIRED else "error"
    return message_page(TITLE, labels.LINK_REFUSALS[state], status=labels.STATUS_OF_REFUSAL[state], tone=tone)


def _form(
    request: Request,
    token: str,
    view: queries.ReviewLink,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
    done: bool = False,
) -> HTMLResponse:
    shown = {"rating": view.rating, "text": view.body, **(values or {})}
    locked = view.state == rules.TokenState.LOCKED
    return form_page(
        request,
        "review.html",
        purpose=_purpose(token),
        status=status,
        title=TITLE,
        view=view,
        token=token,
        values=shown,
        error=error,
        done=done,
        locked=locked,
        stars=STAR_CHOICES,
        max_text=rules.MAX_TEXT,
        max_photo_mb=rules.MAX_PHOTO_BYTES // (1024 * 1024),
        locked_notice=labels.LINK_REFUSALS[rules.TokenState.LOCKED],
        editable_until=clock.format_kst(view.editable_until) if view.editable_until else "",
    )


def _submit(token: str, values: dict[str, Any], photo: bytes | None, remove_photo: bool) -> service.Submitted:
    with session_scope(render.engine()) as session:
        return service.submit(
            session,
            token=token,
            rating=values["rating"],
            text=values["text"],
            photo=photo,
            remove_photo=remove_photo,
            now=clock.now(),
        )


async def review_page(request: Request) -> Response:
    token = request.query_params.get("t", "")[:100]
    view = await run_in_threadpool(_link, token)
    if view.state in (rules.TokenState.MALFORMED, rules.TokenState.UNKNOWN, rules.TokenState.EXPIRED):
        return _refused(view.state)
    if request.method != "POST":
        return _form(request, token, view)
    try:
        body = await hooks.read_body(request, MAX_BODY_BYTES)
    except hooks.BodyTooLarge:
        return message_page(
            TITLE,
            rules.PHOTO_TOO_BIG,
            status=413,
            tone="error",
            back_url=f"{PATH}?t={token}",
            back_label="후기 쓰기로 돌아가기",
        )
    request._body = body  # the capped body: form() parses it instead of reading the stream again
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=MAX_BODY_BYTES)
    except Exception:  # noqa: BLE001 - a malformed multipart body, whatever python-multipart raises
        return _form(request, token, view, error="보낸 내용을 읽을 수 없어요. 다시 보내 주세요.", status=400)
    values = {"rating": str(form.get("rating") or ""), "text": str(form.get("text") or "")}
    if not csrf_ok(request, {"csrf": str(form.get("csrf") or "")}, _purpose(token)):
        return _form(
            request,
            token,
            view,
            values=values,
            status=403,
            error="페이지가 오래되었어요. 내용을 확인하고 다시 보내 주세요.",
        )
    upload = form.get("photo")
    photo = await upload.read() if isinstance(upload, UploadFile) else None
    try:
        await run_in_threadpool(_submit, token, values, photo or None, form.get("remove_photo") == "1")
    except service.LinkRefused as exc:
        if exc.state == rules.TokenState.LOCKED:
            return _form(request, token, view, status=409, error=str(exc))
        return _refused(exc.state)
    except ValidationFailed as exc:
        return _form(request, token, view, values=values, error=str(exc), status=400)
    return _form(request, token, await run_in_threadpool(_link, token), done=True)


def photo_response(found: tuple[bytes, str] | None) -> Response:
    """A stored photo as the image type its bytes proved, never sniffed, never a page."""
    if found is None:
        return message_page("사진", "사진을 찾을 수 없어요.", status=404, tone="error")
    data, content_type = found
    if content_type not in rules.PHOTO_TYPES or rules.photo_type(data) != content_type:
        return message_page("사진", "사진을 찾을 수 없어요.", status=404, tone="error")
    response = Response(data, media_type=content_type)
    secure_headers(response)
    response.headers["Content-Disposition"] = "inline"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _photo_of_token(token: str) -> tuple[bytes, str] | None:
    with read_scope(render.engine()) as session:
        return queries.photo_by_token(session, token)


async def review_photo(request: Request) -> Response:
    return photo_response(await run_in_threadpool(_photo_of_token, request.query_params.get("t", "")[:100]))
