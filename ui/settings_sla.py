"""설정 → 응답 기한: targets per inquiry type, business hours (with lunch breaks), closed days.

Called by pages/settings.py as `settings_sla.render(actor, engine)`. Every change goes through
core.inquiries (policy.py stores, service.py saves and re-times the open inquiries; owner only, audited).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.inquiries import policy as sla_policy
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.models.inquiries import INQUIRY_TYPE_LABELS
from ui import dates, feedback

CALENDAR_LABELS = {"business": "영업시간 기준", "24/7": "24시간 (휴일 포함)"}


def _apply(engine: Engine, action: Callable[[Session], object], success: str) -> None:
    """One service call; the result as a toast, an error kept at the top of 설정 until closed."""
    del engine  # the page's engine: ui.feedback opens the same one
    feedback.run("set", action, success)


def warn_minutes(target: timedelta, at_risk_share: float) -> int:
    """"임박" as people set it: minutes before the deadline. 60 min target at 0.8 -> 12분 전."""
    return max(1, round(target / timedelta(minutes=1) * (1 - at_risk_share)))


def share_for_warning(target_minutes: int, minutes_before: int) -> float:
    """The stored share for "N분 전 알림", kept inside what the policy accepts (0.05..0.95)."""
    if target_minutes <= 0:
        return sla.DEFAULT_AT_RISK_SHARE
    return min(0.95, max(0.05, round(1 - minutes_before / target_minutes, 4)))


def duration_picker(container: Any, label: str, value: timedelta, key: str) -> int:
    """시간 + 분 side by side (targets in people's units, issue 18); returns minutes."""
    total = int(value / timedelta(minutes=1))
    hours_col, minutes_col = container.columns(2)
    hours = hours_col.number_input(f"{label} 시간", min_value=0, max_value=24 * 30, value=total // 60, key=f"{key}_h")
    minutes = minutes_col.number_input(f"{label} 분", min_value=0, max_value=59, value=total % 60, step=5,
                                       key=f"{key}_m")
    return int(hours) * 60 + int(minutes)


def _due_text(calendar: sla.Calendar, now: datetime, target: timedelta) -> str:
    """When an inquiry created `now` would be due: "12월 7일(월) 09:05"."""
    due = sla.deadline(calendar, now, target)
    if due is None:
        return "영업시간이 없어 계산할 수 없음"
    local = clock.to_kst(due)
    return f"{local.month}월 {local.day}일({sla_policy.WEEKDAY_LABELS[local.weekday()]}) {local:%H:%M}"


def render(actor: Actor, engine: Engine) -> None:
    with session_scope(engine) as session:
        config = sla_policy.load(session)
        hours = sla_policy.setting(session, "business_hours")
        observe = bool(sla_policy.setting(session, "observe_public_holidays"))
        closed = [(row.day, row.reason) for row in sla_policy.list_closed_days(session)]
        alert = sla_policy.alert_message(session)

    st.subheader("문의 유형별 목표 시간")
    st.caption(
        "목표는 시간과 분으로 정합니다. '영업시간 기준'은 영업시간에만 시간이 흐르고, 휴일과 영업시간 밖에"
        " 접수된 문의는 다음 영업 시작부터 셉니다. 아래 '지금 접수되면'이 실제 기한입니다."
    )
    now = clock.now()
    with st.form("sla_set_policies"):
        values = {}
        for inquiry_type, label in INQUIRY_TYPE_LABELS.items():
            policy = config.policy(inquiry_type)
            st.markdown(f"**{label}**")
            c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
            first = duration_picker(c1, "첫 응답", policy.first_response, f"sla_set_first_{inquiry_type}")
            resolution = duration_picker(c2, "해결", policy.resolution, f"sla_set_res_{inquiry_type}")
            calendar = c3.selectbox(
                "시간 세는 법",
                list(CALENDAR_LABELS),
                index=list(CALENDAR_LABELS).index(policy.calendar),
                format_func=CALENDAR_LABELS.get,
                key=f"sla_set_cal_{inquiry_type}",
            )
            warn = c4.number_input(
                "기한 몇 분 전 알림",
                min_value=1,
                value=warn_minutes(policy.first_response, policy.at_risk_share),
                step=5,
                key=f"sla_set_warn_{inquiry_type}",
                help="첫 응답 기한 기준입니다. 해결 기한에도 같은 비율로 알립니다.",
            )
            values[inquiry_type] = (first, resolution, calendar, warn)
            calendar_now = sla.calendar_for(policy, config.business_calendar)
            st.caption(
                f"지금 접수되면: 첫 응답 {_due_text(calendar_now, now, policy.first_response)} · "
                f"해결 {_due_text(calendar_now, now, policy.resolution)} · "
                f"해결 기한 {warn_minutes(policy.resolution, policy.at_risk_share):,}분 전 알림"
            )
        if st.form_submit_button("목표 저장", type="primary"):

            def _save(session: Session) -> None:
                for inquiry_type, (first, resolution, calendar, warn) in values.items():
                    inquiries.save_policy(
                        session,
                        actor,
                        inquiry_type=inquiry_type,
                        first_response_minutes=first,
                        resolution_minutes=resolution,
                        calendar=calendar,
                        at_risk_share=share_for_warning(first, int(warn)),
                    )

            _apply(engine, _save, "목표 시간을 저장했습니다 (열린 문의의 기한을 다시 계산했습니다)")

    st.subheader("영업시간")
    st.caption("요일마다 '09:00-12:00, 13:00-18:00'처럼 적습니다 (점심시간은 두 구간 사이). 비우면 휴무.")
    with st.form("sla_set_hours"):
        texts = {}
        for iso, label in enumerate(sla_policy.WEEKDAY_LABELS, start=1):
            texts[str(iso)] = st.text_input(
                f"{label}요일",
                value=sla_policy.format_hours_text(hours.get(str(iso), [])),
                key=f"sla_set_hours_{iso}",
            )
        observe_new = st.checkbox(
            "공휴일(설날·추석·대체공휴일 포함)은 쉽니다", value=observe, key="sla_set_holidays"
        )
        if st.form_submit_button("영업시간 저장"):

            def _save_hours(session: Session) -> None:
                parsed = {iso: sla_policy.parse_hours_text(text) for iso, text in texts.items()}
                inquiries.save_business_hours(session, actor, parsed, observe_new)

            _apply(engine, _save_hours, "영업시간을 저장했습니다")

    st.subheader("임시 휴무일")
    with st.form("sla_set_closed", clear_on_submit=True):
        c1, c2 = st.columns([1, 2])
        today = clock.today_kst()
        day = dates.day_select(
            "날짜",
            today,
            key="sla_set_closed_day",
            first=today - timedelta(days=31),
            last=today + timedelta(days=731),
            container=c1,
        )
        reason = c2.text_input("사유", key="sla_set_closed_reason", max_chars=200)
        if st.form_submit_button("휴무일 추가"):
            _apply(
                engine,
                lambda s: inquiries.add_closed_day(s, actor, day, reason),
                f"{day} 휴무일을 추가했습니다",
            )
    for closed_day, closed_reason in closed:
        c1, c2 = st.columns([4, 1])
        c1.text(f"{closed_day.isoformat()}  {closed_reason}")
        if c2.button("삭제", key=f"sla_set_closed_rm_{closed_day.isoformat()}"):
            _apply(
                engine,
                lambda s, d=closed_day: inquiries.remove_closed_day(s, actor, d),
                f"{closed_day} 휴무일을 삭제했습니다",
            )
    _render_alert_message(actor, engine, alert)
    _render_type_keywords(actor, engine)
    upcoming = sorted(d for d in sla.korean_holidays(clock.today_kst().year) if d >= clock.today_kst())[:5]
    if upcoming:
        st.caption(
            "다가오는 공휴일: " + ", ".join(f"{d.isoformat()} {sla.holiday_name(d)}" for d in upcoming)
        )


def _render_alert_message(actor: Actor, engine: Engine, alert: sla_policy.AlertMessage) -> None:
    st.subheader("기한 알림 메시지")
    st.caption(
        "기한 임박·기한 초과 알림은 앱에 항상 뜹니다. 켜면 CS 책임자 휴대전화로도 알림톡/문자를 한 번씩 "
        "보냅니다 (정보성 메시지, 영업시간 밖에는 24시간 정책만)."
    )
    with st.form("sla_set_alert"):
        enabled = st.checkbox("메시지로도 알림 받기", value=alert.enabled, key="sla_set_alert_on")
        phone = st.text_input(
            "받을 휴대전화 번호", value=alert.phone, placeholder="010-1234-5678", key="sla_set_alert_phone"
        )
        thresholds = st.multiselect(
            "보낼 알림",
            list(sla_policy.ALERT_THRESHOLDS),
            default=[t for t in sla_policy.ALERT_THRESHOLDS if t in alert.thresholds],
            format_func=sla_policy.ALERT_THRESHOLDS.get,
            key="sla_set_alert_thresholds",
        )
        if st.form_submit_button("알림 설정 저장"):
            _apply(
                engine,
                lambda s: sla_policy.save_alert_message(
                    s, actor, enabled=enabled, phone=phone, thresholds=list(thresholds)
                ),
                "기한 알림 메시지 설정을 저장했습니다",
            )


def _render_type_keywords(actor: Actor, engine: Engine) -> None:
    """The owner's own words per inquiry type: read before the built-in rules (문의, chatbot, /help)."""
    with session_scope(engine) as session:
        current = inquiries.type_keywords(session)
    st.subheader("문의 유형 자동 분류 키워드")
    st.caption(
        "고객 문의(카카오톡 챗봇, 문의 페이지, 직접 입력)의 유형을 낱말로 추천합니다. 여기 적은 낱말이 기본 규칙보다"
        " 먼저 쓰입니다. 쉼표로 구분하고, 띄어쓰기와 대소문자는 무시합니다."
    )
    with st.form("sla_set_keywords"):
        words = {}
        for inquiry_type, _ in inquiries.TYPE_RULES:
            words[inquiry_type.value] = st.text_input(
                INQUIRY_TYPE_LABELS[inquiry_type],
                value=", ".join(current.get(inquiry_type.value, [])),
                placeholder="예: 카드 승인, 결제창",
                key=f"sla_set_kw_{inquiry_type.value}",
            )
        if st.form_submit_button("키워드 저장"):
            _apply(engine, lambda s: inquiries.save_type_keywords(s, actor, words), "분류 키워드를 저장했습니다")
