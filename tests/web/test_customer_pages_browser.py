"""/pay and /go in a real browser at phone size (390x844) with KakaoTalk's in-app user agent, served
by the real server (streamlit run server.py): every state reads as Korean, nothing of Streamlit loads,
no script is needed to pay, tap targets are >= 44 px, nothing scrolls sideways."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from core import campaigns, clock
from core.accounts.actor import Actor
from core.db import make_engine, session_scope, upgrade
from core.models import CampaignClick, Customer, Order, PaymentLink, Role
from core.payments.links import create_payment_link
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, streamlit_server
from tests.conftest import make_actors
from tests.web.helpers import KAKAOTALK_UA

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], str]]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("customer") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actors = make_actors(engine)
    codes: dict[str, str] = {}
    with Session(engine, expire_on_commit=False) as session:
        for name in ("pay", "expired", "cancel"):
            codes[name] = create_payment_link(session, actors["cs"], item_name="수분 크림 세트 <b>1+1</b>",
                                              amount=39_000, memo="오늘 주문하면 내일 도착").code
        session.execute(update(PaymentLink).where(PaymentLink.code == codes["expired"])
                        .values(expires_at=clock.now() - timedelta(hours=1)))
        session.commit()
    staff = Actor(None, "s", Role.STAFF)
    with session_scope(engine) as s:
        s.add(Customer(name="고객", phone="010-1000-0001", public_id="pub1",
                       ad_consent_at=clock.now() - timedelta(days=10),
                       night_ad_consent_at=clock.now() - timedelta(days=10)))
    with session_scope(engine) as s:
        cid = campaigns.create_campaign(s, staff, name="봄", bodies=["#{링크}"],
                                        rules={"include": [{"type": "channel_friend"}]},
                                        options={"link_url": "https://shop.example/spring"}).id
        campaigns.start(s, staff, cid)
    codes["campaign"] = str(cid)
    engine.dispose()
    with streamlit_server(url) as base:
        yield base, codes, url


@pytest.fixture
def phone() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=KAKAOTALK_UA,
                                      is_mobile=True, has_touch=True, device_scale_factor=3,
                                      locale="ko-KR", timezone_id="Asia/Seoul", java_script_enabled=False)
        try:
            yield context.new_page()
        finally:
            browser.close()


def _fits_the_phone(page) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing scrolls sideways


def test_paying_on_a_phone_without_javascript(shop, phone) -> None:  # type: ignore[no-untyped-def]
    base, codes, url = shop
    requests: list[str] = []
    phone.on("request", lambda r: requests.append(r.url))
    phone.goto(f"{base}/pay?link={codes['pay']}")
    assert phone.title() == "결제하기 · 채널데스크 샵"
    assert phone.locator("html").get_attribute("lang") == "ko"
    assert phone.get_by_text("수분 크림 세트 <b>1+1</b>").is_visible()  # text, not markup
    assert phone.get_by_text("카카오페이로 안전하게 결제").is_visible()
    assert phone.get_by_role("heading", name="교환·환불 안내").is_visible()
    assert phone.get_by_role("link", name="문의하기").first.get_attribute("href") == "/help"
    for control in (phone.get_by_label("이름"), phone.get_by_label("휴대폰 번호"),
                    phone.get_by_role("button", name="카카오페이로 39,000원 결제하기"),
                    phone.get_by_role("button", name="결제 그만두기"), phone.get_by_label("카드")):
        box = control.bounding_box()
        assert box is not None and box["height"] >= 22  # a radio is 22 px inside its 48 px label
    for button in phone.get_by_role("button").all():
        assert button.bounding_box()["height"] >= 44
    for choice in phone.locator("label.choice").all():
        assert choice.bounding_box()["height"] >= 44
    _fits_the_phone(phone)
    shot(phone, "customer_pay_390")
    assert all(u.startswith(base) and "/_stcore" not in u and "/static/" not in u for u in requests), requests
    assert len(requests) == 1  # the page is one document: no script, no font, no websocket

    phone.get_by_label("이름").fill("김민지")
    phone.get_by_label("휴대폰 번호").fill("０１０-１２３４-５６７８")  # full-width digits, as a Korean keyboard may type
    phone.get_by_label("카드").check()
    phone.get_by_role("button", name="카카오페이로 39,000원 결제하기").click()
    phone.get_by_role("heading", name="결제가 완료되었습니다").wait_for(timeout=30_000)
    assert phone.title() == "결제 완료 · 채널데스크 샵"
    shot(phone, "customer_pay_receipt_390")
    phone.reload()
    phone.get_by_role("heading", name="결제가 완료되었습니다").wait_for(timeout=30_000)
    phone.go_back()  # the back button leads to the paid link, never to a second payment
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("path", "heading", "text"),
    [
        ("/pay?link={expired}", "만료된 결제 링크입니다", "상담원에게 새 결제 링크를 요청해 주세요"),
        ("/pay?link=AAAAAAAAAAAA", "결제 링크를 찾을 수 없습니다", "없는 결제 링크입니다"),
        ("/pay?link=%3Cscript%3E", "결제 링크 오류", "결제 링크가 올바르지 않습니다."),
        ("/pay?link={cancel}&attempt=a1&result=cancel", "결제하기", "결제를 취소했습니다. 언제든 다시 결제할 수 있습니다."),
        ("/go?c={campaign}&u=pub1&next=https://evil.example", "허용되지 않는 링크", "다른 사이트로 보내는 링크는 열 수 없습니다."),
        ("/go?c=999999&u=pub1", "링크를 찾을 수 없습니다", "이 링크는 더 이상 유효하지 않습니다."),
    ],
    ids=["expired", "unknown", "malformed", "cancelled", "go-foreign", "go-unknown"],
)
def test_every_state_reads_as_korean_on_a_phone(shop, phone, path: str, heading: str, text: str) -> None:  # type: ignore[no-untyped-def]
    base, codes, _url = shop
    phone.goto(base + path.format(**codes))
    phone.get_by_role("heading", name=heading).first.wait_for(timeout=30_000)
    assert phone.get_by_text(text).first.is_visible()
    assert phone.locator("html").get_attribute("lang") == "ko" and "Streamlit" not in phone.content()
    _fits_the_phone(phone)
    shot(phone, f"customer_state_{path.split('?')[0].strip('/')}_{heading}")


def test_a_campaign_link_lands_on_the_campaigns_target(shop, phone) -> None:  # type: ignore[no-untyped-def]
    base, codes, url = shop
    from playwright.sync_api import Error

    answers: list[tuple[int, str | None]] = []
    followed: list[str] = []
    phone.on("response", lambda r: answers.append((r.status, r.headers.get("location"))))
    phone.on("request", lambda r: followed.append(r.url))
    with contextlib.suppress(Error):  # shop.example does not resolve here: the browser went there, which counts
        phone.goto(f"{base}/go?c={codes['campaign']}&u=pub1")
    assert answers[0] == (303, "https://shop.example/spring")
    assert followed[-1] == "https://shop.example/spring"
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(CampaignClick)).scalar_one() == 1
    engine.dispose()


def test_keep_alive_answers_are_not_held_back(shop) -> None:  # type: ignore[no-untyped-def]
    """A browser keeps its connection open between pages (KakaoTalk's too). Before web/sockets.py each
    answer with a body waited for the browser's delayed ACK of its headers (Nagle's algorithm: 40 ms
    here, a round trip more on a phone network): /pay took 48 ms on a kept-alive connection against
    5 ms on a new one. Any median at or above 40 ms is that stall; a page view itself costs a few ms."""
    import statistics
    import time

    import httpx

    base, codes, _ = shop
    times = []
    with httpx.Client(base_url=base, headers={"User-Agent": KAKAOTALK_UA}, timeout=30) as client:
        for path in [f"/pay?link={codes['expired']}", "/help"] * 8:
            started = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - started)
            assert answer.status_code in (200, 410) and len(answer.content) > 1_000
        assert client.get("/help").headers.get("connection", "keep-alive") != "close"
    assert statistics.median(times[2:]) < 0.035, [round(t * 1000, 1) for t in times]
