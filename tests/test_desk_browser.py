"""The 문의 desk in a real browser on a phone (390x844): a tap on a card opens that inquiry, and a new
inquiry written to the store while the page is open shows as a toast and a count in the tab title."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from core.accounts.actor import Actor
from core.db import make_engine, upgrade
from core.inquiries import service as inquiries
from core.models import Role, StaffUser
from tests.browser import browser_page, login, require_chromium, shot, streamlit_server
from tests.conftest import make_actors
from tests.inquiry_helpers import make_customer

pytestmark = pytest.mark.browser

PHONE = (390, 844)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("browser_desk") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actors = make_actors(engine)
    with Session(engine) as session:
        customer = make_customer(session, "<b>민지</b>😡")
        for body in ("결제 오류가 났어요", "영수증 보내 주세요", "환불해 주세요"):
            inquiries.create_inquiry(session, actors["cs"], customer_id=customer.id, body=body)
        session.commit()
    engine.dispose()
    with streamlit_server(url) as base_url:
        yield base_url, url


def test_a_tap_on_a_card_opens_it_and_a_new_inquiry_signals(store: tuple[str, str]) -> None:
    base_url, url = store
    with browser_page(*PHONE) as page:
        login(page, base_url, "cs1", "password-123")
        # 문의 is the first screen of a cs login.
        page.get_by_role("heading", name="문의", exact=True).wait_for(timeout=30_000)
        cards = page.locator(".st-key-inq_narrow")
        cards.wait_for(timeout=30_000)
        page.locator(".st-key-inq_wide").wait_for(state="hidden", timeout=10_000)  # cards, not the table
        first_heading = page.get_by_role("heading", name="번 문의 ·").first
        first_heading.wait_for(timeout=30_000)
        opened_first = first_heading.inner_text()
        # Tap the card that is not open yet.
        button = next(
            b
            for b in cards.get_by_role("button").all()
            if b.inner_text().endswith("번 문의 열기") and not opened_first.startswith(b.inner_text().split("번")[0] + "번")
        )
        number = button.inner_text().split("번")[0]
        opened = page.get_by_role("heading", name=f"{number}번 문의")
        button.click()
        opened.wait_for(timeout=15_000)  # the first tap opens it: no second tap
        shot(page, "desk_phone_card_opened")

        page.get_by_text("알림음").click()  # the optional sound, switched on by this person
        page.wait_for_function("document.querySelector('.st-key-inq_sound input')?.checked", timeout=10_000)
        page.wait_for_timeout(1_500)  # the toggle's rerun reaches the server before the new inquiry does
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                user = session.exec(select(StaffUser).where(StaffUser.username == "cs1")).one()
                actor = Actor(id=user.id, name=user.display_name, role=Role.CS)
                new = inquiries.create_inquiry(session, actor, customer_id=1, body="이중 결제 됐어요")
                session.commit()
                new_id = new.id
        finally:
            engine.dispose()
        # The sound: an <audio autoplay> for that one tick (whether it is heard is the browser's autoplay policy).
        page.wait_for_function("document.querySelector('.st-key-inq_beep audio')?.autoplay === true", timeout=5_000)
        page.get_by_text(f"새 문의: {new_id}번 이중 결제").wait_for(timeout=5_000)
        page.wait_for_function("document.title.startsWith('(1) 문의')", timeout=5_000)
        assert page.title() == "(1) 문의 · ChannelDesk"
        assert page.get_by_test_id("stException").count() == 0


def test_a_click_on_a_table_row_opens_it_on_a_desktop(store: tuple[str, str]) -> None:
    base_url, _ = store
    with browser_page(1400, 900) as page:
        login(page, base_url, "cs1", "password-123")
        table = page.locator(".st-key-inq_wide [data-testid='stDataFrame']")
        table.wait_for(timeout=30_000)
        page.get_by_role("heading", name="번 문의 ·").first.wait_for(timeout=30_000)
        opened_first = page.get_by_role("heading", name="번 문의 ·").first.inner_text()
        box = table.bounding_box()
        # The grid is a canvas: row 2's cell under the header (rows are 35 px high).
        page.mouse.click(box["x"] + 120, box["y"] + 35 + 35 + 17)
        page.wait_for_function(
            f"![...document.querySelectorAll('h3')].some(h => h.innerText.startsWith({opened_first.split(' ')[0]!r}))",
            timeout=15_000,
        )
        shot(page, "desk_desktop_row_opened")
        assert page.get_by_role("heading", name="번 문의 ·").first.inner_text() != opened_first
        # The J key (the 다음 문의 button's shortcut) opens the next one.
        page.get_by_role("heading", name="문의", exact=True).click()
        before = page.get_by_role("heading", name="번 문의 ·").first.inner_text().split(" ")[0]
        page.keyboard.press("j")
        page.wait_for_function(
            f"![...document.querySelectorAll('h3')].some(h => h.innerText.startsWith({before!r}))",
            timeout=15_000,
        )
        assert page.get_by_test_id("stException").count() == 0


def test_a_tap_while_the_page_is_running_opens_it(store: tuple[str, str]) -> None:
    """The lost tap's cause: a card's click is sent once, and one that arrived while a full run was in
    progress waited in Streamlit's queue until that run ended; the report tab ended every full run with
    st.stop(), which empties that queue, so the tap was dropped. Each round here starts a full run (the
    알림음 toggle, outside the live queue) and taps a card while it runs, with the queue ticking each
    second as usual: every tap must open its inquiry the first time."""
    base_url, _ = store
    with browser_page(*PHONE) as page:
        login(page, base_url, "cs1", "password-123")
        cards = page.locator(".st-key-inq_narrow")
        heading = page.get_by_role("heading", name="번 문의 ·").first
        heading.wait_for(timeout=30_000)
        for round_ in range(4):
            opened_now = heading.inner_text().split("번")[0]
            target = next(
                b
                for b in cards.get_by_role("button").all()
                if b.inner_text().endswith("번 문의 열기") and b.inner_text().split("번")[0] != opened_now
            )
            number = target.inner_text().split("번")[0]
            page.locator(".st-key-inq_sound label").click()  # a full run starts ...
            target.click()  # ... and the tap lands while it runs
            page.get_by_role("heading", name=f"{number}번 문의 ·").wait_for(timeout=15_000)
            shot(page, f"desk_phone_tap_during_run_{round_}")
        assert page.get_by_test_id("stException").count() == 0
