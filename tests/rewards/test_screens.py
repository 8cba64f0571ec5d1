"""The owner's screens for rewards (AppTest through app.py): 설정 → 리워드 saves the reward choices and
issues a coupon by phone (in any format); 매출 shows 추천 성과 for the period; 주문's timeline shows the
referrer's reward."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core.models import Coupon
from core.rewards import service
from tests.payments.helpers import sandbox_router
from tests.rewards.helpers import buy, customer, later, link, product
from tests.ui_helpers import open_app, texts


@pytest.fixture(autouse=True)
def _fresh_cache():  # type: ignore[no-untyped-def]
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


def test_the_owner_chooses_rewards_and_issues_a_coupon_on_설정(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    buyer = customer(sqlite_engine, "김민지", "010-1234-5678")
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    assert not at.exception, at.exception
    at.selectbox(key="set_rw_review_kind").set_value("points").run()
    at.number_input(key="set_rw_review_amount").set_value(1_000).run()
    at.selectbox(key="set_rw_referral_kind").set_value("coupon").run()
    at.number_input(key="set_rw_referral_amount").set_value(5_000).run()
    at.button(key="set_rw_save").click().run()
    assert not at.exception, at.exception
    assert "보상 설정을 저장했습니다." in texts(at)
    with Session(sqlite_engine) as session:
        chosen = service.reward_settings(session)
        assert (chosen.review.kind, chosen.review.amount) == ("points", 1_000)
        assert (chosen.referral.kind, chosen.referral.amount, chosen.referral.valid_days) == (
            "coupon",
            5_000,
            30,
        )
    at.text_input(key="set_rw_coupon_phone").set_value("+82 10 1234 5678").run()
    at.button(key="set_rw_coupon_issue").click().run()
    with Session(sqlite_engine) as session:
        issued = session.scalars(select(Coupon)).one()
    assert issued.customer_id == buyer and issued.amount == 3_000
    assert f"쿠폰 {issued.code}을(를) 발급했습니다." in texts(at)
    at.text_input(key="set_rw_coupon_phone").set_value("010-0000-0000").run()
    at.button(key="set_rw_coupon_issue").click().run()
    assert "이 번호의 고객이 없습니다" in texts(at)


def test_매출_shows_referral_results_and_주문_the_reward(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine) as session:
        service.save_reward_settings(
            session,
            sqlite_actors["owner"],
            review={},
            referral={"kind": "coupon", "amount": 5_000, "valid_days": 60},
        )
        session.commit()
    item = product(sqlite_engine)
    first = buy(
        sqlite_engine,
        router,
        link(sqlite_engine, sqlite_actors["cs"], router, product_id=item),
        name="박지훈",
        phone="010-1111-2222",
    )
    from core.rewards.referral import referral_code_for

    with Session(sqlite_engine, expire_on_commit=False) as session:
        code = referral_code_for(session, first.customer_id)
        session.commit()
        later(1)
        checkout = service.visit_referral(
            session, code, product_id=item, previous_link=None, now=first.paid_at
        ).code  # type: ignore[arg-type]
    later(1)
    buy(sqlite_engine, router, checkout, name="최유나", phone="010-3333-4444")
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/sales.py")
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert (
        shown["추천 주문"] == "1건" and shown["추천 매출"] == "39,000원" and shown["지급한 보상"] == "5,000원"
    )
    assert "추천 성과" in texts(at)
    orders = open_app(sqlite_engine, sqlite_actors["owner"], "pages/orders.py")
    assert not orders.exception, orders.exception
