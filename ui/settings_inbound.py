"""설정 → 연동: the URLs to register (Kakao i Open Builder, Toss, the channel's menu), the chatbot's
shared secret, a test that posts a sample payload to this server, and the recent inbound log.

Called by pages/settings.py as `settings_inbound.render(actor, engine)`; the secret is made through
core.inquiries.channels (owner only, audited without the value).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.db import read_scope
from core.inquiries import channels, inbound_log
from ui import feedback
from ui.tables import show_rows

SAMPLE_UTTERANCE = "결제 오류가 났어요 (연결 테스트)"
SOURCE_LABELS = {"env": "환경 변수 KAKAO_SKILL_SECRET", "store": "이 화면에서 만든 값", "none": "없음"}


def _own_base_url() -> str:
    """This server as the browser reached it (the test posts to the very server that answers Kakao)."""
    url = st.context.url or ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def sample_skill_payload() -> dict[str, object]:
    return {
        "intent": {"id": "test", "name": "연결 테스트"},
        "userRequest": {
            "timezone": "Asia/Seoul", "utterance": SAMPLE_UTTERANCE, "lang": None,
            "block": {"id": "test", "name": "연결 테스트"},
            "user": {"id": channels.TEST_USER_KEY, "type": "botUserKey",
                     "properties": {"plusfriendUserKey": channels.TEST_USER_KEY, "isFriend": True}},
        },
        "bot": {"id": "test", "name": "ChannelDesk"},
        "action": {"id": "test", "name": "test", "params": {}, "detailParams": {}, "clientExtra": None},
    }


def post_sample(base_url: str, secret: str | None) -> tuple[int | None, str]:
    """Post the sample to the skill URL: (HTTP status, what Kakao would show) or (None, why it failed)."""
    try:
        response = httpx.post(base_url.rstrip("/") + channels.SKILL_PATH, json=sample_skill_payload(),
                              headers={channels.SECRET_HEADER: secret or ""}, timeout=5)
    except httpx.HTTPError as exc:
        return None, f"서버에 연결하지 못했습니다: {exc.__class__.__name__}"
    try:
        text = response.json()["template"]["outputs"][0]["simpleText"]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        text = response.text[:200]
    return response.status_code, str(text)


def render(actor: Actor, engine: Engine) -> None:
    base = _own_base_url()
    st.subheader("등록할 주소")
    st.caption("고객이 카카오톡 채널에 쓴 글과 결제 알림이 바로 문의로 들어옵니다. 아래 주소를 각 서비스에 등록하세요.")
    show_rows([{"연동": e.name, "주소": e.url, "등록하는 곳": e.where} for e in channels.endpoints(base or None)])

    with read_scope(engine) as session:
        source = channels.secret_source(session)
        secret = channels.skill_secret(session)
        recent = inbound_log.recent(session, limit=50)
    st.subheader("챗봇 스킬 비밀값")
    st.write(f"헤더 이름: `{channels.SECRET_HEADER}` · 비밀값: {SOURCE_LABELS[source]}")
    if source == "none":
        st.warning("비밀값이 없어 챗봇 요청을 모두 거부하고 있습니다. 비밀값을 만든 뒤 오픈빌더 스킬의 헤더에 넣으세요.")
    elif st.toggle("비밀값 보기", key="show_skill_secret"):
        st.code(secret or "", language=None)
    if source != "env" and st.button("새 비밀값 만들기" if source == "none" else "비밀값 바꾸기", key="new_skill_secret"):
        feedback.run("set", lambda session: channels.new_skill_secret(session, actor),
                     "새 비밀값을 만들었습니다. 오픈빌더 스킬의 헤더 값도 바꿔 주세요.")

    st.subheader("연결 테스트")
    st.caption(f"예시 메시지(“{SAMPLE_UTTERANCE}”)를 이 서버의 챗봇 주소로 보냅니다. 문의는 만들어지지 않습니다.")
    if st.button("테스트", key="skill_test", disabled=not base):
        status, text = post_sample(base, secret)
        if status == 200:
            st.success(f"정상 응답 (HTTP 200): {text}")
        else:
            st.error(f"응답 실패 (HTTP {status if status is not None else '-'}): {text}")

    st.subheader("최근 수신 기록")
    show_rows(
        [{"받은 시각": r.received_at, "채널": r.channel, "인증": r.verified, "HTTP": r.status_code,
          "결과": r.outcome, "문의": f"{r.inquiry_id}번" if r.inquiry_id else "-", "처리(ms)": r.elapsed_ms}
         for r in recent],
        empty="아직 받은 요청이 없습니다.",
    )



