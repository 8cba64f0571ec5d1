"""One inquiry on 문의 (pages/inquiries.py): its deadlines, the conversation, the customer panel and
every action (claim, wait, resolve, type, assign, receipt, reply, notes, refund).

Each action is one core service through ui.inquiry_desk.run (role checked and audited there); the
customer's words are shown with st.text, never as markdown or HTML.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from sqlalchemy import Engine

import ui
from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.errors import ChannelDeskError
from core.inquiries import panel as inquiry_panel
from core.inquiries import queue as inquiry_queue
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.models import Payment
from core.models.inquiries import INQUIRY_STATUS_LABELS, INQUIRY_TYPE_LABELS
from core.money import format_krw
from ui import inquiry_desk as desk
from ui.inquiry_desk import TYPE_OPTIONS, run
from ui.labels import VIP_BADGE, gateway_label

WEEKDAYS = "월화수목금토일"
EVENT_LABELS = {
    "created": "고객 문의",
    "customer_message": "고객 메시지",
    "reply": "답변",
    "note": "내부 메모",
    "wait_customer": "고객 응답 대기",
    "resolve": "해결",
    "reopen": "다시 열기",
    "assign": "배정",
    "receipt": "영수증 발송",
    "refund": "환불",
    "type_change": "유형 변경",
}


def _short_due(at: datetime | None) -> str:
    """A deadline as people say it, short enough for a metric card: "12월 4일(금) 14:30"."""
    if at is None:
        return "일시정지"
    local = clock.to_kst(at)
    return f"{local.month}월 {local.day}일({WEEKDAYS[local.weekday()]}) {local:%H:%M}"


def _payment_text(payment: Payment) -> str:
    """A payment as the person knows it: who, how much, when (not its row id)."""
    return f"{gateway_label(payment.gateway)} {format_krw(payment.amount)} · {clock.format_kst(payment.approved_at)}"


def render(
    engine: Engine, actor: Actor, inquiry_id: int, staff_names: dict[int, str], changed: object
) -> None:
    """The opened inquiry under the queue; `changed` is the inquiry the last action marked."""
    try:
        with session_scope(engine) as session:
            info = inquiry_queue.detail(session, inquiry_id)
            customer_panel = inquiry_panel.customer_panel(session, info.inquiry.customer_id)
    except ChannelDeskError as exc:
        st.error(str(exc))
        return
    payments_by_id = {p.id: p for p in [*info.payments, *customer_panel.payments]}
    _summary(info, changed)
    left, right = st.columns([3, 2])
    with left:
        _conversation(info)
    with right:
        desk.customer_panel(engine, actor, info.inquiry, customer_panel)
    desk.look_alike_pairs(engine, actor, info.inquiry, customer_panel)
    _actions(actor, info, staff_names, payments_by_id)
    desk.macro_buttons(engine, actor, info.inquiry)
    _messages(actor, info)
    _refund(actor, info, payments_by_id)


def _summary(info: inquiry_queue.InquiryDetail, changed: object) -> None:
    inquiry = info.inquiry
    st.subheader(f"{inquiry.id}번 문의 · {INQUIRY_TYPE_LABELS.get(inquiry.type, inquiry.type)}")
    if changed == inquiry.id:
        st.caption(":orange-badge[:material/edit: 방금 처리함]")
    if info.vip or inquiry.vip:  # VIP now, or when they wrote (then the VIP targets time this inquiry)
        st.markdown(f"{VIP_BADGE} 고객")
    st.text(inquiry.subject)
    nearest = info.sla.nearest
    # Two by two: a due time like "12월 4일(금) 14:30" fits whole, on a desktop and a phone.
    m1, m2 = st.columns(2)
    m3, m4 = st.columns(2)
    m1.metric("처리 상태", INQUIRY_STATUS_LABELS.get(inquiry.status, inquiry.status))
    m2.metric("기한 상태", sla.SLA_STATE_LABELS[nearest.state])
    m3.metric("첫 응답 기한", _short_due(info.sla.first_response.due_at))
    m4.metric("해결 기한", _short_due(info.sla.resolution.due_at))
    st.caption(
        f"고객 {ui.md_escape(info.customer.name)} · 담당 {info.staff_names.get(inquiry.assignee_id, '미배정')} · "
        f"접수 {clock.format_kst(inquiry.created_at)} · 휴일·영업시간 없이 24시간으로 세면 "
        f"{clock.format_kst(nearest.wall_clock_due_at)}까지"
    )


def _conversation(info: inquiry_queue.InquiryDetail) -> None:
    st.markdown("**대화 기록**")
    for event in info.events:
        who = "user" if event.kind in ("created", "customer_message") else "assistant"
        with st.chat_message(who):
            author = (
                info.staff_names.get(event.author_id, "워커")
                if event.author_id
                else ("고객" if who == "user" else "워커")
            )
            st.caption(
                f"{EVENT_LABELS.get(event.kind, event.kind)} · {author} · "
                f"{clock.format_kst(event.at, with_seconds=True)}"
            )
            if event.body:
                st.text(event.body)  # customer text: plain text, never markdown or HTML


def _actions(
    actor: Actor,
    info: inquiry_queue.InquiryDetail,
    staff_names: dict[int, str],
    payments_by_id: dict[int, Payment],
) -> None:
    """Claim, wait on the customer, resolve or reopen, change the type, assign, send a receipt."""
    inquiry = info.inquiry
    st.markdown("**처리**")
    iid = inquiry.id
    is_open = inquiry.status != "resolved"
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("담당하기", key="inq_claim", disabled=inquiry.assignee_id == actor.id):
        run(lambda s: inquiries.claim(s, actor, iid), "담당자로 지정되었습니다", iid)
    if b2.button("고객 응답 대기", key="inq_wait", disabled=inquiry.status != "open"):
        run(
            lambda s: inquiries.wait_on_customer(s, actor, iid),
            "고객 응답 대기로 바꿨습니다 (기한 일시정지)",
            iid,
        )
    if is_open and b3.button("해결", key="inq_resolve", type="primary"):
        run(lambda s: inquiries.resolve(s, actor, iid), "해결 처리했습니다", iid)
    if not is_open and b3.button("다시 열기", key="inq_reopen"):
        run(lambda s: inquiries.reopen(s, actor, iid), "다시 열었습니다", iid)
    new_type = b4.selectbox(
        "유형",
        TYPE_OPTIONS,
        index=TYPE_OPTIONS.index(inquiry.type) if inquiry.type in TYPE_OPTIONS else 0,
        format_func=lambda t: INQUIRY_TYPE_LABELS[t],
        # The current type in the key: a type changed elsewhere (bulk, a colleague) starts a fresh
        # picker instead of a stale choice that would change the type straight back.
        key=f"inq_type_edit_{iid}_{inquiry.type}",
    )
    if new_type != inquiry.type:
        run(lambda s: inquiries.change_type(s, actor, iid, new_type), "유형을 바꿨습니다", iid)

    a1, a2 = st.columns(2)
    with a1:
        assignee = st.selectbox(
            "배정",
            list(staff_names),
            format_func=lambda v: staff_names[v],
            key="inq_assign_to",
            index=None,
            placeholder="담당자 선택",
        )
        if st.button("배정", key="inq_assign", disabled=assignee is None):
            run(lambda s: inquiries.assign(s, actor, iid, assignee), "배정했습니다", iid)
    with a2:
        approved = [p for p in info.payments if p.approved_at is not None]
        receipt_payment = st.selectbox(
            "영수증 보낼 결제",
            [p.id for p in approved],
            key="inq_receipt_pay",
            format_func=lambda i: _payment_text(payments_by_id[i]),
            index=0 if approved else None,
        )
        if st.button(
            "전자 영수증 보내기", key="inq_receipt", disabled=receipt_payment is None or not is_open
        ):
            run(
                lambda s: inquiries.send_receipt(s, actor, iid, receipt_payment),
                "영수증 발송을 예약했습니다",
                iid,
            )


def _messages(actor: Actor, info: inquiry_queue.InquiryDetail) -> None:
    """The reply to the customer, a customer message copied from KakaoTalk, an internal note."""
    iid = info.inquiry.id
    is_open = info.inquiry.status != "resolved"
    # Not a form: what is typed reaches the server on leaving the box, so a macro inserted
    # afterwards is added to it instead of replacing it. Kept when sending fails (a #{...} left,
    # a closed inquiry); only a sent reply empties the box.
    with st.container(border=True, key="inq_reply_box"):
        reply_text = st.text_area("고객에게 답변", key="inq_reply_text", max_chars=inquiries.MAX_TEXT)
        if st.button("답변 보내기", key="inq_reply_send", disabled=not is_open, type="primary"):
            run(
                lambda s: desk.sent(inquiries.reply(s, actor, iid, reply_text)),
                "답변을 기록하고 발송 대기열에 넣었습니다",
                iid,
            )
    c1, c2 = st.columns(2)
    with c1, st.form("inq_customer_form", clear_on_submit=True):
        customer_text = st.text_area(
            "고객 메시지 기록 (카카오톡에서 옮겨 적기)",
            key="inq_customer_text",
            max_chars=inquiries.MAX_TEXT,
        )
        if st.form_submit_button("고객 메시지 추가"):
            run(
                lambda s: inquiries.customer_message(s, actor, iid, customer_text),
                "고객 메시지를 기록했습니다",
                iid,
            )
    with c2, st.form("inq_note_form", clear_on_submit=True):
        note_text = st.text_area(
            "내부 메모 (고객에게 보이지 않음)", key="inq_note_text", max_chars=inquiries.MAX_TEXT
        )
        if st.form_submit_button("메모 남기기"):
            run(lambda s: inquiries.add_note(s, actor, iid, note_text), "메모를 남겼습니다", iid)


def _refund(actor: Actor, info: inquiry_queue.InquiryDetail, payments_by_id: dict[int, Payment]) -> None:
    """A full or partial refund of one of the inquiry's payments, confirmed first."""
    iid = info.inquiry.id
    refundable = [p for p in info.payments if p.approved_at is not None and p.amount > p.refunded_amount]
    with st.expander("환불 (전액·부분)", key="inq_refund_open"):
        if not refundable:
            st.info("환불할 수 있는 결제가 없습니다.")
            return
        pay_id = st.selectbox(
            "결제",
            [p.id for p in refundable],
            key="inq_refund_pay",
            format_func=lambda i: next(
                f"{_payment_text(payments_by_id[p.id])} (환불 가능 {format_krw(p.amount - p.refunded_amount)})"
                for p in refundable
                if p.id == i
            ),
        )
        payment = next(p for p in refundable if p.id == pay_id)
        limit = payment.amount - payment.refunded_amount
        amount = st.number_input(
            "환불 금액 (원)",
            min_value=1,
            max_value=limit,
            value=limit,
            step=1000,
            key="inq_refund_amount",
        )
        reason = st.text_input("환불 사유", key="inq_refund_reason", max_chars=500)
        confirm = st.checkbox(f"{format_krw(int(amount))} 환불을 확인합니다", key="inq_refund_confirm")
        if st.button("환불하기", key="inq_refund", disabled=not confirm, type="primary"):
            run(
                lambda s: inquiries.refund(
                    s, actor, iid, payment_id=pay_id, amount=int(amount), reason=reason
                ),
                f"{format_krw(int(amount))} 환불을 요청했습니다",
                iid,
            )
