"""The helpdesk parts of 문의 (saved replies, the customer panel, look-alike payments side by side).

Kept out of pages/inquiries.py so the page stays a list of sections; every action here is one core
service through ui.feedback (role checked and audited there), and every customer word is shown with
st.text / st.dataframe / escaped markdown, never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import streamlit as st
from sqlalchemy import Engine

import ui
from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.errors import ChannelDeskError
from core.inquiries import macros
from core.inquiries import panel as inquiry_panel
from core.inquiries import queue as inquiry_queue
from core.models import Inquiry, Role
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.models.orders import ORDER_STATUS_LABELS, PAYMENT_STATUS_LABELS
from core.money import format_krw
from core.payments.refunds import unknown_outcome_notes_for
from ui import feedback
from ui.labels import gateway_label

PAGE = "inq"
RULE_TEXT = {"same_order": "같은 주문에 결제 두 번", "same_amount": "같은 금액이 짧은 간격으로 두 번"}
MAX_LIVE_LOOKUPS = 20
TYPE_OPTIONS = list(INQUIRY_TYPE_LABELS)


def run(action: Callable[[Any], Any], success: str, item: int | None = None) -> NoReturn:
    """Call one core service in its own transaction; the result as a toast, the inquiry marked."""
    feedback.run(PAGE, action, success, highlight=lambda _: item)


# --------------------------------------------------------------------------- saved replies


def sent(result: Any) -> Any:
    """Called with the reply service's result inside the action: the next run empties the reply box."""
    st.session_state["inq_reply_clear"] = True
    return result


def _insert(text: str) -> None:
    st.session_state["inq_reply_text"] = macros.insert(st.session_state.get("inq_reply_text") or "", text)


def macro_buttons(engine: Engine, actor: Actor, inquiry: Inquiry) -> None:
    """One button per saved reply of this inquiry's type; a click puts it, filled in, into the reply box."""
    if st.session_state.pop("inq_reply_clear", False):
        st.session_state["inq_reply_text"] = ""
    with session_scope(engine) as session:
        offered = macros.for_type(session, inquiry.type)
        values = macros.values_for(session, inquiry.id, actor)  # type: ignore[arg-type]
    if offered:
        st.markdown("**매크로** · 누르면 답변 칸에 들어갑니다")
        with st.container(horizontal=True, key="inq_macros"):
            for macro in offered:
                rendered = macros.render(macro.body, values)
                st.button(
                    ui.md_escape(macro.title),
                    key=f"inq_macro_{macro.id}",
                    on_click=_insert,
                    args=(rendered.text,),
                    help=("값 없음: " + ", ".join(rendered.missing)) if rendered.missing else None,
                    icon=":material/warning:" if rendered.missing else ":material/bolt:",
                )
    left = macros.unfilled(st.session_state.get("inq_reply_text") or "")
    if left:
        st.warning(
            f"값이 없는 변수: {' '.join(left)} · 보내기 전에 직접 써 넣으세요 (이대로는 보내지지 않습니다)",
            icon=":material/warning:",
        )


def macro_admin(engine: Engine, actor: Actor) -> None:
    """The macro list for everyone; the owner adds, edits and deletes (audited setting changes)."""
    with session_scope(engine) as session:
        saved = macros.load(session)
    is_owner = actor.role == Role.OWNER
    st.caption("쓸 수 있는 변수: " + " · ".join(f"#{{{name}}} {what}" for name, what in macros.VARIABLES.items()))
    if not is_owner:
        st.caption("매크로는 사장님이 고칠 수 있습니다.")
    types = list(INQUIRY_TYPE_LABELS)
    for macro in saved:
        offered = ", ".join(INQUIRY_TYPE_LABELS[t] for t in macro.types if t in INQUIRY_TYPE_LABELS) or "모든 유형"
        with st.expander(f"{ui.md_escape(macro.title)} · {offered}"):
            if not is_owner:
                st.text(macro.body)
                continue
            with st.form(f"inq_macro_edit_{macro.id}"):
                title = st.text_input("이름", macro.title, max_chars=macros.MAX_TITLE)
                body = st.text_area("내용", macro.body, max_chars=macros.MAX_BODY)
                chosen = st.multiselect(
                    "유형 (비우면 모든 유형)", types, [t for t in macro.types if t in types],
                    format_func=lambda t: INQUIRY_TYPE_LABELS[t],
                )
                if st.form_submit_button("저장"):
                    feedback.run(
                        PAGE,
                        lambda s, m=macro.id, ti=title, b=body, c=chosen: macros.save(
                            s, actor, title=ti, body=b, types=c, macro_id=m
                        ),
                        "매크로를 저장했습니다",
                    )
            if st.button("삭제", key=f"inq_macro_delete_{macro.id}"):
                feedback.run(PAGE, lambda s, m=macro.id: macros.delete(s, actor, m), "매크로를 지웠습니다")
    if is_owner:
        with st.form("inq_macro_new", clear_on_submit=True):
            st.markdown("**새 매크로**")
            title = st.text_input("이름", key="inq_macro_new_title", max_chars=macros.MAX_TITLE)
            body = st.text_area("내용", key="inq_macro_new_body", max_chars=macros.MAX_BODY,
                                placeholder="#{고객명}님, 주문 #{주문번호} 확인했습니다.")
            chosen = st.multiselect("유형 (비우면 모든 유형)", types, key="inq_macro_new_types",
                                    format_func=lambda t: INQUIRY_TYPE_LABELS[t])
            if st.form_submit_button("추가"):
                feedback.run(
                    PAGE, lambda s: macros.save(s, actor, title=title, body=body, types=chosen), "매크로를 추가했습니다"
                )


# --------------------------------------------------------------------------- customer panel


def _live_key(customer_id: int) -> str:
    return f"inq_gateway_status_{customer_id}"


def customer_panel(engine: Engine, actor: Actor, inquiry: Inquiry, data: inquiry_panel.CustomerPanel) -> None:
    """Every order and payment of the customer; look-alike payments tinted; gateway status on request."""
    pair_of = {p.later_id: p for p in data.look_alikes}
    first_of = {p.original_id for p in data.look_alikes}
    live: dict[int, str] = st.session_state.get(_live_key(inquiry.customer_id), {})
    more_orders = f" (최근 {len(data.orders):,}건)" if data.orders_total > len(data.orders) else ""
    st.markdown(f"**고객의 주문 {data.orders_total:,}건**{more_orders}")
    st.dataframe(
        [
            {
                "주문번호": o.order_number,
                "금액": format_krw(o.total_amount),
                "환불": format_krw(o.refunded_amount),
                "상태": ORDER_STATUS_LABELS.get(o.status, o.status),
                "주문 시각": clock.format_kst(o.ordered_at),
            }
            for o in data.orders
        ],
        hide_index=True,
        width="stretch",
        key="inq_orders",
    )
    more_payments = f" (최근 {len(data.payments):,}건)" if data.payments_total > len(data.payments) else ""
    st.markdown(f"**고객의 결제 {data.payments_total:,}건**{more_payments}")
    # Look-alikes first and named in their own column (a pandas Styler tint cost ~120 ms a run);
    # the pairs themselves are shown side by side under the panel.
    flagged = set(pair_of) | first_of
    ordered = sorted(data.payments, key=lambda p: p.id not in flagged)
    st.dataframe(
        [
            {
                "중복 의심": (
                    f"중복 의심 · {pair_of[p.id].original_id}번과 같음"
                    if p.id in pair_of
                    else ("중복 의심 · 먼저 낸 결제" if p.id in first_of else "")
                ),
                "결제": p.id,
                "금액": format_krw(p.amount),
                "환불": format_krw(p.refunded_amount),
                "상태": PAYMENT_STATUS_LABELS.get(p.status, p.status),
                "결제 대행사": gateway_label(p.gateway),
                "승인": clock.format_kst(p.approved_at, with_seconds=True),
                "대행사 상태": live.get(p.id, "조회 전" if p.gateway_tid else "-"),
            }
            for p in ordered
        ],
        hide_index=True,
        width="stretch",
        key="inq_payments",
        column_config={"결제": st.column_config.NumberColumn(format="%d번")},
    )
    with session_scope(engine) as session:
        for note in unknown_outcome_notes_for(session, data.payments):
            st.warning(note)
    with_tid = [p.id for p in data.payments if p.gateway_tid][:MAX_LIVE_LOOKUPS]
    if with_tid and st.button("결제 대행사 실시간 상태 조회", key="inq_live", icon=":material/sync:"):
        found: dict[int, str] = {}
        for payment_id in with_tid:  # on a click only, never on every rerun
            try:
                with session_scope(engine) as session:
                    result = inquiry_queue.live_payment_status(session, payment_id)
                found[payment_id] = (
                    f"{result['status']} · 취소 {format_krw(result['canceled'])} · "
                    f"취소 가능 {format_krw(result['cancel_available'])}"
                )
            except ChannelDeskError as exc:
                found[payment_id] = f"조회 실패: {exc}"
        st.session_state[_live_key(inquiry.customer_id)] = found
        st.rerun()
    if live:
        st.caption(f"대행사 상태: 이 화면에서 방금 조회한 값입니다 ({len(live)}건)")


def look_alike_pairs(
    engine: Engine, actor: Actor, inquiry: Inquiry, data: inquiry_panel.CustomerPanel
) -> None:
    """Each look-alike pair side by side; the later one refunded with one confirmed click."""
    if not data.look_alikes:
        return
    window_minutes = int(data.window.total_seconds() // 60)
    st.markdown(f"**중복으로 보이는 결제 {len(data.look_alikes)}쌍** · 같은 금액 {window_minutes}분 안 또는 같은 주문")
    for pair in data.look_alikes:
        first, later = data.payment(pair.original_id), data.payment(pair.later_id)
        with st.container(border=True, key=f"inq_pair_{later.id}"):
            st.markdown(
                f":orange-badge[:material/content_copy: 중복 의심] {RULE_TEXT[pair.rule]} · "
                f"나중 결제가 {inquiry_panel.gap_text(pair.gap_seconds)}"
            )
            c1, c2 = st.columns(2)
            for column, label, payment in ((c1, "먼저 낸 결제 (유지)", first), (c2, "나중 결제", later)):
                with column:
                    st.markdown(f"**{label}** · {payment.id}번")
                    st.metric("금액", format_krw(payment.amount))
                    st.caption(
                        f"{gateway_label(payment.gateway)} · 승인 {inquiry_panel.when(payment.approved_at)} · "
                        f"{PAYMENT_STATUS_LABELS.get(payment.status, payment.status)} · "
                        f"환불 {format_krw(payment.refunded_amount)}"
                    )
            left = later.amount - later.refunded_amount
            if left <= 0:
                st.success("나중 결제는 전액 환불되었습니다.", icon=":material/check_circle:")
                continue
            sure = st.checkbox(
                f"나중 결제 {later.id}번의 {format_krw(left)} 환불을 확인합니다", key=f"inq_pair_ok_{later.id}"
            )
            if st.button(
                f"나중 결제 {format_krw(left)} 환불",
                key=f"inq_pair_refund_{later.id}",
                disabled=not sure,
                type="primary",
            ):
                feedback.run(
                    PAGE,
                    lambda s, o=first.id, later_id=later.id: inquiry_panel.refund_later(
                        s, actor, inquiry.id, original_id=o, later_id=later_id  # type: ignore[arg-type]
                    ),
                    lambda refund, amount=left: _refund_message(refund, amount),
                    highlight=lambda _: inquiry.id,
                )


def _refund_message(refund: Any, amount: int) -> str:
    status = getattr(refund, "status", "")
    if status == "succeeded":
        return f"{format_krw(amount)} 환불했습니다"
    return f"{format_krw(amount)} 환불을 요청했습니다 (결과 확인 중이면 자동으로 확인합니다)"
