"""Shared helpers for the customer page tests: the real server.app over Starlette's TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from tests.ui_helpers import point_app_at
from web.customer import render, throttle

KAKAOTALK_UA = ("Mozilla/5.0 (Linux; Android 14; SM-S921N Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 KAKAOTALK/10.7.0 "
                "(INAPP)")
IPHONE_KAKAOTALK_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Mobile/15E148 KAKAOTALK 10.7.0")
CSRF_INPUT = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@contextmanager
def customer_client(engine: Engine, user_agent: str = KAKAOTALK_UA) -> Iterator[TestClient]:
    """server.py's routes and middleware on `engine`, as the customer's phone (KakaoTalk's in-app
    browser), redirects not followed. The routes run in a plain Starlette app: st.App's lifespan starts
    Streamlit's runtime, which starts once per process (the browser test serves the whole server.app)."""
    point_app_at(engine)
    render.reset_secret_cache()
    throttle.REFERRAL_VISITS.reset()
    import server

    app = Starlette(routes=server.ROUTES, middleware=[Middleware(server.LoginGate)])
    with TestClient(app, follow_redirects=False, headers={"User-Agent": user_agent}) as client:
        yield client
    render.reset_secret_cache()


def csrf_of(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)
