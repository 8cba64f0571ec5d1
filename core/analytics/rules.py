"""The definitions every analytics figure shares, as pure functions of values.

Definitions (one rule each, the same in the rollups, the live tail and the tests):
- A sale is an order with `paid_at` set and status paid / partially_refunded / refunded; it counts
  on the KST day of `paid_at`, for its `total_amount` (gross), with the method of its first approved
  payment ("OTHER" when none).
- A refund is a succeeded refund row; it counts on the KST day its money went back
  (`completed_at`, else `created_at`), so a day can have more refunds than sales (net < 0).
- Per product, an order's total and each refund are split over its items in proportion to the
  item amounts (floor, the remainder on the last item), so product figures add up to order figures.
- AOV = gross / orders; LTV = lifetime net revenue / customers who paid at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.errors import ValidationFailed

SOLD_STATUSES = ("paid", "partially_refunded", "refunded")
OTHER_METHOD = "OTHER"
DELETED_PRODUCT_ID = 0
DELETED_PRODUCT_NAME = "(삭제된 상품)"
METHOD_LABELS = {"CARD": "카드", "MONEY": "카카오페이머니", OTHER_METHOD: "기타"}
GRAINS = ("day", "week", "month")
MAX_RANGE_DAYS = 366 * 20
_KST_OFFSET = timedelta(hours=9)
_CHUNK = 500


# ---------------------------------------------------------------- small pure helpers


def kst_day(instant: datetime) -> date:
    """KST calendar day of an instant (Korea has no DST: a fixed +9h is exact and fast)."""
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return (instant + _KST_OFFSET).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start(day: date, grain: str) -> date:
    """The first day of the day / week (Monday) / month bucket holding `day`."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ValidationFailed(f"알 수 없는 단위입니다: {grain} (day, week, month)")


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return None if not denominator else numerator / denominator


def rounded_div(numerator: int, denominator: int) -> int | None:
    """Integer KRW division rounded half up (away from zero); None when dividing by zero."""
    if not denominator:
        return None
    sign = -1 if (numerator < 0) != (denominator < 0) else 1  # pragma: no mutate (equivalent: 0 / d rounds to 0 with either sign; d == 0 returned above)
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))


def change(current: int | float | None, previous: int | float | None) -> float | None:
    """Relative change against the previous period; None when there was nothing before."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def check_range(first: date, last: date) -> None:
    if last < first:
        raise ValidationFailed("종료일이 시작일보다 빠릅니다. 기간을 다시 선택해 주세요.")
    if (last - first).days > MAX_RANGE_DAYS:
        raise ValidationFailed("기간은 20년 이내로 선택해 주세요.")


def previous_range(first: date, last: date) -> tuple[date, date]:
    """The equal-length period right before [first, last]."""
    length = (last - first).days + 1
    return first - timedelta(days=length), first - timedelta(days=1)


def split_amount(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights`: floor each share, the remainder on the last one."""
    if not weights:
        return []
    weight_sum = sum(weights)
    shares = [0] * len(weights) if weight_sum <= 0 else [total * w // weight_sum for w in weights]  # pragma: no mutate (equivalent: <= 1 also gives all to the one weight of 1)
    shares[-1] += total - sum(shares)
    return shares


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _median_of_counts(counts: dict[int, int]) -> float:
    """The median of a multiset given as value -> count (same as statistics.median of the list)."""
    total = sum(counts.values())
    wanted = {(total - 1) // 2, total // 2}  # pragma: no mutate (equivalent: a half index falls in the same value's run as its floor)
    found: list[int] = []
    seen = 0
    for value in sorted(counts):
        count = counts[value]
        for index in sorted(wanted):
            if seen <= index < seen + count:
                found.append(value)
        seen += count
    return sum(found) / len(found)
