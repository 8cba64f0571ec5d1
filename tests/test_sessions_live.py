"""The login over real HTTP: `streamlit run server.py` (as scripts/start.sh starts it) and httpx.

A browser would do the same requests; the browser tests (tests/test_sessions_browser.py) add the
Streamlit page itself and the reload timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.accounts.auth import LOGIN_REFUSED, SESSION_COOKIE, create_user
from core.db import make_engine, upgrade
from tests.browser import streamlit_server

PASSWORD = "owner-password-1"


def _store(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        create_user(session, None, username="boss", display_name="사장", role="owner", password=PASSWORD)
        create_user(session, None, username="mina", display_name="미나", role="cs", password=PASSWORD)
        session.commit()
    engine.dispose()


def _post_login(base: str, username: str, password: str, next_path: str = "/orders",
                headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{base}/auth/login", data={"username": username, "password": password, "next": next_path},
                      headers=headers or {}, follow_redirects=False, timeout=30)


def _get(base: str, path: str, token: str | None) -> httpx.Response:
    cookies = {SESSION_COOKIE: token} if token is not None else {}
    return httpx.get(f"{base}{path}", cookies=cookies, follow_redirects=False, timeout=30)


def _token(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:500]
    return response.cookies[SESSION_COOKIE]


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("live") / "channeldesk.db"
    url = f"sqlite:///{path}"
    _store(url)
    return url


@pytest.fixture(scope="module")
def server(sqlite_url: str) -> Iterator[str]:
    with streamlit_server(sqlite_url) as base:
        yield base


def test_staff_pages_without_a_session_go_to_the_login(server: str) -> None:
    for path in ("/", "/orders", "/inquiries", "/settings"):
        response = _get(server, path, None)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/auth/login?next=")
    page = httpx.get(f"{server}/auth/login", timeout=30)
    assert page.status_code == 200 and "ChannelDesk 로그인" in page.text and 'type="password"' in page.text
    # Customer pages stay public: plain HTML answers of their own (no login redirect, no Streamlit).
    bare_pay = _get(server, "/pay", None)
    assert bare_pay.status_code == 400 and "결제 링크가 올바르지 않습니다" in bare_pay.text
    assert _get(server, "/go", None).status_code == 404


def test_the_cookie_is_httponly_lax_and_secure_on_https(server: str) -> None:
    response = _post_login(server, "boss", PASSWORD)
    assert response.headers["location"] == "/orders"
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert "Secure" not in header  # plain http on localhost
    behind_tls = _post_login(server, "boss", PASSWORD, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls.headers["set-cookie"]
    assert _get(server, "/orders", _token(response)).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("boss", "wrong-password"), ("nobody", PASSWORD), ("boss", "가" * 10_000), ("bo\x00ss", PASSWORD),
     ("boss\u0007", PASSWORD), ("", "")],
    ids=["wrong", "unknown", "10000-chars", "nul", "bell", "empty"],
)
def test_every_refused_login_reads_the_same_and_sets_no_cookie(sqlite_url: str, username: str, password: str) -> None:
    with streamlit_server(sqlite_url) as base:  # its own server: these failures do not throttle the others
        response = _post_login(base, username, password)
    assert response.status_code == 401
    assert LOGIN_REFUSED in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "cookie",
    ["forged-" + "A" * 40, "", "x" * 5000, "%00" * 20],
    ids=["forged", "empty", "huge", "nul"],
)
def test_forged_cookies_get_the_login(server: str, cookie: str) -> None:
    response = _get(server, "/orders", cookie)
    assert response.status_code == 303 and response.headers["location"].startswith("/auth/login")


def test_a_truncated_cookie_gets_the_login(server: str) -> None:
    token = _token(_post_login(server, "mina", PASSWORD))
    assert _get(server, "/orders", token[:-2]).status_code == 303
    assert _get(server, "/orders", token).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "orders"])
def test_the_login_never_redirects_off_site(server: str, target: str) -> None:
    assert _post_login(server, "boss", PASSWORD, next_path=target).headers["location"] == "/"


def test_a_login_posted_from_another_site_is_refused(server: str) -> None:
    response = _post_login(server, "boss", PASSWORD, headers={"Origin": "https://evil.example"})
    assert response.status_code == 400 and "set-cookie" not in response.headers


def test_logout_ends_both_browsers_and_a_replayed_cookie_is_dead(server: str) -> None:
    phone = _token(_post_login(server, "mina", PASSWORD))
    desk = _token(_post_login(server, "mina", PASSWORD))
    out = httpx.post(f"{server}/auth/logout", cookies={SESSION_COOKIE: phone}, follow_redirects=False, timeout=30)
    assert out.status_code == 303 and out.headers["location"].startswith("/auth/login")
    assert 'channeldesk_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert _get(server, "/orders", phone).status_code == 303  # replayed after logout
    assert _get(server, "/orders", desk).status_code == 303  # the other browser too


def test_a_restarted_server_keeps_the_login(sqlite_url: str) -> None:
    with streamlit_server(sqlite_url) as first:
        token = _token(_post_login(first, "boss", PASSWORD))
    with streamlit_server(sqlite_url) as second:
        assert _get(second, "/orders", token).status_code == 200


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_share_sessions(pg_engine: Engine) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    with Session(pg_engine) as session:
        create_user(session, None, username="boss", display_name="사장", role="owner", password=PASSWORD)
        session.commit()
    with streamlit_server(url) as one, streamlit_server(url) as two:
        token = _token(_post_login(one, "boss", PASSWORD))
        assert _get(two, "/orders", token).status_code == 200  # logged in on one, reloaded on the other
        httpx.post(f"{two}/auth/logout", cookies={SESSION_COOKIE: token}, follow_redirects=False, timeout=30)
        assert _get(one, "/orders", token).status_code == 303  # logged out on two: gone on one
