"""ui/settings_sla.render on its own page script (the lead's 설정 page calls the same function)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import clock, settings_store
from core.accounts.actor import Actor
from core.inquiries import policy as sla_policy
from core.models import ClosedDay, SlaPolicy
from tests.inquiry_helpers import k
from tests.ui_helpers import point_app_at

SCRIPT = """
import ui
from ui import feedback, settings_sla
feedback.show("set")  # as pages/settings.py does: results of the 설정 page
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
    at.number_input(key="sla_set_first_payment_error_h").set_value(0)
    at.number_input(key="sla_set_first_payment_error_m").set_value(20)
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
    at.number_input(key="sla_set_res_refund_request_h").set_value(0)
    at.number_input(key="sla_set_res_refund_request_m").set_value(0)
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
    assert at.toast and "알림 메시지 설정을 저장" in at.toast[0].value


def test_targets_in_hours_and_minutes_warning_in_minutes_and_a_sample_deadline(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], tmp_path: Path
) -> None:
    """A Sunday request under business hours is due Monday morning, and the page says so."""
    from datetime import timedelta

    from ui.settings_sla import share_for_warning, warn_minutes

    assert warn_minutes(timedelta(minutes=60), 0.8) == 12
    assert share_for_warning(60, 12) == 0.8
    assert share_for_warning(60, 600) == 0.05 and share_for_warning(60, 0) == 0.95  # kept in range

    point_app_at(sqlite_engine)
    clock.set_now(k("2026-11-22 15:00"))  # a Sunday
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.session_state["actor"] = sqlite_actors["owner"]
    at.run()
    assert not at.exception, at.exception
    labels = [n.label for n in at.number_input]
    assert "첫 응답 시간" in labels and "첫 응답 분" in labels and "기한 몇 분 전 알림" in labels
    samples = [c.value for c in at.caption if c.value.startswith("지금 접수되면: ")]
    assert any("11월 23일(월) 09:" in s for s in samples), samples
    assert not any("임박 비율" in n for n in labels) and not any("(분)" in n for n in labels)

    at.number_input(key="sla_set_first_payment_error_h").set_value(2)
    at.number_input(key="sla_set_first_payment_error_m").set_value(30)
    at.number_input(key="sla_set_warn_payment_error").set_value(30)
    next(b for b in at.button if b.label == "목표 저장").click().run()
    assert not at.exception, at.exception
    with Session(sqlite_engine) as session:
        policy = sla_policy.load(session).policy("payment_error")
    assert policy.first_response == timedelta(hours=2, minutes=30)
    assert policy.at_risk_share == 0.8  # 30 minutes before a 150-minute target
