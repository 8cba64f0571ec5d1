"""Public payment page (no login): a customer opens ?link=CODE and pays it.

With KakaoPay the page readies the payment when the customer starts paying and sends them to
KakaoPay's own page; KakaoPay sends them back here with `result=ok&pg_token=...` (approve),
`result=cancel` or `result=fail`. With the embedded sandbox this page plays KakaoPay's page:
choosing a method gives the pg_token, and the same approve follows.
"""

from __future__ import annotations

import streamlit as st

import ui
from core import billing, clock  # noqa: F401 (billing registers the dunning-link hooks)
from core.db import session_scope
from core.errors import ChannelDeskError
from core.models import PaymentLinkStatus
from core.money import format_krw
from core.payments import links as payment_links
from core.safe_text import has_control_chars

engine = ui.engine()
st.title("결제하기")
params = st.query_params
code = params.get("link", "")
if not code or len(code) > 64 or has_control_chars(code):  # refused at the edge (NUL broke PostgreSQL)
    st.error("결제 링크가 올바르지 않습니다.")
    st.stop()

result, attempt = params.get("result", ""), params.get("attempt") or None
if result == "ok" and st.session_state.get("pay_returned") != (code, attempt):
    st.session_state["pay_returned"] = (code, attempt)
    try:
        with session_scope(engine) as session:
            order = payment_links.pay_link(
                session, code, pg_token=params.get("pg_token", ""), attempt=attempt
            )
            number = order.order_number
        st.success(f"결제가 완료되었습니다. 주문번호 {number}")
        st.stop()
    except ChannelDeskError as exc:
        st.error(payment_links.customer_message(exc))
elif result in ("cancel", "fail") and st.session_state.get("pay_returned") != (code, attempt):
    st.session_state["pay_returned"] = (code, attempt)
    try:
        with session_scope(engine) as session:
            payment_links.return_from_gateway(session, code, result, attempt=attempt)
        if result == "cancel":
            st.warning("결제를 취소했습니다. 언제든 다시 결제할 수 있습니다.")
        else:
            st.error("결제에 실패했습니다. 다시 시도해 주세요.")
    except ChannelDeskError as exc:
        st.error(payment_links.customer_message(exc))

try:
    with session_scope(engine) as session:
        if st.session_state.get("pay_opened") != code:
            link = payment_links.open_link(session, code)
            st.session_state["pay_opened"] = code
        else:
            link = payment_links.get_link(session, code)
        needs_contact = link.customer_id is None
        hosted = payment_links.is_hosted(session, link)
except ChannelDeskError as exc:
    st.error(payment_links.customer_message(exc))
    st.stop()

st.subheader(ui.md_escape(link.item_name))  # staff-typed: shown as text, never as links or images
st.markdown(f"결제 금액 **{format_krw(link.amount)}**")
if link.memo:
    st.caption(ui.md_escape(link.memo))
if link.status == PaymentLinkStatus.PAID:
    st.success("결제가 완료되었습니다. 감사합니다.")
    st.stop()
if link.status == PaymentLinkStatus.EXPIRED:
    st.error("만료된 결제 링크입니다. 상담원에게 새 링크를 요청해 주세요.")
    st.stop()
if link.expires_at:
    st.caption(f"{clock.format_kst(link.expires_at)}까지 결제할 수 있습니다.")
name = phone = None
if needs_contact:
    name = st.text_input("이름", key="pay_name")
    phone = st.text_input("휴대폰 번호", key="pay_phone")

if hosted:
    if st.button(f"카카오페이로 {format_krw(link.amount)} 결제하기", type="primary", key="pay_start"):
        try:
            with session_scope(engine) as session:
                start = payment_links.start_payment(session, code, customer_name=name, customer_phone=phone)
            agent = (st.context.headers.get("User-Agent") or "").lower()
            mobile = any(word in agent for word in ("mobile", "android", "iphone"))
            target = (start.redirect_mobile_url if mobile else None) or start.redirect_pc_url
            st.link_button("카카오페이 결제 화면으로 이동", target or "", type="primary")
        except ChannelDeskError as exc:
            st.error(payment_links.customer_message(exc))
    st.stop()

st.info("데모 결제 페이지입니다 (sandbox). 실제로 돈이 나가지 않습니다.")
method = st.radio(
    "결제 수단",
    ["MONEY", "CARD"],
    key="pay_method",
    horizontal=True,
    format_func=lambda m: {"MONEY": "카카오머니", "CARD": "카드"}[m],
)
left, right = st.columns(2)
if left.button(f"{format_krw(link.amount)} 결제하기", type="primary", key="pay_submit"):
    try:
        with session_scope(engine) as session:
            start = payment_links.start_payment(session, code, customer_name=name, customer_phone=phone)
            token = payment_links.select_method(session, code, method, tid=start.tid)
            order = payment_links.pay_link(session, code, pg_token=token, attempt=start.attempt)
            number = order.order_number
        st.success(f"결제가 완료되었습니다. 주문번호 {number}")
        st.balloons()
    except ChannelDeskError as exc:
        st.error(payment_links.customer_message(exc))
if right.button("결제 그만두기", key="pay_quit"):
    with session_scope(engine) as session:
        payment_links.quit_link(session, code)
    st.warning("결제를 그만두었습니다. 언제든 다시 결제할 수 있습니다.")
