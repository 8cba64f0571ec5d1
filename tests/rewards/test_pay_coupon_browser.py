"""A coupon typed on /pay in a real browser at phone size (390x844, KakaoTalk's user agent), served by
the real server: the discount is taken off, the receipt shows it, and 추천하기 copies the buyer's own
link (the Web Share API is absent in headless chromium: the copy fallback runs, under the page's CSP)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from core import clock
from core.db import make_engine, upgrade
from core.models import Customer, Order, Product
from core.payments.links import create_payment_link
from core.rewards import service
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, streamlit_server
from tests.conftest import make_actors
from tests.web.helpers import KAKAOTALK_UA

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, str]]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("rewards") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actors = make_actors(engine)
    with Session(engine, expire_on_commit=False) as session:
        buyer = Customer(name="김민지", phone="010-1234-5678")
        session.add(buyer)
        session.commit()
        code = service.issue_coupon(
            session,
            actors["owner"],
            customer_id=buyer.id,
            amount=3_000,
            valid_days=30,  # type: ignore[arg-type]
            now=clock.now(),
        ).code
        session.commit()
        product = Product(name="수분 크림 세트", price=39_000)
        session.add(product)
        session.commit()
        link = create_payment_link(session, actors["cs"], product_id=product.id).code
    engine.dispose()
    with streamlit_server(url) as base:
        yield base, link, code, url


@pytest.fixture
def phone() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            user_agent=KAKAOTALK_UA,
            is_mobile=True,
            has_touch=True,
            device_scale_factor=3,
            locale="ko-KR",
            timezone_id="Asia/Seoul",
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        try:
            yield context.new_page()
        finally:
            browser.close()


def test_a_coupon_typed_on_a_phone_is_taken_off_and_추천하기_copies_the_link(shop, phone) -> None:  # type: ignore[no-untyped-def]
    base, link, code, url = shop
    blocked: list[str] = []
    phone.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    phone.goto(f"{base}/pay?link={link}")
    coupon = phone.get_by_label("쿠폰 번호 (선택)")
    assert coupon.is_visible() and coupon.bounding_box()["height"] >= 44
    phone.get_by_label("이름").fill("김민지")
    phone.get_by_label("휴대폰 번호").fill("+82 10 1234 5678")  # the coupon's owner, in another format
    coupon.fill(code.lower().replace("-", " "))  # typed loosely on a phone keyboard
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "rewards_pay_coupon_390")
    phone.get_by_role("button", name="카카오페이로 39,000원 결제하기").click()
    phone.get_by_role("heading", name="결제가 완료되었습니다").wait_for(timeout=30_000)
    assert (
        phone.locator("#coupon-line").is_visible()
        and "-3,000원" in phone.locator("#coupon-line").inner_text()
    )
    assert phone.locator("#total").inner_text() == "36,000원"
    share = phone.get_by_role("button", name="추천하기")
    assert share.is_visible() and share.bounding_box()["height"] >= 44
    shared = phone.locator("#share-url").input_value()
    assert re.search(r"/r/[2-9A-Z]{8}\?p=\d+$", shared)  # the buyer's own link to what they bought
    share.click()
    phone.get_by_text("링크를 복사했습니다").wait_for(timeout=10_000)
    assert phone.evaluate("navigator.clipboard.readText()") == shared
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "rewards_pay_receipt_share_390")
    assert blocked == []  # the share script ran under the page's CSP, nothing was blocked
    engine = make_engine(url)
    with Session(engine) as session:
        order = session.scalars(select(Order)).one()
        assert (order.total_amount, order.discount_amount) == (36_000, 3_000)
    engine.dispose()
