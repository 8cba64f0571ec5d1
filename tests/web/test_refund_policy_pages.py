"""The shop's one refund policy on every public page that extends base.html (seed 000: told up
front): the owner's text, escaped, line breaks kept; once per page; not on a bare message page."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.errors import ValidationFailed
from core.payments import checkout
from tests.web.helpers import customer_client

POLICY = '<script>alert(1)</script> 받은 날부터 7일 안에\n채널 채팅으로 "환불" 이라고 보내 주세요.'
SHOWN = "&lt;script&gt;alert(1)&lt;/script&gt; 받은 날부터 7일 안에\n채널 채팅으로 &#34;환불&#34; 이라고 보내 주세요."


def _set(engine: Engine, actors, text: str) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        checkout.set_refund_policy(session, actors["owner"], text)
        session.commit()


def test_the_help_page_shows_the_owners_policy_escaped_with_its_line_breaks(
    sqlite_engine, sqlite_actors
) -> None:  # type: ignore[no-untyped-def]
    _set(sqlite_engine, sqlite_actors, POLICY)
    with customer_client(sqlite_engine) as client:
        html = client.get("/help").text
    assert SHOWN in html and "<script>alert" not in html
    assert html.count('id="refund-policy"') == 1 and "white-space:pre-line" in html
    assert "교환·환불 안내" in html


def test_without_an_owners_text_the_default_states_the_seven_days_and_the_channel_chat(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    with customer_client(sqlite_engine) as client:
        html = client.get("/help").text
    assert checkout.DEFAULT_REFUND_POLICY in html
    assert "7일" in checkout.DEFAULT_REFUND_POLICY and "채널 채팅" in checkout.DEFAULT_REFUND_POLICY


def test_a_bare_message_page_does_not_carry_the_policy(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    with customer_client(sqlite_engine) as client:
        page = client.get("/pay?link=nosuchlink0000")
    assert page.status_code in (404, 422) and 'id="refund-policy"' not in page.text


def test_the_policy_is_kept_short_enough_for_a_message(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """It rides in the order confirmation and the welcome (an AlimTalk variable is at most 500 characters)."""
    with Session(sqlite_engine) as session, pytest.raises(ValidationFailed, match="400자"):
        checkout.set_refund_policy(session, sqlite_actors["owner"], "가" * 401)
