"""The rules of rewards, as pure functions of values (no store, no clock).

Codes. A coupon code is 12 characters of a 31-letter alphabet without look-alikes (no 0/O, 1/I/L,
no U/V mix-ups), shown as ``ABCD-EFGH-JKMN``: 31^12 ≈ 2^59 codes, so guessing one is hopeless, and a
customer can read it over the phone and type it on a phone keyboard. What the customer types is
normalised first (NFKC, upper case, spaces and dashes dropped): "abcd efgh jkmn" finds the same
coupon. A referral code is 8 characters of the same alphabet (≈ 2^40): short in a shared URL.

Redemption. The amount left to pay after a discount must stay at least ``MIN_PAYMENT`` (KakaoPay
refuses a 0원 payment, and we never ask it for one):
- a coupon is all or nothing: one worth more than the order allows is refused, with the reason
  (a coupon silently capped would lose the customer the rest of its value);
- points are divisible: at most the order amount minus the coupon minus ``MIN_PAYMENT`` is used.

Referral. A purchase through a referral link credits the referrer when the buyer is a new customer
(a phone never seen before the visit and no earlier order), not the referrer themself, not someone who
referred the referrer (a loop), and within ``REFERRAL_WINDOW`` of the visit. Otherwise no reward, with
the reason kept for staff.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.money import format_krw

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"  # no 0 O 1 I L, no U V: read aloud, typed on a phone
COUPON_CODE_LENGTH = 12
REFERRAL_CODE_LENGTH = 8
MIN_PAYMENT = 100  # 원: the least a discounted payment may ask the gateway for (never 0)
REFERRAL_WINDOW = timedelta(days=30)
MAX_REWARD_AMOUNT = 1_000_000  # 원 or points: anything above is a typo
MAX_VALID_DAYS = 3650

REWARD_KINDS = {"none": "보상 없음", "coupon": "할인 쿠폰", "points": "포인트"}


def new_coupon_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(COUPON_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, COUPON_CODE_LENGTH, 4))


def new_referral_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def normalize_coupon_code(typed: str | None) -> str | None:
    """'abcd efgh-jkmn' -> 'ABCD-EFGH-JKMN'; None when it cannot be a coupon code at all."""
    text = unicodedata.normalize("NFKC", typed or "").upper()
    raw = "".join(ch for ch in text if not ch.isspace() and ch not in "-_")
    if len(raw) != COUPON_CODE_LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return "-".join(raw[i : i + 4] for i in range(0, COUPON_CODE_LENGTH, 4))


def valid_referral_code(code: str | None) -> bool:
    return bool(code) and len(code or "") == REFERRAL_CODE_LENGTH and all(ch in ALPHABET for ch in code or "")


@dataclass(frozen=True)
class RewardChoice:
    """What the owner gives for one event: nothing, a fixed-amount coupon valid N days, or points."""

    kind: str = "none"  # none | coupon | points
    amount: int = 0
    valid_days: int = 30

    @property
    def label(self) -> str:
        if self.kind == "coupon":
            return f"{format_krw(self.amount)} 할인 쿠폰 ({self.valid_days}일)"
        if self.kind == "points":
            return f"{self.amount:,} 포인트"
        return REWARD_KINDS["none"]


def reward_choice(value: Any) -> RewardChoice:
    """A stored or submitted choice, checked: a clear Korean message for anything wrong."""
    value = value if isinstance(value, dict) else {}
    kind = value.get("kind", "none")
    if kind not in REWARD_KINDS:
        raise ValueError("보상 종류를 선택하세요 (보상 없음, 할인 쿠폰, 포인트)")
    if kind == "none":
        return RewardChoice()
    amount, days = value.get("amount"), value.get("valid_days", 30)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_REWARD_AMOUNT:
        raise ValueError(f"보상 금액은 1~{MAX_REWARD_AMOUNT:,} 사이의 정수로 입력하세요")
    if kind == "points":
        return RewardChoice(kind=kind, amount=amount, valid_days=0)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_VALID_DAYS:
        raise ValueError(f"쿠폰 유효기간은 1~{MAX_VALID_DAYS:,}일로 입력하세요")
    return RewardChoice(kind=kind, amount=amount, valid_days=days)


def coupon_refusal(
    *,
    order_amount: int,
    coupon_amount: int,
    coupon_customer_id: int,
    buyer_id: int | None,
    expires_at: datetime,
    redeemed: bool,
    now: datetime,
) -> str | None:
    """Why this coupon cannot be used on this order (Korean), or None when it can."""
    if buyer_id is not None and coupon_customer_id != buyer_id:
        return "다른 고객님의 쿠폰입니다. 쿠폰을 받은 분의 휴대폰 번호로 결제해 주세요."
    if redeemed:
        return "이미 사용된 쿠폰입니다."
    if expires_at <= now:
        return "유효기간이 지난 쿠폰입니다."
    if order_amount - coupon_amount < MIN_PAYMENT:
        return (
            f"쿠폰 금액({format_krw(coupon_amount)})이 결제 금액({format_krw(order_amount)})보다 커서 "
            f"이 주문에는 사용할 수 없습니다 (최소 결제 금액 {format_krw(MIN_PAYMENT)})."
        )
    return None


def points_to_use(*, order_amount: int, coupon_amount: int, balance: int) -> int:
    """Points spent on an order: all the balance, up to what leaves MIN_PAYMENT to pay."""
    return max(0, min(balance, order_amount - coupon_amount - MIN_PAYMENT))


def referral_refusal(
    *,
    referrer_id: int,
    buyer_id: int,
    buyer_is_new: bool,
    buyer_referred_referrer: bool,
    visited_at: datetime,
    paid_at: datetime,
) -> str | None:
    """Why a purchase through a referral earns no reward (Korean, for staff), or None: reward it."""
    if buyer_id == referrer_id:
        return "본인 추천"
    if buyer_referred_referrer:
        return "서로 추천 (추천한 고객이 다시 추천)"
    if not buyer_is_new:
        return "기존 고객"
    if paid_at - visited_at > REFERRAL_WINDOW:
        return f"추천 후 {REFERRAL_WINDOW.days}일 경과"
    return None
