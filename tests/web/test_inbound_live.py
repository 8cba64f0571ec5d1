"""The inbound endpoints on a live server started the way scripts/start.sh starts it (`streamlit run
server.py`), over real HTTP with httpx: the chatbot skill, the 설정 test button's post, the Toss
webhook and /help, all served by the same process as the staff UI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, func, select

from core.accounts.actor import Actor
from core.db import make_engine, upgrade
from core.inquiries import channels
from core.models import InboundRequest, Inquiry, Role
from tests.browser import streamlit_server
from tests.web.kakao_payloads import skill_payload
from ui.settings_inbound import post_sample


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    path: Path = tmp_path_factory.mktemp("inbound_live") / "channeldesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        secret = channels.new_skill_secret(session, Actor(None, "사장", Role.OWNER))
        session.commit()
    engine.dispose()
    with streamlit_server(url) as base:
        yield base, secret, url


def test_the_skill_answers_over_http_and_files_one_inquiry(live: tuple[str, str, str]) -> None:
    base, secret, url = live
    headers = {channels.SECRET_HEADER: secret}
    payload = skill_payload("결제가 두 번 됐어요 <b>급해요</b> 🙏", "pf-live-1")
    first = httpx.post(f"{base}{channels.SKILL_PATH}", json=payload, headers=headers, timeout=10)
    again = httpx.post(f"{base}{channels.SKILL_PATH}", json=payload, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 200
    assert first.json()["template"]["outputs"][0]["simpleText"]["text"].startswith("이중 결제 문의가 접수되었습니다.")
    assert httpx.post(f"{base}{channels.SKILL_PATH}", json=payload, timeout=10).status_code == 401
    assert httpx.post(f"{base}{channels.SKILL_PATH}", content=b"{", headers=headers, timeout=10).status_code == 400
    engine = make_engine(url)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Inquiry)).one() == 1
        assert s.exec(select(InboundRequest.outcome).order_by(col(InboundRequest.id))).all() == \
            ["created", "duplicate", "refused", "bad_request"]
    engine.dispose()


def test_the_settings_test_button_reaches_the_skill_and_files_nothing(live: tuple[str, str, str]) -> None:
    base, secret, url = live
    engine = make_engine(url)
    with Session(engine) as s:
        before = s.exec(select(func.count()).select_from(Inquiry)).one()
    status, text = post_sample(base, secret)
    assert status == 200 and text.startswith("결제 오류 문의가 접수되었습니다.")
    assert post_sample(base, "wrong")[0] == 401
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Inquiry)).one() == before
        assert "test" in s.exec(select(InboundRequest.outcome)).all()
    engine.dispose()


def test_toss_and_help_on_the_same_server(live: tuple[str, str, str]) -> None:
    base, _secret, _url = live
    unknown = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-20T10:00:00.000",
               "data": {"paymentKey": "tviva_not_ours", "orderId": "X", "status": "DONE"}}
    assert httpx.post(f"{base}{channels.TOSS_PATH}", json=unknown, timeout=10).status_code == 200
    with httpx.Client(base_url=base, timeout=10) as browser:
        page = browser.get("/help")
        assert page.status_code == 200 and '<html lang="ko">' in page.text and "<script" not in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)  # type: ignore[union-attr]
        done = browser.post("/help", data={"csrf": token, "phone": "010-4444-5555", "order_mode": "none",
                                           "type": "receipt_request", "text": "영수증 부탁드려요"})
    assert done.status_code == 200 and "영수증 요청 문의가 접수되었습니다." in done.text
