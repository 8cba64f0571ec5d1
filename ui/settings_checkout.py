"""설정 → 환불 정책: the shop's one refund policy (seed 000: told up front so disputes don't start),
and the welcome message that carries it to a new customer.

Called by pages/settings.py as `settings_checkout.render(actor, engine)`. The text is saved through
core.payments.checkout.set_refund_policy and the welcome switch through core.messaging.welcome
(owner only, audited). Empty text means the default.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.db import read_scope
from core.messaging import welcome
from core.payments import checkout
from ui import feedback


def render(actor: Actor, engine: Engine) -> None:
    with read_scope(engine) as session:
        current = checkout.refund_policy(session)
        welcome_on = welcome.enabled(session)
    st.subheader("환불 정책")
    st.caption(
        "한 번 쓰면 결제 페이지(/pay)와 문의 페이지(/help), 주문 확인 메시지, 첫 인사 메시지, "
        "문의 매크로의 #{환불정책}에 똑같이 들어갑니다. 비우고 저장하면 기본 문구(청약철회 7일)로 돌아갑니다."
    )
    text = st.text_area(
        "환불 정책", value=current, max_chars=checkout.REFUND_POLICY_MAX, height=160, key="set_refund_policy"
    )
    if st.button("환불 정책 저장", key="set_refund_policy_save"):
        feedback.run(
            "set",
            lambda session: checkout.set_refund_policy(session, actor, text),
            "환불 정책을 저장했습니다.",
        )
    on = st.toggle(
        "첫 인사 메시지 보내기",
        value=welcome_on,
        key="set_welcome_on",
        help="새 고객이 처음 문의하거나 처음 결제할 때 한 번만, 환불 정책을 담아 보냅니다 (정보성, 밤에는 08:00에).",
    )
    if on != welcome_on:
        feedback.run(
            "set",
            lambda session: welcome.set_enabled(session, actor, on),
            "첫 인사 메시지를 보냅니다." if on else "첫 인사 메시지를 보내지 않습니다.",
        )
