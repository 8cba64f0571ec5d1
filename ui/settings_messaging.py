"""설정 > 메시지: templates (edit, approved AlimTalk id, live preview for a real customer) and the
automation switches and timings. `render(actor, engine)` is called from pages/settings.py."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine, select

from core import clock, settings_store
from core.accounts.actor import Actor
from core.db import session_scope
from core.errors import ChannelDeskError
from core.messaging import automations, service
from core.messaging.automations import automation_settings
from core.messaging.sender import messaging_settings
from core.models import Customer, MessageKind, Template
from ui import feedback

KIND_LABELS = {MessageKind.INFORMATIONAL.value: "정보성 (알림톡)", MessageKind.ADVERTISING.value: "광고"}


def render(actor: Actor, engine: Engine) -> None:
    tab_templates, tab_automations = st.tabs(["메시지 템플릿", "자동 발송"])
    with tab_templates:
        _templates(actor, engine)
    with tab_automations:
        _automations(actor, engine)


def _templates(actor: Actor, engine: Engine) -> None:
    with session_scope(engine) as session:
        templates = list(session.execute(select(Template).order_by(Template.key)).scalars())
        customers = list(
            session.execute(
                select(Customer.id, Customer.name, Customer.phone).order_by(Customer.id.desc()).limit(200)
            )
        )
    if not templates:
        st.info("템플릿이 없습니다. `python -m core.cli init`으로 기본 템플릿을 만드세요.")
        return
    with session_scope(engine) as session:
        registry = service.template_registry(session)
    unregistered = sum(1 for r in registry if r["알림톡 등록"] == "미등록")
    st.caption(
        f"템플릿 {len(registry)}개 · 알림톡 ID 미등록 {unregistered}개 "
        "(미등록 템플릿의 메시지는 실패하지 않고 보류되었다가 ID를 등록하면 발송됩니다)"
    )
    st.dataframe(registry, hide_index=True)
    by_key = {t.key: t for t in templates}
    key = st.selectbox("템플릿", list(by_key), format_func=lambda k: by_key[k].name, key="setmsg_tpl")
    template = by_key[key]
    st.caption(f"구분: {KIND_LABELS.get(template.kind, template.kind)} · 변수는 #{{변수명}} 형식")
    if template.kind == MessageKind.INFORMATIONAL:
        if template.approved_body == template.body:
            st.success("승인된 본문과 같습니다: 발송 가능")
        else:
            st.warning(
                "본문이 승인된 내용과 다릅니다: 카카오 재승인 후 '승인 완료'를 표시할 때까지 발송하지 않습니다."
            )
    body = st.text_area(
        "본문 (최대 1,000자, 변수 40개)", value=template.body, height=220, key=f"setmsg_body_{key}"
    )
    alimtalk_id = st.text_input(
        "알림톡 템플릿 ID (카카오 승인)", value=template.alimtalk_template_id or "", key=f"setmsg_tplid_{key}"
    )
    approved = False
    if template.kind == MessageKind.INFORMATIONAL:
        approved = st.checkbox(
            "카카오 승인 완료: 이 본문을 승인된 본문으로 표시", key=f"setmsg_approved_{key}"
        )
    if st.button("저장", key="setmsg_save"):
        try:
            with session_scope(engine) as session:
                service.update_template(
                    session, actor, key, body=body, alimtalk_template_id=alimtalk_id, mark_approved=approved
                )
        except ChannelDeskError as exc:
            feedback.failed("set", str(exc))
        else:
            feedback.done("set", f"'{template.name}' 템플릿을 저장했습니다.")

    st.subheader("미리보기")
    options = [None, *[c.id for c in customers]]
    names = {c.id: f"{c.name} ({c.phone or '번호 없음'})" for c in customers}
    customer_id = st.selectbox(
        "고객",
        options,
        format_func=lambda i: "예시 고객" if i is None else names[i],
        key="setmsg_preview_customer",
    )
    with session_scope(engine) as session:
        text, problem = service.preview(session, key, customer_id, body=body)
    st.text(text)
    if problem:
        st.error(f"발송 전 검사 실패: {problem}")


def _history(actor: Actor, engine: Engine) -> None:
    """Past orders (seeded, imported, before the automations went live) trigger nothing unless
    the owner lets the recent ones in here, after seeing how many customers it would reach."""
    now = clock.now()
    with session_scope(engine) as session:
        preview = automations.history_preview(session, now)
    st.markdown("**지난 주문에 리뷰 요청**")
    st.caption(
        "자동 발송은 켜진 뒤의 주문에만 반응합니다. 가져온 주문·데모 주문 같은 지난 주문은 "
        "아래에서 확인하기 전에는 메시지를 보내지 않습니다."
    )
    if preview["customers"] == 0:
        st.caption(f"최근 {preview['window_days']}일 안의 지난 주문 중 리뷰 요청 대상이 없습니다.")
        return
    st.write(
        f"최근 {preview['window_days']}일 지난 주문 {preview['orders']:,}건 · 고객 {preview['customers']:,}명에게 "
        "리뷰 요청을 보냅니다 (고객당 1건, 여러 주문은 한 메시지로)."
    )
    sure = st.checkbox(
        f"고객 {preview['customers']:,}명에게 보내는 것을 확인했습니다", key="setmsg_history_ok"
    )
    if st.button("지난 주문에 리뷰 요청 보내기", key="setmsg_history", disabled=not sure):
        try:
            with session_scope(engine) as session:
                done = automations.include_history(session, actor, now)
        except ChannelDeskError as exc:
            feedback.failed("set", str(exc))
        else:
            feedback.done("set", f"고객 {done['customers']:,}명에게 다음 작업 주기에 리뷰 요청을 보냅니다.")


def _automations(actor: Actor, engine: Engine) -> None:
    _history(actor, engine)
    with session_scope(engine) as session:
        config = automation_settings(session)
        messaging = messaging_settings(session)
    order, review, repurchase = config["order_confirmation"], config["review_request"], config["repurchase"]
    with st.form("setmsg_auto"):
        st.markdown("**주문 확인**: 결제 직후 주문 내용·배송·교환/반품 안내")
        order_on = st.toggle("사용", value=bool(order["enabled"]), key="setmsg_order_on")
        st.markdown("**리뷰 요청**: 배송 완료(없으면 결제) 후 N일, 리뷰 안 쓴 고객에게 한 번 더")
        c1, c2, c3, c4 = st.columns(4)
        review_on = c1.toggle("사용", value=bool(review["enabled"]), key="setmsg_review_on")
        review_days = c2.number_input(
            "요청: 며칠 후", 1, 60, int(review["days_after"]), key="setmsg_review_days"
        )
        reminder_on = c3.toggle(
            "리마인드 사용", value=bool(review["reminder_enabled"]), key="setmsg_reminder_on"
        )
        reminder_days = c4.number_input(
            "리마인드: 요청 며칠 후", 1, 60, int(review["reminder_days"]), key="setmsg_reminder_days"
        )
        st.markdown("**재구매 알림** (광고): 상품별 재구매 주기에 맞춰, 동의·야간·빈도 규칙 적용")
        c1, c2, c3 = st.columns(3)
        repurchase_on = c1.toggle("사용", value=bool(repurchase["enabled"]), key="setmsg_rep_on")
        days_before = c2.number_input(
            "주기보다 며칠 먼저", 0, 30, int(repurchase["days_before"]), key="setmsg_rep_before"
        )
        ad_limit = c3.number_input(
            "고객당 하루 광고 최대 건수", 1, 10, int(messaging["daily_ad_limit"]), key="setmsg_ad_limit"
        )
        if st.form_submit_button("자동 발송 설정 저장"):
            try:
                with session_scope(engine) as session:
                    stored = settings_store.get(session, "automations") or {}
                    stored.update(
                        {
                            "order_confirmation": {**order, "enabled": order_on},
                            "review_request": {
                                **review,
                                "enabled": review_on,
                                "days_after": int(review_days),
                                "reminder_enabled": reminder_on,
                                "reminder_days": int(reminder_days),
                            },
                            "repurchase": {
                                **repurchase,
                                "enabled": repurchase_on,
                                "days_before": int(days_before),
                            },
                        }
                    )
                    settings_store.put(session, actor, "automations", stored)
                    current = settings_store.get(session, "messaging") or {}
                    settings_store.put(
                        session, actor, "messaging", {**current, "daily_ad_limit": int(ad_limit)}
                    )
            except ChannelDeskError as exc:
                feedback.failed("set", str(exc))
            else:
                feedback.done("set", "자동 발송 설정을 저장했습니다.")
