"""/help in a real browser at phone size (390×844) with KakaoTalk's in-app user agent: labels, tap
targets ≥ 44 px, no horizontal scroll, the promise after sending, an error kept next to the text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db import make_engine, upgrade
from core.models import Customer, Order
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, streamlit_server

pytestmark = pytest.mark.browser
KAKAOTALK_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Mobile/15E148 KAKAOTALK 10.6.5")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("help_browser") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s:
        kim = Customer(name="김비밀", phone="010-2222-3333", mobile="01022223333")
        s.add(kim)
        s.flush()
        s.add(Order(order_number="20261101-0042", customer_id=kim.id, total_amount=123_400))
        s.commit()
    engine.dispose()
    with streamlit_server(url) as base:
        yield base


@pytest.fixture
def phone_page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=KAKAOTALK_UA,
                                          locale="ko-KR", timezone_id="Asia/Seoul", is_mobile=True, has_touch=True)
            yield context.new_page()
        finally:
            browser.close()


def test_a_customer_sends_an_inquiry_from_a_phone(server: str, phone_page) -> None:  # type: ignore[no-untyped-def]
    page = phone_page
    page.goto(f"{server}/help")
    assert page.title().startswith("문의하기")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for element in page.locator("input[type=tel], input[type=text], textarea, button, label.choice").all():
        box = element.bounding_box()
        assert box is not None and box["height"] >= 44, element.evaluate("e => e.outerHTML")
    page.get_by_label("휴대폰 번호").fill("０１０-２２２２-３３３３")
    page.get_by_label("주문번호").fill("20261101-0099")
    page.get_by_label("결제 오류").check()
    page.get_by_label("문의 내용").fill("<b>결제</b>가 안 돼요 😢")
    page.get_by_role("button", name="문의 보내기").click()
    page.get_by_text("주문번호와 휴대폰 번호가 맞는 주문을 찾지 못했어요").wait_for(timeout=15_000)
    assert page.get_by_label("문의 내용").input_value() == "<b>결제</b>가 안 돼요 😢"  # kept, as text
    assert "김비밀" not in page.content()
    shot(page, "help_not_proven_390")
    page.get_by_label("주문번호").fill("20261101-0042")
    page.get_by_role("button", name="문의 보내기").click()
    page.get_by_text("문의가 접수되었어요").wait_for(timeout=15_000)
    assert "결제 오류 문의가 접수되었습니다." in page.content()
    shot(page, "help_done_390")
