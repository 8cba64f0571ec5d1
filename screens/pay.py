"""Public sandbox payment page (no login): a demo customer opens ?link=CODE and "pays" it.

It plays KakaoPay's hosted payment page for the embedded sandbox gateway: opening, choosing a
method, approving, or quitting move the sandbox payment (and so the link's funnel) like the real one.
"""

from __future__ import annotations

import streamlit as st

import ui
from core import clock, payment_links
from core.db import session_scope
from core.errors import ChannelDeskError
from core.models import PaymentLinkStatus
from core.money import format_krw

engine = ui.engine()
st.title("결제하기")
code = st.query_params.get("link", "")
if not code:
    st.error("결제 링크가 올바르지 않습니다.")
    st.stop()
try:
    with session_scope(engine) as session:
        if st.session_state.get("pay_opened") != code:
            link = payment_links.open_link(session, code)
            st.session_state["pay_opened"] = code
        else:
            link = payment_links.get_link(session, code)
        needs_contact = link.customer_id is None
except ChannelDeskError as exc:
    st.error(str(exc))
    st.stop()

st.subheader(link.item_name)
st.markdown(f"결제 금액 **{format_krw(link.amount)}**")
if link.memo:
    st.caption(link.memo)
if link.status == PaymentLinkStatus.PAID:
    st.success("결제가 완료되었습니다. 감사합니다.")
    st.stop()
if link.status == PaymentLinkStatus.EXPIRED:
    st.error("만료된 결제 링크입니다. 상담원에게 새 링크를 요청해 주세요.")
    st.stop()
if link.expires_at:
    st.caption(f"{clock.format_kst(link.expires_at)}까지 결제할 수 있습니다.")
st.info("데모 결제 페이지입니다 (sandbox). 실제로 돈이 나가지 않습니다.")
name = phone = None
if needs_contact:
    name = st.text_input("이름", key="pay_name")
    phone = st.text_input("휴대폰 번호", key="pay_phone")
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
            token = payment_links.select_method(session, code, method)
            order = payment_links.pay_link(
                session, code, pg_token=token, customer_name=name, customer_phone=phone
            )
            number = order.order_number
        st.success(f"결제가 완료되었습니다. 주문번호 {number}")
        st.balloons()
    except ChannelDeskError as exc:
        st.error(str(exc))
if right.button("결제 그만두기", key="pay_quit"):
    with session_scope(engine) as session:
        payment_links.quit_link(session, code)
    st.warning("결제를 그만두었습니다. 언제든 다시 결제할 수 있습니다.")
