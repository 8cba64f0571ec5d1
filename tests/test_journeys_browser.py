"""Whole journeys in a real browser, as a new staff member would do them, with a screenshot per step.

One Streamlit server for the module, on a demo shop (core.demo.seed) plus one inquiry whose customer has a
refundable sandbox payment, so the cs journey can refund through the real gateway code path.
Each journey checks what a person sees AND what the store holds afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.accounts.screens import PUBLIC_SCREENS, SCREENS
from core.db import make_engine, upgrade
from core.demo.seed import seed_demo
from core.inquiries import queue as inquiry_queue
from core.inquiries import service as inquiries
from core.models import (
    AuditLog,
    Campaign,
    Customer,
    Inquiry,
    Message,
    Payment,
    Refund,
    Role,
    Segment,
    StaffUser,
)
from core.payments.gateways.sandbox import SandboxGateway
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, streamlit_server
from tests.browser import login as browser_login
from tests.payments.helpers import paid_order
from ui.dates import day_text

pytestmark = pytest.mark.browser

PASSWORD = "channeldesk"  # the demo logins core.demo.seed creates: owner, cs, staff
REFUND = 12_000
PAID = 39_000


@dataclass(frozen=True)
class Shop:
    url: str
    engine: Engine
    urgent_inquiry_id: int
    payment_id: int


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("journeys") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    seed_demo(engine, customers=80, orders=300, seed=9)
    payment = paid_order(engine, SandboxGateway(engine), amount=PAID, number="J-0001", name="여정고객",
                         phone="01055551234")
    with Session(engine) as session:
        cs = session.exec(select(StaffUser).where(StaffUser.username == "cs")).scalars().one()
        actor = Actor(cs.id, cs.display_name, Role.CS)
        # Opened 30 days ago and never answered: the most breached, so the top of the queue.
        with clock.frozen(clock.now() - timedelta(days=30)):
            inquiry = inquiries.create_inquiry(
                session, actor, customer_id=payment.customer_id, body="결제가 두 번 된 것 같아요. 확인 부탁드립니다",
                payment_id=payment.id,
            )
        session.commit()
        rows, _total = inquiry_queue.queue(session, clock.now(), limit=5)
        assert rows[0].id == inquiry.id, "the journey inquiry must be the most urgent one"
        urgent_id = inquiry.id
    with streamlit_server(url) as base_url:
        yield Shop(base_url, engine, urgent_id, payment.id)
    engine.dispose()


@pytest.fixture(scope="module")
def browser(shop: Shop) -> Iterator[object]:
    """One chromium for the module; each journey gets its own context (cookies, storage, websocket)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@contextmanager
def _new_page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ko-KR", timezone_id="Asia/Seoul")
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def _journey(browser, name: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh context; on a failure the screen is saved as {name}_FAILED.png before it closes."""
    with _new_page(browser) as page:
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        try:
            yield page
        except BaseException:
            shot(page, f"{name}_FAILED")
            (ARTIFACTS / f"{name}_FAILED.txt").write_text("\n".join(problems))
            raise


def _settled(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has finished the rerun a click started."""
    page.wait_for_timeout(200)  # let the click reach the server before looking at the status widget
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=30_000)
    page.locator("[data-stale='true']").first.wait_for(state="detached", timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def _open(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    _settled(page)


def _flash(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text(text, exact=False).first.wait_for(timeout=30_000)


def _audit_actions(engine: Engine, since_id: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(select(AuditLog.action).where(AuditLog.id > since_id).order_by(AuditLog.id)).scalars()
        )


def _last_audit_id(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.coalesce(func.max(AuditLog.id), 0))).scalars().one()


@pytest.mark.parametrize("screen", [s.url_path for s in SCREENS] + [""])
def test_visitor_gets_the_login_on_every_page_url(shop: Shop, browser, screen: str) -> None:  # type: ignore[no-untyped-def]
    """First in the module: the first sessions of a fresh server (a pages/ folder once broke exactly those)."""
    with _journey(browser, "journey_visitor") as page:
        page.goto(f"{shop.url}/{screen}")
        page.get_by_text("ChannelDesk 로그인").wait_for(timeout=30_000)
        _settled(page)
        assert "/auth/login" in page.url  # the staff URL went to the login (server.py) before Streamlit loaded
        main = page.locator("body").inner_text()
        for title in ("매출", "캠페인", "정기결제"):
            assert page.get_by_role("heading", name=title).count() == 0
        assert "원" not in re.sub(r"원두|회원", "", main), main  # no amount of any kind
        assert page.get_by_test_id("stSidebarNav").count() == 0
        assert page.get_by_role("button", name="로그아웃").count() == 0
        shot(page, f"journey_visitor_{screen or 'root'}")


def test_cs_claims_replies_refunds_part_and_resolves(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    before = _last_audit_id(shop.engine)
    with _journey(browser, "journey_cs") as page:
        browser_login(page, shop.url, "cs", PASSWORD)
        shot(page, "journey_cs_01_logged_in")
        _open(page, "문의")
        # The queue is sorted by time left: the pre-selected inquiry is the most urgent one.
        page.get_by_role("heading", name=f"{shop.urgent_inquiry_id}번 문의").first.wait_for(timeout=30_000)
        shot(page, "journey_cs_02_queue_most_urgent")

        page.get_by_role("button", name="담당하기").click()
        _flash(page, "담당자로 지정되었습니다")
        _settled(page)
        shot(page, "journey_cs_03_claimed")

        page.get_by_label("고객에게 답변").fill("확인해 보니 한 건은 부분 환불해 드리겠습니다.")
        page.get_by_role("button", name="답변 보내기").click()
        _flash(page, "답변을 기록하고 발송 대기열에 넣었습니다")
        _settled(page)
        shot(page, "journey_cs_04_replied")

        page.get_by_text("환불 (전액·부분)").click()
        amount = page.get_by_label("환불 금액 (원)")
        amount.fill(str(REFUND))
        amount.press("Enter")
        _settled(page)
        page.get_by_label("환불 사유").fill("중복 결제 일부")
        page.get_by_label("환불 사유").press("Enter")
        _settled(page)
        refund_button = page.get_by_role("button", name="환불하기")
        assert refund_button.is_disabled(), "refund must wait for the confirmation"
        page.get_by_text(f"{REFUND:,}원 환불을 확인합니다").click()
        _settled(page)
        shot(page, "journey_cs_05_refund_confirmation")
        refund_button.click()
        _flash(page, f"{REFUND:,}원 환불을 요청했습니다")
        _settled(page)
        shot(page, "journey_cs_06_refunded")

        page.get_by_role("button", name="해결", exact=True).click()
        _flash(page, "해결 처리했습니다")
        _settled(page)
        shot(page, "journey_cs_07_resolved")

    with Session(shop.engine) as session:
        inquiry = session.get(Inquiry, shop.urgent_inquiry_id)
        payment = session.get(Payment, shop.payment_id)
        refunds = session.exec(select(Refund).where(Refund.payment_id == shop.payment_id)).scalars().all()
        assert inquiry.status == "resolved" and inquiry.first_response_at is not None
        assert inquiry.assignee_id is not None
        assert payment.refunded_amount == REFUND
        assert [(r.amount, r.status) for r in refunds] == [(REFUND, "succeeded")]
        replies = session.exec(select(Message).where(Message.customer_id == inquiry.customer_id)).scalars().all()
        assert any("부분 환불해 드리겠습니다" in (m.text or "") for m in replies)
    actions = _audit_actions(shop.engine, before)
    for action in ("inquiry.assign", "inquiry.reply", "inquiry.refund", "inquiry.resolve"):
        assert action in actions, actions
    assert any(a.startswith("refund.") for a in actions), actions  # the money movement itself


def test_owner_reads_sales_and_changes_the_range(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    with _journey(browser, "journey_owner") as page:
        browser_login(page, shop.url, "owner", PASSWORD)
        _open(page, "매출")
        page.get_by_text("순매출").first.wait_for(timeout=30_000)
        today = clock.today_kst()
        default = f"{(today - timedelta(days=29)).isoformat()} ~ {today.isoformat()}"
        page.get_by_text(default, exact=False).first.wait_for(timeout=30_000)
        shot(page, "journey_owner_01_sales_30_days")

        first, last = today - timedelta(days=89), today - timedelta(days=60)
        # 직접 선택 offers two Korean lists of days (시작일, 종료일): typed to filter, as on a phone.
        page.get_by_test_id("stSelectbox").filter(has_text="기간").first.click()
        page.get_by_role("option", name="직접 선택").click()
        _settled(page)
        for label, day in (("시작일", first), ("종료일", last)):
            page.get_by_label(label).first.click()
            page.keyboard.type(day_text(day))
            page.get_by_role("option", name=day_text(day)).first.click()
            _settled(page)
        page.get_by_text(f"{first.isoformat()} ~ {last.isoformat()}", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_test_id("stMetric").count() >= 6
        shot(page, "journey_owner_02_sales_other_range")


def test_staff_builds_a_segment_runs_a_smart_test_and_sends_the_winner(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    before = _last_audit_id(shop.engine)
    with _journey(browser, "journey_staff") as page:
        browser_login(page, shop.url, "staff", PASSWORD)
        _open(page, "캠페인")
        # Segment: channel friends.
        page.get_by_test_id("stSelectbox").filter(has_text="조건").first.click()
        page.get_by_role("option", name="채널 친구").click()
        _settled(page)
        page.get_by_role("button", name="포함 조건에 추가").click()
        _settled(page)
        page.get_by_text("조건에 맞는 고객").first.wait_for(timeout=30_000)
        page.get_by_label("세그먼트 이름").fill("여정 채널 친구")
        page.get_by_label("세그먼트 이름").press("Enter")
        _settled(page)
        page.get_by_role("button", name="세그먼트 저장").click()
        _flash(page, "저장했습니다: 여정 채널 친구")
        shot(page, "journey_staff_01_segment")

        # Compose two variants: a smart test on a sample, the winner to the rest.
        page.get_by_role("tab", name="메시지 작성").click()
        page.get_by_label("캠페인 이름").fill("여정 스마트 테스트")
        page.get_by_label("캠페인 이름").press("Enter")
        _settled(page)
        count = page.get_by_label("메시지 안 개수 (2개 이상이면 스마트 테스트)")
        count.fill("2")
        count.press("Enter")
        _settled(page)
        page.get_by_label("A안").fill("#{이름}님, 원두 10% 할인! #{링크}")
        page.get_by_label("B안").fill("#{이름}님께만 드리는 원두 쿠폰 #{링크}")
        page.get_by_label("링크 주소 (#{링크} 자리에 클릭 기록 링크가 들어갑니다)").fill("https://shop.example/sale")
        page.get_by_label("링크 주소 (#{링크} 자리에 클릭 기록 링크가 들어갑니다)").press("Enter")
        _settled(page)
        shot(page, "journey_staff_02_compose")
        page.get_by_role("button", name="캠페인 만들기").click()
        _flash(page, "을(를) 만들었습니다")
        _settled(page)

        page.get_by_role("tab", name="발송").click()
        page.get_by_text("발송 확인").first.wait_for(timeout=30_000)
        page.get_by_text("명에게 지금 보내고", exact=False).first.wait_for(timeout=30_000)
        page.get_by_test_id("stCheckbox").filter(has_text="비용으로 보냅니다").click()
        _settled(page)
        shot(page, "journey_staff_03_confirm_test")
        page.get_by_role("button", name="지금 보내기").click()
        _flash(page, "발송 대기열에")
        _settled(page)
        shot(page, "journey_staff_04_test_sent")

        # The campaign is now testing: the page offers the winner to the rest.
        page.get_by_text("테스트 결과").first.wait_for(timeout=30_000)
        # Seconds into the test and with no clicks yet, the page asks first (the guard states the
        # numbers), and a send to more than one person names its count and cost.
        for confirm in ("그래도 지금 승자를 정해 보냅니다", "나머지 "):
            box = page.get_by_test_id("stCheckbox").filter(has_text=confirm).filter(visible=True)
            if box.count():
                box.first.locator("label").click()
                _settled(page)
        page.get_by_role("button", name="승자를 나머지 모두에게 보내기").click()
        _flash(page, "명에게 보내도록 대기열에 등록했습니다")
        _settled(page)
        shot(page, "journey_staff_05_winner_sent")

    with Session(shop.engine) as session:
        segment = session.exec(select(Segment).where(Segment.name == "여정 채널 친구")).scalars().one()
        assert segment.rules["include"][0]["type"] == "channel_friend"
        campaign = session.exec(select(Campaign).where(Campaign.name == "여정 스마트 테스트")).scalars().one()
        assert len(campaign.variants) == 2 and campaign.winner_variant in ("A", "B")
        assert campaign.status not in ("draft", "testing"), campaign.status
        sent = session.exec(select(func.count()).select_from(Message).where(Message.campaign_id == campaign.id))
        assert sent.scalars().one() > 0
    actions = _audit_actions(shop.engine, before)
    for action in ("segment.save", "campaign.create", "campaign.start", "campaign.send_winner"):
        assert action in actions, actions


def test_cs_is_refused_the_owner_pages(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    owner_only = [s for s in SCREENS if Role.CS not in s.roles]
    assert {s.title for s in owner_only} >= {"매출", "설정"}
    with _journey(browser, "journey_cs_refused") as page:
        browser_login(page, shop.url, "cs", PASSWORD)
        nav = page.get_by_test_id("stSidebarNav")
        for screen in owner_only:
            assert nav.get_by_role("link", name=screen.title).count() == 0
        # Typing the URL: the session cookie keeps cs logged in (issue 16), and the owner page's URL
        # shows "접근 권한이 없습니다", never the page.
        for screen in owner_only:
            page.goto(f"{shop.url}/{screen.url_path}")
            page.get_by_role("button", name="로그아웃").wait_for(timeout=30_000)
            assert page.get_by_role("dialog").count() == 0  # no "Page not found"
            _settled(page)
            assert page.get_by_role("heading", name=screen.title).count() == 0, screen.title
            page.get_by_role("heading", name="접근 권한이 없습니다").wait_for(timeout=30_000)
            shot(page, f"journey_cs_refused_{screen.url_path}")
    assert not PUBLIC_SCREENS  # customer pages are plain HTML routes (web/customer), tested in tests/web


def test_customer_names_are_text_in_the_browser(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    """An XSS payload as a customer name and inquiry text: no script runs, no element is injected."""
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b id=inj>굵게</b>'
    # Captions read markdown: a name must not become a tracking image or a link either.
    markdown = "![t](http://x.test/track.png)[링크](http://x.test/phish)"
    with Session(shop.engine) as session:
        customer = Customer(name=markdown, phone="01077778888")
        session.add(customer)
        session.flush()
        cs = session.exec(select(StaffUser).where(StaffUser.username == "cs")).scalars().one()
        hostile = inquiries.create_inquiry(session, Actor(cs.id, cs.display_name, Role.CS), customer_id=customer.id,
                                           body=payload, subject=payload)
        session.commit()
        hostile_id = hostile.id
    with _journey(browser, "journey_xss") as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        browser_login(page, shop.url, "owner", PASSWORD)
        for title in ("문의", "주문", "메시지"):
            _open(page, title)
            if title == "문의":  # open the hostile inquiry: its subject and body must show, as text
                number = page.get_by_label("번호로 열기 (해결된 문의 포함)")
                number.fill(str(hostile_id))
                number.press("Enter")
                _settled(page)
                shown = page.get_by_text("<b id=inj>굵게</b>", exact=False).last
                shown.wait_for(timeout=30_000)
                shown.scroll_into_view_if_needed()
            shot(page, f"journey_xss_{title}")
            assert page.evaluate("window.__pwned") is None, title
            assert page.locator("#inj").count() == 0, title
            assert page.get_by_test_id("stMain").locator("img[src='x']").count() == 0, title
            assert page.get_by_test_id("stMain").locator("img[src*='track.png']").count() == 0, title
            # A bare URL may be auto-linked, but only to exactly what is shown: no disguised link text.
            for link in page.get_by_test_id("stMain").locator("a[href*='x.test']").all():
                assert link.inner_text().strip() == unquote(link.get_attribute("href") or ""), title
        assert dialogs == []
