"""ui/settings_inbound.render (설정 → 연동) on its own page script, as pages/settings.py calls it."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core.accounts.actor import Actor
from core.db import session_scope
from core.inquiries import channels, inbound
from core.models import AuditLog, Setting
from tests.ui_helpers import point_app_at, texts

SCRIPT = """
import ui
from ui import feedback, settings_inbound
feedback.show("set")
settings_inbound.render(ui.current_actor(), ui.engine())
"""


def _open(engine: Engine, actor: Actor) -> AppTest:
    point_app_at(engine)
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.session_state["actor"] = actor
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_owner_sees_the_urls_makes_a_secret_and_reads_the_log(engine: Engine, actors: dict[str, Actor]) -> None:
    with session_scope(engine) as s:
        inbound.receive_kakao(s, user_key="pf-1", utterance="<b>환불</b> 해주세요")
    at = _open(engine, actors["owner"])
    shown = texts(at)
    assert "비밀값이 없어 챗봇 요청을 모두 거부" in shown
    frames = [df.value for df in at.dataframe]
    urls = frames[0]["주소"].tolist()
    assert urls == [e.url for e in channels.endpoints(None)] or all(u.endswith(p) for u, p in zip(
        urls, (channels.SKILL_PATH, channels.TOSS_PATH, channels.HELP_PATH), strict=True))
    log = frames[-1]
    assert log["결과"].tolist() == ["새 문의"] and log["채널"].tolist() == ["카카오톡 챗봇"]
    assert "<b>환불</b>" not in shown  # the log shows no customer text at all
    at.button(key="new_skill_secret").click().run()
    with Session(engine) as s:
        secret = s.get(Setting, channels.SECRET_SETTING).value
        audit = s.exec(select(AuditLog).where(AuditLog.action == "integration.skill_secret")).one()
    assert isinstance(secret, str) and len(secret) >= 32
    assert secret not in str(audit.detail)  # the audit log never holds the secret
