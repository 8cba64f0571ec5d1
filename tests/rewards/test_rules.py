"""The pure rules of rewards (core/rewards/rules.py), as tables: codes, what a coupon or points may
take off (never a 0원 payment), who a referral credits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.rewards import rules

NOW = clock.parse_instant("2026-11-20T10:00+09:00")


def test_codes_are_long_random_and_typable() -> None:
    codes = {rules.new_coupon_code() for _ in range(2000)}
    assert len(codes) == 2000  # no repeats in 2,000 draws (31^12 codes)
    for code in list(codes)[:50]:
        assert len(code) == 14 and code.count("-") == 2
        assert set(code.replace("-", "")) <= set(rules.ALPHABET)
        assert not set(code) & set("0O1IL")  # no look-alikes to misread or mistype
    referral = rules.new_referral_code()
    assert rules.valid_referral_code(referral) and len(referral) == 8


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("ABCD-EFGH-JKMN", "ABCD-EFGH-JKMN"),
        ("abcd efgh jkmn", "ABCD-EFGH-JKMN"),  # lower case, spaces
        (" abcdefghjkmn ", "ABCD-EFGH-JKMN"),
        ("ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ", "ABCD-EFGH-JKMN"),  # full-width (a Korean keyboard's)
        ("ABCD-EFGH-JKM", None),  # too short
        ("ABCD-EFGH-JKMNP", None),  # too long
        ("ABCD-EFGH-JK0N", None),  # 0 is never in a code
        ("'; DROP TABLE coupon; --", None),
        ("", None),
        (None, None),
    ],
)
def test_a_typed_coupon_code_is_normalised_or_refused(typed: str | None, found: str | None) -> None:
    assert rules.normalize_coupon_code(typed) == found


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("ABCD2345", True),
        ("abcd2345", False),
        ("ABCD234", False),
        ("ABCD23456", False),
        ("ABCD234O", False),
        ("../../et", False),
        ("", False),
        (None, False),
    ],
)
def test_referral_codes(code: str | None, ok: bool) -> None:
    assert rules.valid_referral_code(code) is ok


def _refusal(**changes: object) -> str | None:
    values: dict[str, object] = dict(
        order_amount=39_000,
        coupon_amount=3_000,
        coupon_customer_id=1,
        buyer_id=1,
        expires_at=NOW + timedelta(days=1),
        redeemed=False,
        now=NOW,
    )
    values.update(changes)
    return rules.coupon_refusal(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({}, None),
        ({"coupon_amount": 39_000 - rules.MIN_PAYMENT}, None),  # leaves exactly the minimum to pay
        ({"coupon_amount": 39_000 - rules.MIN_PAYMENT + 1}, "보다 커서"),  # would leave less than 100원
        ({"coupon_amount": 39_000}, "보다 커서"),  # a 0원 payment: never asked of KakaoPay
        ({"coupon_amount": 50_000}, "보다 커서"),
        ({"expires_at": NOW}, "유효기간이 지난"),  # expiry is exclusive: at the instant, expired
        ({"expires_at": NOW - timedelta(seconds=1)}, "유효기간이 지난"),
        ({"redeemed": True}, "이미 사용된"),
        ({"buyer_id": 2}, "다른 고객님의 쿠폰"),
        ({"buyer_id": -1}, "다른 고객님의 쿠폰"),  # an unknown phone owns no coupon
    ],
)
def test_when_a_coupon_is_refused(changes: dict[str, object], says: str | None) -> None:
    refusal = _refusal(**changes)
    assert (refusal is None) if says is None else (says in refusal)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("order", "coupon", "balance", "used"),
    [
        (39_000, 0, 5_000, 5_000),
        (39_000, 3_000, 50_000, 35_900),  # capped: 100원 is always left to pay
        (5_000, 0, 5_000, 4_900),
        (100, 0, 5_000, 0),  # nothing can be taken off a 100원 order
        (39_000, 0, 0, 0),
        (39_000, 0, -20, 0),  # a negative balance is never "used"
    ],
)
def test_points_used_leave_the_minimum_payment(order: int, coupon: int, balance: int, used: int) -> None:
    assert rules.points_to_use(order_amount=order, coupon_amount=coupon, balance=balance) == used
    assert order - coupon - used >= rules.MIN_PAYMENT or used == 0


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({}, None),
        ({"buyer_id": 1}, "본인 추천"),
        ({"buyer_referred_referrer": True}, "서로 추천"),
        ({"buyer_is_new": False}, "기존 고객"),
        ({"paid_at": NOW + timedelta(days=30)}, None),  # the 30th day still counts
        ({"paid_at": NOW + timedelta(days=30, seconds=1)}, "30일 경과"),
    ],
)
def test_who_a_referral_credits(changes: dict[str, object], says: str | None) -> None:
    values: dict[str, object] = dict(
        referrer_id=1,
        buyer_id=2,
        buyer_is_new=True,
        buyer_referred_referrer=False,
        visited_at=NOW,
        paid_at=NOW + timedelta(hours=1),
    )
    values.update(changes)
    refusal = rules.referral_refusal(**values)  # type: ignore[arg-type]
    assert (refusal is None) if says is None else (says in refusal)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"kind": "coupon", "amount": 3000, "valid_days": 30}, None),
        ({"kind": "points", "amount": 1000}, None),
        ({"kind": "none"}, None),
        ({}, None),
        ({"kind": "cash", "amount": 1}, "보상 종류"),
        ({"kind": "coupon", "amount": 0, "valid_days": 30}, "보상 금액"),
        ({"kind": "coupon", "amount": 3000.5, "valid_days": 30}, "보상 금액"),
        ({"kind": "coupon", "amount": True, "valid_days": 30}, "보상 금액"),
        ({"kind": "points", "amount": rules.MAX_REWARD_AMOUNT + 1}, "보상 금액"),
        ({"kind": "coupon", "amount": 3000, "valid_days": 0}, "유효기간"),
    ],
)
def test_the_owners_reward_choice_is_checked(value: dict[str, object], error: str | None) -> None:
    if error is None:
        assert rules.reward_choice(value).kind == value.get("kind", "none")
    else:
        with pytest.raises(ValueError, match=error):
            rules.reward_choice(value)
