"""The real server in a real browser: log in per role, open every screen, see no exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.accounts.screens import screens_for
from core.models import Role
from tests.browser import browser_page, login, shot, staffed_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with staffed_server(tmp_path_factory.mktemp("browser")) as base_url:
        yield base_url


@pytest.mark.parametrize("role", [Role.OWNER, Role.CS, Role.STAFF])
def test_login_and_open_every_screen(server: str, role: Role) -> None:
    with browser_page() as page:
        login(page, server, f"{role.value}1", "password-123")
        nav = page.get_by_test_id("stSidebarNav")
        titles = [s.title for s in screens_for(role)]
        links = nav.get_by_role("link").all_inner_texts()
        assert sorted(t.strip().split("\n")[-1] for t in links) == sorted(titles)
        for title in titles:
            nav.get_by_role("link", name=title).click()
            page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=30_000)
            assert page.get_by_test_id("stException").count() == 0, f"exception on {title}"
            shot(page, f"smoke_{role.value}_{title}")


def test_visitor_sees_only_login_on_every_url(server: str) -> None:
    with browser_page() as page:
        for path in ["", "inquiries", "sales"]:
            page.goto(f"{server}/{path}")
            page.get_by_text("ChannelDesk 로그인").wait_for(timeout=30_000)
            assert page.get_by_role("heading", name="매출").count() == 0
            assert page.get_by_role("button", name="로그아웃").count() == 0
        shot(page, "visitor_login")


def test_cs_cannot_reach_owner_screens_by_url(server: str) -> None:
    """A typed URL opens a fresh session (login again); after login cs still has no 매출 or 설정."""
    with browser_page() as page:
        login(page, server, "cs1", "password-123")
        nav = page.get_by_test_id("stSidebarNav")
        assert nav.get_by_role("link", name="매출").count() == 0
        assert nav.get_by_role("link", name="설정").count() == 0
