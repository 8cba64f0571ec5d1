"""/reviews?product=…: a product's public reviews (issue 20): the visible, answered reviews with the
shop's answers, the average and the count, 10 a page; fit for the channel profile's link. Plain HTML,
every value escaped (Jinja2 autoescape), no script. /reviews/photo?id=… serves a listed review's photo."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from core import clock
from core.db import read_scope
from core.reviews import labels, queries
from web.customer import render
from web.customer.render import message_page, page
from web.customer.review import photo_response

PATH = "/reviews"
PHOTO_PATH = "/reviews/photo"
TITLE = "고객 후기"


def _number(raw: str | None, default: int | None = None) -> int | None:
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else default


def _showcase(product_id: int, page_number: int) -> queries.Showcase | None:
    with read_scope(render.engine()) as session:
        return queries.showcase(session, product_id, page_number)


async def showcase(request: Request) -> Response:
    product_id = _number(request.query_params.get("product"))
    if product_id is None:
        return message_page(TITLE, "상품을 찾을 수 없어요. 주소를 확인해 주세요.", status=404, tone="error")
    view = await run_in_threadpool(_showcase, product_id, _number(request.query_params.get("page"), 1) or 1)
    if view is None:
        return message_page(TITLE, "상품을 찾을 수 없어요. 주소를 확인해 주세요.", status=404, tone="error")
    return page(
        "reviews.html",
        title=f"{view.product_name} {TITLE}",
        view=view,
        stars=labels.stars,
        when=lambda at: clock.format_kst(at)[:10],
        path=PATH,
    )


def _public_photo(review_id: int) -> tuple[bytes, str] | None:
    with read_scope(render.engine()) as session:
        return queries.public_photo(session, review_id)


async def showcase_photo(request: Request) -> Response:
    review_id = _number(request.query_params.get("id"))
    return photo_response(None if review_id is None else await run_in_threadpool(_public_photo, review_id))
