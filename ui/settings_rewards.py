"""설정 → 리워드: what a review and a referral earn (seed 004), a coupon by hand, the coupons issued.

Called by pages/settings.py as `settings_rewards.render(actor, engine)`; every change goes through
core.rewards.service (owner only, audited).
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core import clock
from core.accounts.actor import Actor
from core.customers.service import find_by_phone
from core.db import read_scope
from core.errors import ValidationFailed
from core.rewards import queries, rules, service
from ui import feedback
from ui.tables import show_rows

EVENTS = {"review": "리뷰 작성 보상 (내용이 있는 리뷰, 주문 상품당 1회)", "referral": "추천 보상 (추천받은 신규 고객의 첫 구매 시 추천인에게)"}


def _choice(event: str, current: rules.RewardChoice) -> dict[str, object]:
    st.markdown(f"**{EVENTS[event]}**")
    cols = st.columns(3)
    kinds = list(rules.REWARD_KINDS)
    kind = cols[0].selectbox("보상 종류", kinds, index=kinds.index(current.kind),
                             format_func=rules.REWARD_KINDS.get, key=f"set_rw_{event}_kind")
    amount = cols[1].number_input("금액(원) / 포인트", min_value=0, max_value=rules.MAX_REWARD_AMOUNT, step=500,
                                  value=current.amount or 3_000, key=f"set_rw_{event}_amount",
                                  disabled=kind == "none")
    days = cols[2].number_input("쿠폰 유효기간(일)", min_value=1, max_value=rules.MAX_VALID_DAYS,
                                value=current.valid_days or 30, key=f"set_rw_{event}_days", disabled=kind != "coupon")
    return {"kind": kind, "amount": int(amount), "valid_days": int(days)}


def render(actor: Actor, engine: Engine) -> None:
    with read_scope(engine) as session:
        current = service.reward_settings(session)
        coupons = queries.recent_coupons(session)
    st.subheader("리뷰·추천 보상")
    st.caption("추천 보상은 공유만으로는 지급되지 않고, 추천 링크로 처음 구매한 고객이 있을 때 추천인에게 한 번 지급됩니다. "
               "본인 추천, 기존 고객, 서로 추천은 지급하지 않습니다.")
    review = _choice("review", current.review)
    referral = _choice("referral", current.referral)
    if st.button("보상 설정 저장", key="set_rw_save"):
        feedback.run("set", lambda session: service.save_reward_settings(session, actor, review=review,
                                                                         referral=referral),
                     "보상 설정을 저장했습니다.")

    st.subheader("쿠폰 직접 발급")
    cols = st.columns(3)
    phone = cols[0].text_input("고객 휴대폰 번호", key="set_rw_coupon_phone", placeholder="010-1234-5678")
    amount = cols[1].number_input("쿠폰 금액(원)", min_value=100, max_value=rules.MAX_REWARD_AMOUNT, value=3_000,
                                  step=500, key="set_rw_coupon_amount")
    days = cols[2].number_input("유효기간(일)", min_value=1, max_value=rules.MAX_VALID_DAYS, value=30,
                                key="set_rw_coupon_days")
    if st.button("쿠폰 발급", key="set_rw_coupon_issue"):

        def issue(session):  # type: ignore[no-untyped-def]
            customer = find_by_phone(session, phone)
            if customer is None:
                raise ValidationFailed("이 번호의 고객이 없습니다. 휴대폰 번호를 확인해 주세요.")
            return service.issue_coupon(session, actor, customer_id=customer.id, amount=int(amount),
                                        valid_days=int(days), now=clock.now())

        feedback.run("set", issue, lambda coupon: f"쿠폰 {coupon.code}을(를) 발급했습니다.")

    st.subheader("발급한 쿠폰")
    show_rows(coupons, empty="아직 발급한 쿠폰이 없습니다.", key="set_rw_coupons")
