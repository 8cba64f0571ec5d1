"""ui/settings_sla.render on its own page script (the lead's 설정 page calls the same function)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import clock, settings_store
from core.auth import Actor
from core.inquiries import policy as sla_policy
from core.models import ClosedDay, SlaPolicy
from tests.inquiry_helpers import k
from tests.ui_helpers import point_app_at

SCRIPT = """
import ui
from ui import settings_sla
settings_sla.render(ui.current_actor(), ui.engine())
"""


def _open(engine: Engine, actor: Actor, tmp_path: Path) -> AppTest:
    point_app_at(engine)
    clock.set_now(k("2026-11-23 10:00"))
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.session_state["actor"] = actor
    at.run()
    assert not at.exception, at.exception
    return at


def test_owner_edits_policy_hours_and_closed_days(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], tmp_path: Path
) -> None:
    at = _open(sqlite_engine, sqlite_actors["owner"], tmp_path)
    at.number_input(key="sla_set_first_payment_error").set_value(20)
    next(b for b in at.button if b.label == "목표 저장").click().run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="sla_set_hours_6").input("10:00-14:00")
    next(b for b in at.button if b.label == "영업시간 저장").click().run()
    assert not at.error
    next(b for b in at.button if b.label == "휴무일 추가").click().run()
    with Session(sqlite_engine) as session:
        policy = session.exec(select(SlaPolicy).where(SlaPolicy.inquiry_type == "payment_error")).one()
        assert policy.first_response_minutes == 20
        assert settings_store.get(session, "business_hours")["6"] == [["10:00", "14:00"]]
        assert [row.day.isoformat() for row in session.exec(select(ClosedDay)).all()] == ["2026-11-23"]


def test_bad_hours_and_zero_target_show_errors(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], tmp_path: Path
) -> None:
    at = _open(sqlite_engine, sqlite_actors["owner"], tmp_path)
    at.text_input(key="sla_set_hours_1").input("18:00-09:00")
    next(b for b in at.button if b.label == "영업시간 저장").click().run()
    assert at.error and "영업시간" in at.error[0].value
    at.number_input(key="sla_set_res_refund_request").set_value(0)
    next(b for b in at.button if b.label == "목표 저장").click().run()
    assert at.error and "0보다" in at.error[0].value


def test_calendar_without_open_hours_rejected(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], tmp_path: Path
) -> None:
    at = _open(sqlite_engine, sqlite_actors["owner"], tmp_path)
    for iso in range(1, 8):
        at.text_input(key=f"sla_set_hours_{iso}").input("")
    next(b for b in at.button if b.label == "영업시간 저장").click().run()
    assert at.error and "영업시간이 하나도 없습니다" in at.error[0].value


def test_owner_turns_on_sla_alerts_by_message(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], tmp_path: Path
) -> None:
    at = _open(sqlite_engine, sqlite_actors["owner"], tmp_path)
    at.checkbox(key="sla_set_alert_on").check()
    next(b for b in at.button if b.label == "알림 설정 저장").click().run()
    assert at.error and "번호를 입력" in at.error[0].value
    at.checkbox(key="sla_set_alert_on").check()
    at.text_input(key="sla_set_alert_phone").input("01098765432")
    at.multiselect(key="sla_set_alert_thresholds").set_value(["breached"])
    next(b for b in at.button if b.label == "알림 설정 저장").click().run()
    assert not at.error, [e.value for e in at.error]
    with Session(sqlite_engine) as session:
        assert sla_policy.alert_message(session) == sla_policy.AlertMessage(
            enabled=True, phone="010-9876-5432", thresholds=frozenset({"breached"})
        )
    assert at.success and "알림 메시지 설정을 저장" in at.success[0].value
