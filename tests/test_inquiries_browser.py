"""The 문의 page in a real browser: customer HTML/script/emoji text is shown as text, never executed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db import make_engine, upgrade
from core.inquiries import service as inquiries
from tests.browser import browser_page, login, require_chromium, shot, streamlit_server
from tests.conftest import make_actors
from tests.inquiry_helpers import make_customer

pytestmark = pytest.mark.browser

HOSTILE = (
    "<script>window.__pwned=1;alert('x')</script><img src=x onerror=\"window.__pwned=2\"><b>굵게</b> 😡🙏"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    path: Path = tmp_path_factory.mktemp("browser_inq") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actors = make_actors(engine)
    with Session(engine) as session:
        customer = make_customer(session, "<i>고객</i>")
        inquiries.create_inquiry(session, actors["cs"], customer_id=customer.id, body=HOSTILE)
        session.commit()
    engine.dispose()
    with streamlit_server(url) as base_url:
        yield base_url


def test_customer_text_is_shown_as_text_never_executed(server: str) -> None:
    with browser_page() as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        login(page, server, "cs1", "password-123")
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="문의").click()
        page.get_by_role("heading", name="문의").first.wait_for(timeout=30_000)
        page.get_by_text("<script>window.__pwned=1", exact=False).filter(visible=True).first.wait_for(timeout=30_000)
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=30_000)
        shot(page, "inquiries_hostile_text")
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []
        main = page.get_by_test_id("stMain")
        assert main.locator("b", has_text="굵게").count() == 0
        assert main.locator("img[src='x']").count() == 0
        assert page.get_by_test_id("stException").count() == 0
