"""/go (issue 21): a campaign click is recorded and answered with a redirect to the campaign's own
target, at once; a URL in any parameter is refused (no open redirect); an unknown or malformed
campaign is a Korean 404 page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import campaigns, clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.models import CampaignClick, Customer, Role
from tests.web.helpers import customer_client

TARGET = "https://shop.example/spring?utm_source=kakao"


def _campaign(engine: Engine, link_url: str | None = TARGET) -> int:
    staff = Actor(None, "s", Role.STAFF)
    with session_scope(engine) as s:
        for i in range(3):
            s.add(Customer(name=f"고객{i}", phone=f"010-1000-{i:04d}", public_id=f"pub{i}",
                           ad_consent_at=clock.now() - timedelta(days=10),
                           night_ad_consent_at=clock.now() - timedelta(days=10)))
    with session_scope(engine) as s:
        options = {"link_url": link_url} if link_url else {}
        cid = campaigns.create_campaign(s, staff, name="봄 세일", bodies=["#{링크}" if link_url else "안녕하세요"],
                                        rules={"include": [{"type": "channel_friend"}]}, options=options).id
        campaigns.start(s, staff, cid)
    return cid  # type: ignore[return-value]


def _clicks(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(CampaignClick)).scalar_one()


def test_a_click_is_recorded_and_redirected_to_the_campaigns_own_target(engine: Engine) -> None:
    cid = _campaign(engine)
    with customer_client(engine) as client:
        answer = client.get(f"/go?c={cid}&u=pub1")
    assert answer.status_code in (302, 303) and answer.headers["location"] == TARGET
    assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    assert len(answer.content) < 1_000  # no page, no Streamlit: a redirect
    assert _clicks(engine) == 1


def test_a_made_up_recipient_id_gets_the_not_found_page(sqlite_engine: Engine) -> None:
    """Only a link that was sent answers (#16): the campaign id is sequential, the recipient's id is
    80 random bits; a forwarded message still works because it carries the recipient's own id."""
    cid = _campaign(sqlite_engine)
    with customer_client(sqlite_engine) as client:
        forged = client.get(f"/go?c={cid}&u=notarecipient")
        forwarded = client.get(f"/go?c={cid}&u=pub2")
    assert forged.status_code == 404 and "location" not in forged.headers
    assert '<html lang="ko">' in forged.text
    assert forwarded.headers["location"] == TARGET and _clicks(sqlite_engine) == 1


@pytest.mark.parametrize(
    "query",
    [
        "c={cid}&u=pub1&next=https://evil.example/",
        "c={cid}&u=pub1&url=%2F%2Fevil.example",
        "c={cid}&u=//evil.example",
        "c={cid}&u=pub1&v=javascript:alert(1)",
        "c={cid}&u=pub1&to=http%253A%252F%252Fevil.example",  # encoded twice
        "c={cid}&u=pub1&r=%5C%5Cevil.example",  # backslashes
        "c={cid}&u=pub1&r=www.evil.example",
        "c={cid}&u=pub1&https://evil.example=1",  # in a name
        "c={cid}&u=pub1&r=data:text/html,<script>",
        "c={cid}&u=pub1%0d%0aLocation:%20https://evil.example",  # header injection
    ],
    ids=["next", "network-path", "in-u", "js-scheme", "double-encoded", "backslash", "www", "in-name",
         "data", "crlf"],
)
def test_a_url_in_any_parameter_is_refused(sqlite_engine: Engine, query: str) -> None:
    cid = _campaign(sqlite_engine)
    with customer_client(sqlite_engine) as client:
        answer = client.get(f"/go?{query.format(cid=cid)}")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "다른 사이트로 보내는 링크는 열 수 없습니다." in answer.text and '<html lang="ko">' in answer.text
    assert _clicks(sqlite_engine) == 0


@pytest.mark.parametrize(
    "query",
    ["", "c=999999&u=pub1", "c=abc&u=pub1", "c=%EF%BC%91&u=pub1", "c=1%00&u=pub1", "c=1&u=", "c=" + "9" * 40 + "&u=x",
     "c={cid}&u=" + "가" * 5000],
    ids=["none", "unknown", "letters", "fullwidth-digit", "nul", "no-u", "huge-c", "huge-u"],
)
def test_unknown_and_malformed_campaigns_are_a_korean_404(sqlite_engine: Engine, query: str) -> None:
    cid = _campaign(sqlite_engine)
    with customer_client(sqlite_engine) as client:
        answer = client.get(f"/go?{query.format(cid=cid)}")
    assert answer.status_code == 404 and "이 링크는 더 이상 유효하지 않습니다." in answer.text
    assert "location" not in answer.headers and _clicks(sqlite_engine) == 0


def test_a_campaign_without_a_link_has_nowhere_to_send(sqlite_engine: Engine) -> None:
    cid = _campaign(sqlite_engine, link_url=None)
    with customer_client(sqlite_engine) as client:
        answer = client.get(f"/go?c={cid}&u=pub1")
    assert answer.status_code == 404 and "location" not in answer.headers
