"""Rewards in the store (SQLite and PostgreSQL): grants once, coupons and points taken off a payment
link's amount (the gateway asked for the rest, the order net, 매출 net), refusals that hold nothing,
two tabs at once, release of abandoned checkouts, and referrals credited once to the right person."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import analytics, clock
from core.errors import PermissionDenied, ValidationFailed
from core.models import (
    AuditLog,
    Coupon,
    Customer,
    Message,
    Order,
    Payment,
    PaymentLink,
    PointEntry,
    Referral,
    Review,
    RewardReason,
)
from core.models.sandbox import SandboxPayment
from core.payments.link_checkout import return_from_gateway, start_payment
from core.rewards import discounts, jobs, queries, rules, service
from core.rewards.referral import referral_code_for
from tests.payments.helpers import sandbox_router
from tests.rewards.helpers import PRICE, buy, coupon, coupon_row, customer, later, link, link_row, product

COUPON = {"kind": "coupon", "amount": 3_000, "valid_days": 30}
POINTS = {"kind": "points", "amount": 2_000}


def _settings(engine: Engine, owner, *, review=COUPON, referral=COUPON) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        service.save_reward_settings(session, owner, review=review, referral=referral)
        session.commit()


def _count(engine: Engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))  # type: ignore[return-value]


def _charged(engine: Engine) -> list[int]:
    """What the gateway (the sandbox) charged, per approved payment."""
    with Session(engine) as session:
        paid = select(SandboxPayment.total_amount).where(SandboxPayment.status == "SUCCESS_PAYMENT")
        return sorted(session.scalars(paid))


# ---------------------------------------------------------------- settings and grants


def test_only_the_owner_chooses_rewards_and_a_wrong_value_changes_nothing(engine, actors) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        with pytest.raises(PermissionDenied):
            service.save_reward_settings(session, actors["cs"], review=COUPON, referral=COUPON)
        with pytest.raises(ValidationFailed, match="보상 금액"):
            service.save_reward_settings(
                session, actors["owner"], review={"kind": "coupon", "amount": -5}, referral=COUPON
            )
        assert service.reward_settings(session).review.kind == "none"  # nothing chosen: no reward
    _settings(engine, actors["owner"], review=POINTS)
    with Session(engine) as session:
        chosen = service.reward_settings(session)
        assert (chosen.review.kind, chosen.review.amount) == ("points", 2_000)
        assert (chosen.referral.kind, chosen.referral.amount, chosen.referral.valid_days) == (
            "coupon",
            3_000,
            30,
        )
    assert _count(engine, AuditLog, AuditLog.action == "setting.change") == 1


def _review(engine: Engine, customer_id: int, body: str) -> int:
    with Session(engine) as session:
        order = Order(
            order_number=f"R-{customer_id}-{len(body)}",
            customer_id=customer_id,
            total_amount=PRICE,
            status="paid",
            paid_at=clock.now(),
        )
        session.add(order)
        session.flush()
        review = Review(order_id=order.id, customer_id=customer_id, rating=5, body=body)  # type: ignore[arg-type]
        session.add(review)
        session.commit()
        return review.id  # type: ignore[return-value]


@pytest.mark.parametrize("choice", [COUPON, POINTS], ids=["coupon", "points"])
def test_a_review_with_text_is_rewarded_once(engine, actors, choice) -> None:  # type: ignore[no-untyped-def]
    _settings(engine, actors["owner"], review=choice)
    buyer = customer(engine, "김민지", "010-1234-5678")
    review_id = _review(engine, buyer, "촉촉하고 좋아요")
    with Session(engine) as session:
        first = service.reward_for_review(session, review_id=review_id, now=clock.now())
        again = service.reward_for_review(session, review_id=review_id, now=clock.now())
        session.commit()
        assert first is not None and again is not None and first.id == again.id
        assert first.customer_id == buyer and first.amount == choice["amount"]
        if choice is COUPON:
            assert first.expires_at == clock.now() + timedelta(days=30)  # type: ignore[union-attr]
        else:
            assert discounts.points_balance(session, buyer) == 2_000
    assert _count(engine, Coupon) + _count(engine, PointEntry) == 1


@pytest.mark.parametrize("body", ["", "   \n "], ids=["empty", "blank"])
def test_a_review_without_text_earns_nothing(engine, actors, body: str) -> None:  # type: ignore[no-untyped-def]
    _settings(engine, actors["owner"])
    review_id = _review(engine, customer(engine, "김민지", "010-1234-5678"), body)
    with Session(engine) as session:
        assert service.reward_for_review(session, review_id=review_id, now=clock.now()) is None
        assert service.reward_for_review(session, review_id=999_999, now=clock.now()) is None
    assert _count(engine, Coupon) == 0


def test_a_grant_made_twice_at_once_is_one_grant(engine, actors) -> None:  # type: ignore[no-untyped-def]
    buyer = customer(engine, "김민지", "010-1234-5678")
    choice = rules.reward_choice(COUPON)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def grant() -> None:
        with Session(engine) as session:
            barrier.wait()
            row = service.grant(
                session,
                customer_id=buyer,
                choice=choice,
                reason=RewardReason.REVIEW,
                source_key="review:77",
                now=clock.now(),
            )
            session.commit()
            results.append(row.id)  # type: ignore[union-attr]

    threads = [threading.Thread(target=grant) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and len(set(results)) == 1
    assert _count(engine, Coupon) == 1


# ---------------------------------------------------------------- coupons and points on a payment link


def test_a_coupon_lowers_what_the_gateway_charges_and_the_order_records_it(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", "010-1234-5678")
    code = coupon(engine, actors["owner"], buyer)
    order = buy(
        engine, router, link(engine, actors["cs"], router), coupon_code=code.lower().replace("-", " ")
    )
    assert _charged(engine) == [PRICE - 3_000]  # the gateway was asked for the reduced amount only
    assert (order.total_amount, order.discount_amount, order.customer_id) == (PRICE - 3_000, 3_000, buyer)
    used = coupon_row(engine, code)
    assert order.coupon_id == used.id and used.redeemed_order_id == order.id and used.redeemed_at is not None
    with Session(engine) as session:
        payment = session.scalars(select(Payment).where(Payment.order_id == order.id)).one()
        assert payment.amount == PRICE - 3_000
        day = clock.today_kst()
        assert analytics.revenue_totals(session, day, day).gross == PRICE - 3_000  # 매출 counts net
    # The same coupon on another link: refused, nothing charged.
    with pytest.raises(ValidationFailed, match="이미 사용된 쿠폰"):
        buy(engine, router, link(engine, actors["cs"], router), coupon_code=code)
    assert _charged(engine) == [PRICE - 3_000]


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("unknown", "없는 쿠폰 번호"),
        ("malformed", "쿠폰 번호를 확인해"),
        ("expired", "유효기간이 지난"),
        ("too_big", "보다 커서"),
        ("whole_order", "보다 커서"),  # a 0원 payment is never asked of KakaoPay
        ("someone_elses", "다른 고객님의 쿠폰"),
        ("new_phone", "다른 고객님의 쿠폰"),
    ],
)
def test_a_refused_coupon_holds_nothing_and_charges_nothing(engine, actors, setup: str, says: str) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", "010-1234-5678")
    other = customer(engine, "이서준", "010-9999-8888")
    amount = {"too_big": 50_000, "whole_order": PRICE}.get(setup, 3_000)
    code = coupon(
        engine, actors["owner"], other if setup == "someone_elses" else buyer, amount=amount, days=1
    )
    typed = {"unknown": "ABCD-EFGH-JKMN", "malformed": "<b>쿠폰</b>"}.get(setup, code)
    phone = "010-2222-3333" if setup == "new_phone" else "010-1234-5678"
    if setup == "expired":
        later(24)  # valid 1 day: at the instant it ends, it is expired
    checkout = link(engine, actors["cs"], router)
    with pytest.raises(ValidationFailed, match=says):
        buy(engine, router, checkout, coupon_code=typed, phone=phone)
    assert coupon_row(engine, code).redeemed_at is None
    assert link_row(engine, checkout).amount == PRICE and _charged(engine) == []


def test_a_coupon_used_in_two_tabs_at_once_is_taken_once(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", "010-1234-5678")
    code = coupon(engine, actors["owner"], buyer)
    checkouts = [link(engine, actors["cs"], router) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def tab(checkout: str) -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                discounts.apply_discounts(
                    session,
                    checkout,
                    coupon_code=code,
                    use_points=False,
                    customer_phone="010-1234-5678",
                    now=clock.now(),
                )
                session.commit()
                outcomes.append("held")
            except ValidationFailed as exc:
                session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=tab, args=(c,)) for c in checkouts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["held", "이미 사용된 쿠폰입니다."]
    amounts = sorted(link_row(engine, c).amount for c in checkouts)
    assert amounts == [PRICE - 3_000, PRICE]  # one checkout lowered, the other untouched


def _points(engine: Engine, customer_id: int, amount: int, key: str) -> None:
    with Session(engine) as session:
        choice = rules.reward_choice({"kind": "points", "amount": amount})
        service.grant(
            session,
            customer_id=customer_id,
            choice=choice,
            reason=RewardReason.REVIEW,
            source_key=key,
            now=clock.now(),
        )
        session.commit()


def test_points_are_spent_once_and_leave_the_minimum_payment(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", "010-1234-5678")
    _points(engine, buyer, 5_000, "review:1")
    order = buy(engine, router, link(engine, actors["cs"], router), phone="+82 10 1234 5678", points=True)
    assert (order.total_amount, order.discount_amount, order.coupon_id) == (PRICE - 5_000, 5_000, None)
    with Session(engine) as session:
        assert discounts.points_balance(session, buyer) == 0
    with pytest.raises(ValidationFailed, match="사용할 수 있는 포인트가 없습니다"):
        buy(engine, router, link(engine, actors["cs"], router), points=True)
    # A balance larger than a small order: capped so 100원 is still paid (never a 0원 payment).
    _points(engine, buyer, 9_000, "review:2")
    small = buy(engine, router, link(engine, actors["cs"], router, amount=1_000), points=True)
    assert (small.total_amount, small.discount_amount) == (rules.MIN_PAYMENT, 1_000 - rules.MIN_PAYMENT)
    with Session(engine) as session:
        assert discounts.points_balance(session, buyer) == 9_000 - 900


def test_a_cancelled_or_abandoned_checkout_gives_the_coupon_back(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", "010-1234-5678")
    code = coupon(engine, actors["owner"], buyer)
    checkout = link(engine, actors["cs"], router)
    with Session(engine) as session:  # the customer applies the coupon and goes to the gateway ...
        discounts.apply_discounts(
            session,
            checkout,
            coupon_code=code,
            use_points=False,
            customer_phone="010-1234-5678",
            now=clock.now(),
        )
        start_payment(
            session, checkout, customer_name="김민지", customer_phone="010-1234-5678", router=router
        )
    assert (
        coupon_row(engine, code).redeemed_at is not None
        and link_row(engine, checkout).amount == PRICE - 3_000
    )
    with Session(engine) as session:  # ... and cancels there: the page releases what was held
        discounts.release_discounts(session, return_from_gateway(session, checkout, "cancel", router=router))
        session.commit()
    assert coupon_row(engine, code).redeemed_at is None and link_row(engine, checkout).amount == PRICE
    with Session(engine) as session:
        payment = session.scalars(select(Payment).where(Payment.idempotency_key == f"link:{checkout}")).one()
        assert payment.amount == PRICE  # the next try readies the full amount again
    # Held again and the tab closed: the worker frees it an hour later, not before.
    with Session(engine) as session:
        discounts.apply_discounts(
            session,
            checkout,
            coupon_code=code,
            use_points=False,
            customer_phone="010-1234-5678",
            now=clock.now(),
        )
        session.commit()
    assert jobs.release_abandoned_discounts(engine, clock.now() + timedelta(minutes=30)) == {"released": 0}
    assert jobs.release_abandoned_discounts(engine, clock.now() + timedelta(minutes=61)) == {"released": 1}
    assert coupon_row(engine, code).redeemed_at is None and link_row(engine, checkout).amount == PRICE
    # Free again: the customer uses it on the same checkout.
    order = buy(engine, router, checkout, coupon_code=code)
    assert order.total_amount == PRICE - 3_000 and coupon_row(engine, code).redeemed_order_id == order.id


# ---------------------------------------------------------------- referrals


def _referrer(engine: Engine, actors, router, product_id: int) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A customer who bought the product (their confirmation carries their referral link)."""
    order = buy(
        engine,
        router,
        link(engine, actors["cs"], router, product_id=product_id),
        name="박지훈",
        phone="010-1111-2222",
    )
    with Session(engine) as session:
        return order.customer_id, referral_code_for(session, order.customer_id)


def _visit(engine: Engine, code: str, product_id: int | None, previous: str | None = None) -> str:
    with Session(engine, expire_on_commit=False) as session:
        return service.visit_referral(
            session, code, product_id=product_id, previous_link=previous, now=clock.now()
        ).code


def test_a_new_customer_buying_through_a_referral_credits_the_referrer_once(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _settings(engine, actors["owner"])
    _, router = sandbox_router(engine)
    item = product(engine)
    referrer, code = _referrer(engine, actors, router, item)
    with Session(engine) as session:  # the order confirmation carries the referral link
        confirmation = session.scalars(
            select(Message).where(Message.template_key == "order_confirmation")
        ).one()
        assert confirmation.variables["추천링크"].endswith(f"/r/{code}?p={item}")
    later(1)
    checkout = _visit(engine, code, item)
    assert _visit(engine, code, item, previous=checkout) == checkout  # the same browser: the same checkout
    later(1)
    order = buy(engine, router, checkout, name="최유나", phone="010-3333-4444")
    with Session(engine, expire_on_commit=False) as session:
        visit = session.scalars(select(Referral)).one()
        assert (visit.status, visit.order_id, visit.referred_customer_id) == (
            "credited",
            order.id,
            order.customer_id,
        )
        reward = session.scalars(select(Coupon).where(Coupon.source_key == f"referral:{order.id}")).one()
        assert (reward.customer_id, reward.amount, reward.reason) == (referrer, 3_000, "referral")
        thanks = session.scalars(
            select(Message).where(Message.idempotency_key == f"referral_thanks:{order.id}")
        ).one()
        assert thanks.customer_id == referrer and thanks.kind == "informational"
        assert reward.code in thanks.variables["보상"]
        # Settling the same purchase again credits nothing more.
        paid = session.scalars(select(PaymentLink).where(PaymentLink.code == checkout)).one()
        assert service.credit_referral(session, paid, session.get(Order, order.id), now=clock.now()) is None  # type: ignore[arg-type]
        events = [e["event"] for e in queries.customer_timeline(session, referrer)]
        assert any(e.startswith("쿠폰 발급 3,000원 (지인 추천") for e in events)
        assert "추천 보상: 최유나님 첫 구매" in events
        panel = queries.referral_panel(
            session, clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)
        )
        assert (panel.orders, panel.revenue, panel.rewards_paid) == (1, PRICE, 3_000)
        assert panel.top_referrers == [{"고객": "박지훈", "추천 주문": 1, "추천 매출": PRICE}]
    assert (
        _count(engine, Coupon) == 1
        and _count(engine, Message, Message.template_key == "referral_thanks") == 1
    )


@pytest.mark.parametrize(
    ("buyer", "refusal"),
    [
        ("self", "본인 추천"),
        ("same_phone_other_format", "본인 추천"),
        ("existing", "기존 고객"),
        ("existing_other_format", "기존 고객"),
    ],
)
def test_no_reward_for_the_referrer_themself_or_an_existing_customer(
    engine, actors, buyer: str, refusal: str
) -> None:  # type: ignore[no-untyped-def]
    _settings(engine, actors["owner"])
    _, router = sandbox_router(engine)
    item = product(engine)
    customer(engine, "한도윤", "010-5555-6666")  # a customer since before the visit
    _, code = _referrer(engine, actors, router, item)
    later(1)
    checkout = _visit(engine, code, item)
    later(1)
    phone = {
        "self": "010-1111-2222",
        "same_phone_other_format": "+82 10 1111 2222",
        "existing": "010-5555-6666",
        "existing_other_format": "+82 (10) 5555-6666",
    }[buyer]
    order = buy(engine, router, checkout, name="누구", phone=phone)
    with Session(engine) as session:
        visit = session.scalars(select(Referral)).one()
        assert (visit.status, visit.refusal, visit.order_id) == ("refused", refusal, order.id)
    assert (
        _count(engine, Coupon) == 0
        and _count(engine, Message, Message.template_key == "referral_thanks") == 0
    )
    assert _count(engine, Customer) == 2  # the other format found the same person: no new customer


def test_a_referral_loop_is_refused(engine, actors) -> None:  # type: ignore[no-untyped-def]
    """A refers B (credited); then B's link is used by A: A is no new customer, and it is a loop."""
    _settings(engine, actors["owner"])
    _, router = sandbox_router(engine)
    item = product(engine)
    a, a_code = _referrer(engine, actors, router, item)
    later(1)
    order_b = buy(engine, router, _visit(engine, a_code, item), name="최유나", phone="010-3333-4444")
    with Session(engine) as session:
        b_code = referral_code_for(session, order_b.customer_id)
        session.commit()
    later(1)
    buy(engine, router, _visit(engine, b_code, item), name="박지훈", phone="010-1111-2222")
    with Session(engine) as session:
        statuses = sorted((v.referrer_id == a, v.status) for v in session.scalars(select(Referral)))
        assert statuses == [(False, "refused"), (True, "credited")]
    assert _count(engine, Coupon) == 1


def test_a_purchase_more_than_30_days_after_the_first_visit_earns_nothing(engine, actors) -> None:  # type: ignore[no-untyped-def]
    _settings(engine, actors["owner"])
    _, router = sandbox_router(engine)
    item = product(engine)
    _, code = _referrer(engine, actors, router, item)
    first = _visit(engine, code, item)
    later(31 * 24)  # the first checkout expired; the browser comes back through the link
    checkout = _visit(engine, code, item, previous=first)
    assert checkout != first
    buy(engine, router, checkout, name="최유나", phone="010-3333-4444")
    with Session(engine) as session:
        visit = session.scalars(select(Referral).where(Referral.order_id.is_not(None))).one()  # type: ignore[union-attr]
        assert (visit.status, visit.refusal) == ("refused", "추천 후 30일 경과")
    assert _count(engine, Coupon) == 0


def test_an_unknown_referral_code_or_product_writes_nothing(engine, actors) -> None:  # type: ignore[no-untyped-def]
    from core.errors import NotFound

    _, router = sandbox_router(engine)
    item = product(engine)
    _, code = _referrer(engine, actors, router, item)
    before = _count(engine, PaymentLink)
    for args in (("ZZZZ2345", item), (code, 999_999)):
        with pytest.raises(NotFound):
            _visit(engine, *args)
    assert _count(engine, PaymentLink) == before and _count(engine, Referral) == 0
    assert _visit(engine, code, None)  # without ?p=: the product the referrer bought last
