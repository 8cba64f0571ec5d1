"""설정 → 결제 페이지: the refund policy the customer reads on /pay (seed 003: trust at the checkout).

Called by pages/settings.py as `settings_checkout.render(actor, engine)`; the text is saved through
core.payments.checkout.set_refund_policy (owner only, audited). Empty text means the default.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.db import read_scope
from core.payments import checkout
from ui import feedback


def render(actor: Actor, engine: Engine) -> None:
    with read_scope(engine) as session:
        current = checkout.refund_policy(session)
    st.subheader("결제 페이지 환불 정책")
    st.caption("고객이 결제 페이지(/pay)에서 결제 버튼 아래에 읽는 교환·환불 안내입니다. 비우고 저장하면 기본 문구로 돌아갑니다.")
    text = st.text_area("환불 정책", value=current, max_chars=checkout.REFUND_POLICY_MAX, height=160,
                        key="set_refund_policy")
    if st.button("환불 정책 저장", key="set_refund_policy_save"):
        feedback.run("set", lambda session: checkout.set_refund_policy(session, actor, text),
                     "환불 정책을 저장했습니다.")
