"""/review in a real browser at phone size (390×844) with KakaoTalk's in-app user agent: big tap
targets, no horizontal scroll, a review with a photo sent and the photo shown back as an image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db import make_engine, upgrade
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, streamlit_server
from tests.reviews.helpers import image_bytes, paid_order, review_of

pytestmark = pytest.mark.browser
KAKAOTALK_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 KAKAOTALK 10.6.5"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    require_chromium()
    folder = tmp_path_factory.mktemp("review_browser")
    url = f"sqlite:///{folder / 'channeldesk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    shop = paid_order(engine)  # the server runs on the machine's clock, as this test does
    (folder / "photo.jpg").write_bytes(image_bytes("JPEG", size=(1200, 900)))
    engine.dispose()
    with streamlit_server(url) as base:
        yield base, shop.tokens[0], str(folder / "photo.jpg")


def test_a_customer_reviews_with_a_photo_from_a_phone(served: tuple[str, str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, token, photo = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844},
                user_agent=KAKAOTALK_UA,
                locale="ko-KR",
                timezone_id="Asia/Seoul",
                is_mobile=True,
                has_touch=True,
            )
            page = context.new_page()
            page.goto(f"{base}/review?t={token}")
            assert page.title().startswith("후기 남기기")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for element in page.locator("textarea, button, label.choice").all():
                box = element.bounding_box()
                assert box is not None and box["height"] >= 44, element.evaluate("e => e.outerHTML")
            page.get_by_label("4점 · 좋아요").check()
            page.get_by_label("후기").fill("향이 좋아요 <b>추천</b> ☕")
            page.set_input_files("#photo", photo)
            shot(page, "review_form_390")
            page.get_by_role("button", name="후기 보내기").click()
            page.get_by_text("소중한 후기 감사합니다").wait_for(timeout=15_000)
            image = page.locator("img.review-photo")
            image.wait_for(timeout=15_000)
            page.wait_for_function("() => document.querySelector('img.review-photo').naturalWidth > 0")
            box = image.bounding_box()
            assert box is not None and box["width"] <= 390  # fits the phone
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.get_by_label("후기").input_value() == "향이 좋아요 <b>추천</b> ☕"
            shot(page, "review_done_390")
        finally:
            browser.close()
    engine = make_engine(_url(served))
    review = review_of(engine, token)
    assert (review.rating, review.photo_type) == (4, "image/jpeg")


def _url(served: tuple[str, str, str]) -> str:
    return f"sqlite:///{Path(served[2]).parent / 'channeldesk.db'}"
