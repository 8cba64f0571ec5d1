"""/review, /review/photo, /reviews and /reviews/photo through server.py's routes (TestClient), on
SQLite and PostgreSQL, as a customer's phone.

Rules (issue 20): a link per order item; a clear Korean page with the right status for a malformed
(400), unknown (404) or expired (410) link; a review after 7 days read-only (GET 200, POST 409); CSRF
on the post (403); a 20 MB photo refused by its Content-Length and by a capped read (413); an SVG,
HTML or JPEG-on-HTML "image", 100,000 characters, stars 0/6/abc refused (400), nothing written; the
photo served only as the image its bytes prove, nosniff, inline; the showcase lists the visible,
answered reviews (escaped), 10 a page, with the average and count.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select
from starlette.testclient import TestClient

from core import clock
from core.accounts.actor import Actor
from core.db import read_scope, session_scope
from core.models import Inquiry, Review, ReviewPhoto
from core.reviews import queries, service
from tests.reviews.helpers import image_bytes, paid_order, review_of
from tests.web.helpers import csrf_of, customer_client


@pytest.fixture
def phone(engine: Engine) -> Iterator[TestClient]:
    with customer_client(engine) as client:
        yield client


def post(
    client: TestClient,
    token: str,
    *,
    rating: str = "5",
    text: str = "잘 쓰고 있어요",
    photo: tuple[str, bytes, str] | None = None,
    csrf: str | None = None,
    **extra: str,
):
    page = client.get(f"/review?t={token}")
    data = {"csrf": csrf if csrf is not None else csrf_of(page.text), "rating": rating, "text": text, **extra}
    files = {"photo": photo} if photo else {"photo": ("", b"", "application/octet-stream")}
    return client.post(f"/review?t={token}", data=data, files=files)


def submitted(engine: Engine) -> int:
    with read_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Review).where(Review.rating.is_not(None))).one()  # type: ignore[union-attr]


def test_the_form_is_korean_mobile_html_with_stars_text_photo(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    page = phone.get(f"/review?t={shop.tokens[0]}")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="ko">' in html and 'name="viewport"' in html and "<title>후기 남기기 · " in html
    assert html.count('type="radio" name="rating"') == 5 and 'enctype="multipart/form-data"' in html
    assert 'type="file"' in html and 'accept="image/jpeg,image/png,image/webp"' in html
    assert "원두 1kg" in html and "<script" not in html
    assert "드립백 후기 쓰기" in html and f"/review?t={shop.tokens[1]}" in html  # the order's other item
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [("", 400, "주소가 올바르지"), ("<script>", 400, "주소가 올바르지"), ("A" * 43, 404, "찾을 수 없는")],
)
def test_malformed_and_unknown_links(
    engine: Engine, phone: TestClient, token: str, status: int, words: str
) -> None:
    page = phone.get("/review", params={"t": token})
    assert page.status_code == status and words in page.text and "<script>" not in page.text


def test_an_expired_link_is_410_in_korean(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine, paid_at=clock.now() - timedelta(days=61))
    page = phone.get(f"/review?t={shop.tokens[0]}")
    assert page.status_code == 410 and "60일" in page.text and 'name="rating"' not in page.text


def test_submit_with_a_photo_thanks_and_serves_the_photo_safely(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    done = post(
        phone,
        shop.tokens[0],
        rating="4",
        text="향이 좋아요 <b>굿</b>",
        photo=("photo.jpg", image_bytes(exif_gps=True), "image/jpeg"),
    )
    assert done.status_code == 200 and "소중한 후기 감사합니다" in done.text
    assert "&lt;b&gt;굿&lt;/b&gt;" in done.text  # escaped in the form it shows back
    review = review_of(engine, shop.tokens[0])
    assert (review.rating, review.body, review.photo_type) == (4, "향이 좋아요 <b>굿</b>", "image/jpeg")
    photo = phone.get(f"/review/photo?t={shop.tokens[0]}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert (
        photo.headers["x-content-type-options"] == "nosniff"
        and photo.headers["content-disposition"] == "inline"
    )
    assert photo.content.startswith(b"\xff\xd8\xff") and b"Exif" not in photo.content
    assert phone.get("/review/photo?t=" + "A" * 43).status_code == 404


def test_a_review_can_be_edited_for_7_days_then_is_read_only(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    assert post(phone, shop.tokens[0], rating="3").status_code == 200
    form = phone.get(f"/review?t={shop.tokens[0]}").text
    assert "후기 고치기" in form and 'value="3" checked' in form
    page = phone.get(f"/review?t={shop.tokens[0]}")
    token_field = csrf_of(page.text)
    clock.set_now(clock.now() + timedelta(days=7, minutes=1))
    locked = phone.get(f"/review?t={shop.tokens[0]}")
    assert locked.status_code == 200 and "7일이 지난 후기는 고칠 수 없어요" in locked.text
    assert 'name="rating"' not in locked.text and "★★★☆☆" in locked.text
    again = post(phone, shop.tokens[0], rating="1", csrf=token_field)
    assert again.status_code == 409 and "고칠 수 없어요" in again.text
    assert review_of(engine, shop.tokens[0]).rating == 3


def test_a_20_mb_photo_is_refused_by_its_length_before_it_is_read(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    big = post(
        phone, shop.tokens[0], photo=("big.jpg", b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024), "image/jpeg")
    )
    assert big.status_code == 413 and "5MB 이하" in big.text
    assert submitted(engine) == 0


def test_a_body_without_a_length_is_cut_off_at_the_cap(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    page = phone.get(f"/review?t={shop.tokens[0]}")
    sent = {"bytes": 0}

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to refuse by
        for _ in range(20):
            sent["bytes"] += 1024 * 1024
            yield b"x" * (1024 * 1024)

    answer = phone.post(
        f"/review?t={shop.tokens[0]}",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b", "X-CSRF": csrf_of(page.text)},
    )
    assert answer.status_code == 413 and submitted(engine) == 0


SVG = ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml")
HTML = ("x.png", b"<html><script>alert(1)</script></html>", "image/png")
JPEG_ON_HTML = ("x.jpg", b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>", "image/jpeg")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"photo": SVG}, "JPG, PNG, WEBP"),
        ({"photo": HTML}, "JPG, PNG, WEBP"),
        ({"photo": JPEG_ON_HTML}, "JPG, PNG, WEBP"),
        ({"text": "가" * 100_000}, "2,000자 이내"),
        ({"rating": "0"}, "별점은 1점부터 5점"),
        ({"rating": "6"}, "별점은 1점부터 5점"),
        ({"rating": "abc"}, "별점은 1점부터 5점"),
        ({"rating": ""}, "별점은 1점부터 5점"),
    ],
)
def test_bad_input_is_a_korean_400_and_nothing_is_written(
    engine: Engine, phone: TestClient, fields: dict, words: str
) -> None:
    shop = paid_order(engine)
    answer = post(phone, shop.tokens[0], **fields)
    assert answer.status_code == 400 and words in answer.text
    assert 'name="rating"' in answer.text  # the form again, the customer's text kept
    assert submitted(engine) == 0
    with read_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(ReviewPhoto)).one() == 0


def test_a_post_without_the_csrf_token_is_refused(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    phone.get(f"/review?t={shop.tokens[0]}")
    assert post(phone, shop.tokens[0], csrf="").status_code == 403
    assert post(phone, shop.tokens[0], csrf="0" * 64).status_code == 403
    assert submitted(engine) == 0


def test_a_negative_review_through_the_page_opens_one_inquiry(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    post(phone, shop.tokens[0], rating="1", text="깨져서 왔어요")
    post(phone, shop.tokens[0], rating="2", text="깨져서 왔어요 (수정)")
    with read_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Inquiry)).one() == 1


def test_the_answer_shows_on_the_customers_page(
    engine: Engine, phone: TestClient, actors: dict[str, Actor]
) -> None:
    shop = paid_order(engine)
    post(phone, shop.tokens[0])
    rid = review_of(engine, shop.tokens[0]).id
    with session_scope(engine) as s:
        service.answer(s, actors["cs"], rid, "감사합니다 <고객님>", now=clock.now())  # type: ignore[arg-type]
    page = phone.get(f"/review?t={shop.tokens[0]}").text
    assert "판매자 답변" in page and "감사합니다 &lt;고객님&gt;" in page


def test_the_showcase_paginates_escapes_and_hides(
    engine: Engine, phone: TestClient, actors: dict[str, Actor]
) -> None:
    first = paid_order(engine, names=("원두 1kg",))
    pid = first.product_ids[0]
    shops = [first] + [paid_order(engine, names=("원두 1kg",), product_ids=[pid]) for _ in range(11)]
    for n, shop in enumerate(shops):
        with session_scope(engine) as s:
            rid = service.submit(
                s,
                token=shop.tokens[0],
                rating=5 if n % 2 else 4,
                text=f"후기 {n} <script>alert({n})</script>",
                photo=image_bytes() if n == 0 else None,
                now=clock.now() - timedelta(minutes=100 - n),
            ).review_id
            service.answer(s, actors["cs"], rid, f"답변 {n}", now=clock.now())
            if n == 11:
                service.set_hidden(s, actors["cs"], rid, True, "욕설", now=clock.now())
    one = phone.get(f"/reviews?product={pid}")
    assert one.status_code == 200 and "<script>alert" not in one.text and "&lt;script&gt;" in one.text
    assert "4.5점" in one.text and "후기 11개" in one.text  # 11 visible (one hidden): 6×5 + 5×4 = 50 / 11
    assert one.text.count('class="card review"') == 10 and "1 / 2 페이지" in one.text
    assert "후기 10 " in one.text and "후기 11 " not in one.text  # newest first, the hidden one nowhere
    two = phone.get(f"/reviews?product={pid}&page=2")
    assert two.text.count('class="card review"') == 1 and "후기 0 " in two.text
    assert "/reviews/photo?id=" in two.text
    with read_scope(engine) as s:
        first_id = s.exec(select(Review.id).where(Review.token == shops[0].tokens[0])).one()
    photo = phone.get(f"/reviews/photo?id={first_id}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("product", ["", "abc", "99999", "-1", "1e3", "<script>"])
def test_an_unknown_product_showcase_is_404_in_korean(
    engine: Engine, phone: TestClient, product: str
) -> None:
    page = phone.get("/reviews", params={"product": product})
    assert page.status_code == 404 and "상품을 찾을 수 없어요" in page.text


def test_an_unanswered_reviews_photo_is_not_public(engine: Engine, phone: TestClient) -> None:
    shop = paid_order(engine)
    post(phone, shop.tokens[0], photo=("p.png", image_bytes(), "image/png"))
    rid = review_of(engine, shop.tokens[0]).id
    assert phone.get(f"/reviews/photo?id={rid}").status_code == 404


def test_the_snippet_is_plain_escaped_html(engine: Engine, actors: dict[str, Actor]) -> None:
    shop = paid_order(engine, names=('원두 "<img src=x onerror=alert(1)>"',))
    with session_scope(engine) as s:
        rid = service.submit(
            s, token=shop.tokens[0], rating=5, text="<script>alert(1)</script>", now=clock.now()
        ).review_id
        service.answer(s, actors["cs"], rid, "감사합니다", now=clock.now())
    with read_scope(engine) as s:
        view = queries.showcase(s, shop.product_ids[0])
    html = queries.snippet(view, 'https://shop.example/reviews?product=1&x="><script>')  # type: ignore[arg-type]
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "5.0점 (후기 1개)" in html
    assert 'href="https://shop.example/reviews?product=1&amp;x=&quot;&gt;&lt;script&gt;"' in html


def test_no_public_review_path_is_behind_the_staff_login() -> None:
    import server

    assert {"/review", "/review/photo", "/reviews", "/reviews/photo"} <= server.CUSTOMER_PATHS
    assert not server.CUSTOMER_PATHS & server.STAFF_PATHS
