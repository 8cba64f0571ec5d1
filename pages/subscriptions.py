"""정기결제: subscriptions by status, the next 7 days of charges, failed charges to retry, history, actions.

Thin: reads through core.billing, renders, and calls a core service when a person confirms an action.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

import ui
from core import billing, clock
from core.db import session_scope
from core.errors import ChannelDeskError
from core.models import Customer
from core.models.messaging import MESSAGE_STATUS_LABELS
from core.models.subscriptions import (
    CHARGE_ATTEMPT_OUTCOME_LABELS,
    CHARGE_ATTEMPT_VIA_LABELS,
    SUBSCRIPTION_STATUS_LABELS,
    Subscription,
    SubscriptionStatus,
)
from core.money import format_krw
from ui import dates, feedback
from ui.labels import history_detail, reason_label, template_label
from ui.tables import show_rows

CHARGE_STATUS_LABELS = {"pending": "대기", "succeeded": "결제 완료", "failed": "실패", "unknown": "확인 중"}
EVENT_LABELS = {
    "created": "가입",
    "paused": "일시정지",
    "resumed": "재개",
    "cancel_scheduled": "해지 예약",
    "canceled": "해지",
    "amount_changed": "금액 변경",
    "plan_changed": "요금제 변경",
    "instrument_changed": "결제수단 변경",
    "charge_succeeded": "결제 성공",
    "charge_failed": "결제 실패",
    "charge_unknown": "결과 확인 중",
    "dunning_ended": "재시도 종료",
    "charge_paid_twice": "이중 결제 (환불 필요)",
    "charge_moved": "결제일 조정 (사전 안내)",
    "charge_needs_person": "담당자 확인 필요",
    "moved_past_review": "다음 결제 진행 (이전 결제 확인 중)",
}

RETRY_OUTCOME_WORDS = {"succeeded": "결제되었습니다", "failed": "다시 실패했습니다", "unknown": "결과 확인 중입니다"}

PAGE = "sub"
actor = ui.current_actor()
engine = ui.engine()
today = clock.today_kst()
st.title("정기결제")

feedback.show(PAGE)


def run_action(label: str, action) -> None:  # type: ignore[no-untyped-def]
    """Call a core service in one transaction; a toast in view, the subscription marked in the list,
    and when the change moved the next charge, say so (its notice goes out first)."""
    try:
        with session_scope(engine) as session:
            subscription = action(session)
            moved = billing.last_move_words(session, subscription.id) if subscription is not None else None
            changed = subscription.id if subscription is not None else None
    except ChannelDeskError as exc:
        feedback.failed(PAGE, f"{label} 실패: {exc}")
    else:
        feedback.done(PAGE, f"{label} 완료" + (f". {moved}" if moved else ""), highlight=("sub", changed))


with session_scope(engine) as session:
    counts = billing.status_counts(session)
    upcoming = billing.upcoming_charges(session, today, 7)
    failed = billing.failed_charges(session)

columns = st.columns(4)
for column, status in zip(columns, SubscriptionStatus, strict=False):
    column.metric(SUBSCRIPTION_STATUS_LABELS[status], f"{counts.get(status.value, 0):,}건")

st.subheader("다가오는 7일 결제")
if upcoming:
    st.dataframe(
        [
            {"결제일": f"{u['date']:%Y-%m-%d}", "건수": u["count"], "금액": format_krw(u["amount"])}
            for u in upcoming
        ],
        hide_index=True,
        width="stretch",
        key="sub_upcoming",
    )
    st.caption(
        f"합계 {sum(u['count'] for u in upcoming):,}건 · {format_krw(sum(u['amount'] for u in upcoming))}"
    )
else:
    st.info(f"{today:%m월 %d일}부터 7일 동안 예정된 결제가 없습니다.")

st.subheader("결제 실패 · 확인 필요")
if failed:
    marked = feedback.highlighted(PAGE)
    failed_rows = [
            {
                "번호": charge.id,
                "고객": customer.name,
                "결제일": f"{charge.period:%Y-%m-%d}",
                "금액": format_krw(charge.amount),
                "상태": CHARGE_STATUS_LABELS.get(charge.status, charge.status),
                "사유": reason_label(charge.failure_code, charge.failure_message),
                "재시도": "수동만"
                if charge.hard_decline
                else "담당자 확인 필요"
                if charge.next_retry_at is None
                else clock.format_kst(charge.next_retry_at),
                "시도": charge.attempt_count,
                "구독 상태": SUBSCRIPTION_STATUS_LABELS.get(sub.status, sub.status),
            }
            for charge, sub, customer in failed
    ]
    show_rows(
        failed_rows,
        key="sub_failed",
        highlight=lambda i: marked == ("sub", failed[i][1].id),
    )
    retry_options = {
        f"{cu.name} · {c.period:%Y-%m-%d} · {format_krw(c.amount)} ({c.id}번)": c.id for c, _, cu in failed
    }
    charge_subs = {c.id: sub.id for c, sub, _ in failed}
    with st.form("sub_retry_form"):
        chosen = st.selectbox("재시도할 결제", list(retry_options), key="sub_retry_pick")
        sure = st.checkbox("고객과 확인했고, 지금 다시 결제합니다", key="sub_retry_confirm")
        if st.form_submit_button("지금 재시도"):
            if not sure:
                st.warning("확인란을 먼저 선택하세요.")
            else:
                charge_id = retry_options[chosen]
                try:
                    outcome = billing.retry_charge(engine, actor, charge_id)
                except ChannelDeskError as exc:
                    feedback.failed(PAGE, f"재시도 실패: {exc}")
                else:
                    words = RETRY_OUTCOME_WORDS.get(outcome, "결과 확인 중입니다")
                    feedback.done(
                        PAGE, f"재시도: {words}", highlight=("sub", charge_subs[charge_id]), info=outcome != "succeeded"
                    )
else:
    st.success("실패한 결제가 없습니다.")

st.subheader("구독")
status_names = {"전체": None} | {label: status.value for status, label in SUBSCRIPTION_STATUS_LABELS.items()}
status_pick = st.selectbox("상태", list(status_names), key="sub_status_filter")
with session_scope(engine) as session:
    subscriptions = billing.list_subscriptions(session, status_names[status_pick])


def _list_and_detail(subscriptions: list[tuple[Subscription, Customer, str]]) -> None:
    """The list, one subscription's history and its changes. A function so that an empty list can
    end the page by returning: st.stop() would also drop a click queued while this run was going."""
    marked = feedback.highlighted(PAGE)
    show_rows(
        [
            {
                "번호": sub.id,
                "고객": customer.name,
                "상품": plan_name,
                "금액": format_krw(sub.amount) + (f" → {format_krw(sub.next_amount)}" if sub.next_amount else ""),
                "상태": SUBSCRIPTION_STATUS_LABELS.get(sub.status, sub.status),
                "다음 결제일": f"{sub.next_charge_date:%Y-%m-%d}" if sub.next_charge_date else "-",
                "비고": ("기간 종료 시 해지" if sub.cancel_at_period_end else "")
                + (f"{sub.paused_until:%m/%d} 재개" if sub.paused_until else "")
                + ("" if sub.instrument_ref else "결제수단 없음"),
            }
            for sub, customer, plan_name in subscriptions
        ],
        key="sub_list",
        highlight=lambda i: marked == ("sub", subscriptions[i][0].id),
    )

    labels = {f"{customer.name} · {plan_name} ({sub.id}번)": sub.id for sub, customer, plan_name in subscriptions}
    picked = labels[st.selectbox("구독 상세", list(labels), key="sub_pick")]
    with session_scope(engine) as session:
        record = billing.history(session, picked)
    selected = next(sub for sub, _, _ in subscriptions if sub.id == picked)

    tab_history, tab_actions = st.tabs(["결제 기록", "변경"])
    with tab_history:
        st.markdown("**결제**")
        st.dataframe(
            [
                {
                    "결제일": f"{c.period:%Y-%m-%d}",
                    "금액": format_krw(c.amount),
                    "상태": CHARGE_STATUS_LABELS.get(c.status, c.status),
                    "시도": c.attempt_count,
                    "사유": c.failure_message or "",
                    "주문": c.order_id or "",
                }
                for c in record["charges"]
            ],
            hide_index=True,
            width="stretch",
            key="sub_hist_charges",
        )
        st.markdown("**결제 시도** (시도마다 그때의 사유)")
        periods = {c.id: c.period for c in record["charges"]}
        st.dataframe(
            [
                {
                    "결제일": f"{periods[a.charge_id]:%Y-%m-%d}",
                    "시도": a.number,
                    "시각": clock.format_kst(a.at),
                    "방식": CHARGE_ATTEMPT_VIA_LABELS.get(a.via, a.via),
                    "결과": CHARGE_ATTEMPT_OUTCOME_LABELS.get(a.outcome, "기타"),
                    "사유": reason_label(a.failure_code, a.failure_message),
                }
                for a in record["attempts"]
            ],
            hide_index=True,
            width="stretch",
            key="sub_hist_attempts",
        )
        st.markdown("**안내 메시지**")
        st.dataframe(
            [
                {
                    "시각": clock.format_kst(m.created_at),
                    "종류": template_label(m.template_key),
                    "상태": MESSAGE_STATUS_LABELS.get(m.status, "기타"),
                    "내용": m.text,
                }
                for m in record["messages"]
            ],
            hide_index=True,
            width="stretch",
            key="sub_hist_messages",
        )
        st.markdown("**이력**")
        st.dataframe(
            [
                {
                    "시각": clock.format_kst(e.at),
                    "내용": EVENT_LABELS.get(e.kind, e.kind),
                    "상세": history_detail(e.detail),
                }
                for e in record["events"]
            ],
            hide_index=True,
            width="stretch",
            key="sub_hist_events",
        )

    with tab_actions:
        if selected.status == SubscriptionStatus.CANCELED:
            st.info("해지된 구독입니다.")
        else:
            with st.form("sub_pause_form"):
                st.markdown("**일시정지 / 재개**")
                resume_on = dates.day_select(
                    "재개일",
                    None,
                    key="sub_pause_until",
                    first=today + timedelta(days=1),
                    last=today + timedelta(days=366),
                    empty="정하지 않음 (직접 재개)",
                )
                sure = st.checkbox("고객에게 안내됩니다. 진행할까요?", key="sub_pause_confirm")
                pause_clicked = st.form_submit_button("일시정지")
                resume_clicked = st.form_submit_button("지금 재개")
            if (pause_clicked or resume_clicked) and not sure:
                st.warning("확인란을 먼저 선택하세요.")
            elif pause_clicked:
                run_action("일시정지", lambda s: billing.pause(s, actor, picked, resume_on=resume_on))
            elif resume_clicked:
                run_action("재개", lambda s: billing.resume(s, actor, picked))

            with st.form("sub_amount_form"):
                st.markdown("**금액 변경 (다음 결제부터)**")
                amount = st.number_input(
                    "새 금액(원)",
                    min_value=0,
                    step=1000,
                    value=int(selected.next_amount or selected.amount),
                    key="sub_amount",
                )
                sure = st.checkbox("다음 결제부터 이 금액으로 결제됩니다", key="sub_amount_confirm")
                if st.form_submit_button("금액 변경"):
                    if not sure:
                        st.warning("확인란을 먼저 선택하세요.")
                    else:
                        run_action("금액 변경", lambda s: billing.change_amount(s, actor, picked, int(amount)))

            with st.form("sub_cancel_form"):
                st.markdown("**해지**")
                when = st.radio(
                    "해지 시점", ["이번 기간 종료 시", "지금 즉시"], key="sub_cancel_when", horizontal=True
                )
                reason = st.text_input("사유", key="sub_cancel_reason", max_chars=200)
                sure = st.checkbox("해지하면 되돌릴 수 없습니다", key="sub_cancel_confirm")
                if st.form_submit_button("해지"):
                    if not sure:
                        st.warning("확인란을 먼저 선택하세요.")
                    else:
                        run_action(
                            "해지",
                            lambda s: billing.cancel(
                                s, actor, picked, at_period_end=when == "이번 기간 종료 시", reason=reason
                            ),
                        )


if subscriptions:
    _list_and_detail(subscriptions)
else:
    st.info("구독이 없습니다.")
