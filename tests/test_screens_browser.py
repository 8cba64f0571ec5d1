"""Feedback where the eye is, in a real browser at 1440x900 and 390x844 (issue 18, part 6).

On main, the result of 메모 남기기 sat 1,800 px above the viewport and 담당하기 on a phone 2,750 px
above. Here each action is clicked where it sits (scrolled into view, as a person would), and the
toast that answers must be inside the viewport; a viewport screenshot of each is kept in
test-artifacts/browser/. The visible text of each screen is also checked against the deny-list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db import make_engine, upgrade
from core.inquiries import service as inquiries
from tests.browser import ARTIFACTS, browser_page, login, require_chromium, streamlit_server
from tests.conftest import make_actors
from tests.inquiry_helpers import make_customer
from tests.test_screens_korean import leaks

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
TIMINGS = ARTIFACTS / "click_to_feedback.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("browser_screens") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actors = make_actors(engine)
    with Session(engine) as session:
        for i in range(12):  # a long page: the queue, the detail, the forms far below
            customer = make_customer(session, f"고객{i}", f"0101234{i:04d}")
            inquiries.create_inquiry(session, actors["cs"], customer_id=customer.id,
                                     body=f"배송이 아직 안 왔어요 {i}번째 문의입니다 🙏")
        session.commit()
    engine.dispose()
    with streamlit_server(url) as base_url:
        yield base_url


def _viewport_shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _words(page) -> str:  # type: ignore[no-untyped-def]
    """The main area's text as read (Material icons are glyphs drawn from a font: their ligature
    names, e.g. "filter_list", are not words a person sees)."""
    return page.evaluate(
        """() => { const live = document.querySelector('[data-testid="stMain"]');
                   live.querySelectorAll('*').forEach(e => {
                     if (getComputedStyle(e).fontFamily.includes('Material')) e.setAttribute('data-icon-glyph', '1');
                   });
                   const main = live.cloneNode(true);
                   main.querySelectorAll('[data-icon-glyph]').forEach(e => e.remove());
                   document.body.appendChild(main); const text = main.innerText; main.remove(); return text; }"""
    )


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=30_000)


def _open(page, server: str, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Log in and open `screen` on a desktop, then take the window to `size` (the same session)."""
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, server, "cs1", "password-123")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=screen).click()
    page.get_by_role("heading", name=screen).first.wait_for(timeout=30_000)
    _settle(page)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    _settle(page)


def _click_and_find_feedback(page, button, expected: str) -> tuple[dict, float]:  # type: ignore[no-untyped-def]
    """Click, wait for the toast saying `expected`; its box and the seconds from click to it."""
    button.scroll_into_view_if_needed()
    started = time.perf_counter()
    button.click()
    toast = page.get_by_test_id("stToast").filter(has_text=expected).first
    toast.wait_for(state="visible", timeout=30_000)
    elapsed = time.perf_counter() - started
    return toast.bounding_box(), elapsed


def _inside(box: dict, size: tuple[int, int]) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size[0] and \
        box["y"] + box["height"] <= size[1]


def _record(name: str, seconds: float) -> None:
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data.setdefault(name, []).append(round(seconds, 3))
    TIMINGS.write_text(json.dumps(data, ensure_ascii=False, indent=1))


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_inquiry_actions_answer_inside_the_viewport(server: str, device: str) -> None:
    size = VIEWPORTS[device]
    with browser_page(*size) as page:
        _open(page, server, "문의", size)
        main_text = _words(page)
        assert not leaks(main_text), leaks(main_text)
        if device == "phone":  # another inquiry than the desktop run claimed (one shared store)
            opener = page.get_by_label("번호로 열기 (해결된 문의 포함)")
            opener.scroll_into_view_if_needed()
            opener.fill("5")
            opener.press("Enter")
            page.get_by_role("heading", name="5번 문의").wait_for(timeout=30_000)
            _settle(page)

        box, seconds = _click_and_find_feedback(
            page, page.get_by_role("button", name="담당하기"), "담당자로 지정되었습니다"
        )
        _viewport_shot(page, f"feedback_claim_{device}")
        assert _inside(box, size), (box, size)
        _record(f"담당하기 ({device})", seconds)
        _settle(page)

        note = page.get_by_label("내부 메모 (고객에게 보이지 않음)")
        note.scroll_into_view_if_needed()
        note.fill("카드사 확인 필요")
        box, seconds = _click_and_find_feedback(
            page, page.get_by_role("button", name="메모 남기기"), "메모를 남겼습니다"
        )
        _viewport_shot(page, f"feedback_note_{device}")
        assert _inside(box, size), (box, size)
        _record(f"메모 남기기 ({device})", seconds)
        _settle(page)
        assert page.get_by_text("카드사 확인 필요").first.is_visible() or page.get_by_text("카드사 확인 필요").count()
        if device == "phone":  # the card list, not a table cut after 번호-유형
            cards = page.locator(".st-key-inq_narrow")
            assert cards.is_visible()
            assert "고객0" in cards.inner_text() or "고객" in cards.inner_text()
            assert not page.locator(".st-key-inq_wide").is_visible()


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_new_payment_link_answers_inside_the_viewport(server: str, device: str) -> None:
    size = VIEWPORTS[device]
    with browser_page(*size) as page:
        _open(page, server, "주문", size)
        page.get_by_role("tab", name="결제 링크").click()
        page.get_by_label("상품명 (맞춤 견적)").fill("맞춤 견적 케이크")
        amount = page.get_by_label("금액(원)", exact=True)
        amount.fill("39000")
        box, seconds = _click_and_find_feedback(
            page, page.get_by_role("button", name="링크 만들기"), "결제 링크를 만들었습니다"
        )
        _viewport_shot(page, f"feedback_link_{device}")
        assert _inside(box, size), (box, size)
        _record(f"링크 만들기 ({device})", seconds)
        _settle(page)
        assert page.get_by_text("방금 만든 결제 링크").first.is_visible()
        main_text = _words(page)
        assert not leaks(main_text), leaks(main_text)
