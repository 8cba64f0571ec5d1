"""The smart test: split a sample into variant groups and the rest, and choose the winner by the
campaign's rule once the test has run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from core.campaigns.results import VariantResult
from core.errors import ValidationFailed
from core.models import RecipientGroup

WINNER_RULES = {
    "click_rate": "클릭률이 가장 높은 안 (같으면 주문 수, 그다음 앞 순서)",
    "order_rate": "주문 전환이 가장 많은 안 (같으면 클릭률, 그다음 앞 순서)",
    "revenue": "귀속 매출이 가장 큰 안 (같으면 클릭률, 그다음 앞 순서)",
}

DEFAULT_OPTIONS: dict[str, Any] = {
    "seed": 0,
    "test_window_hours": 24,
    "winner_rule": "click_rate",
    "auto_winner": False,
    "attribution_days": 7,
    "link_url": None,
    # The kind of goods advertised (a product category): buyers of it in the last 6 months may get
    # the ad without consent (정보통신망법 제50조①1). None: consent only.
    "advertised_category": None,
}


def assign_groups(
    members: Sequence[tuple], *, seed: str, keys: Sequence[str], test_share: float, holdout_share: float
) -> list[tuple[tuple, str, str | None]]:
    """Deterministic random split (same seed, same members -> same groups): holdout first, then
    the test sample dealt round-robin over the variants; with one variant everyone else gets it."""
    shuffled = sorted(members, key=lambda m: m[0])
    random.Random(seed).shuffle(shuffled)
    testing = len(keys) > 1
    holdout = int(len(shuffled) * holdout_share)
    test = int(len(shuffled) * test_share) if testing else 0
    if testing and test < len(keys):
        raise ValidationFailed(
            f"테스트 표본이 {test}명으로 안 {len(keys)}개에 부족합니다. 테스트 비율을 높이거나 대상을 넓히세요."
        )
    assignments: list[tuple[tuple, str, str | None]] = [
        (m, RecipientGroup.HOLDOUT, None) for m in shuffled[:holdout]
    ]
    if testing:
        sample = shuffled[holdout : holdout + test]
        assignments += [(m, RecipientGroup.TEST, keys[i % len(keys)]) for i, m in enumerate(sample)]
    else:
        assignments += [(m, RecipientGroup.REST, keys[0]) for m in shuffled[holdout:]]
    return assignments


def choose_winner(variants: Sequence[VariantResult], rule: str) -> tuple[str, str]:
    """The stated automatic rule (pure): best by the rule's metric, ties by the next, then order."""
    if not variants:
        raise ValidationFailed("테스트 결과가 없습니다")
    metrics = {
        "click_rate": lambda r: (r.click_rate, r.orders, r.revenue),
        "order_rate": lambda r: (r.orders / max(1, r.recipients - r.skipped), r.click_rate, r.revenue),
        "revenue": lambda r: (r.revenue, r.click_rate, r.orders),
    }
    if rule not in metrics:
        raise ValidationFailed(f"알 수 없는 승자 규칙입니다: {rule!r}")
    ordered = [r for r in variants if r.variant in "ABCDE"]
    best = max(ordered, key=lambda r: (metrics[rule](r), -"ABCDE".index(r.variant)))
    if all(metrics[rule](r) == metrics[rule](best) for r in ordered):
        return best.variant, f"자동 선택: 차이가 없어 {best.variant}안 ({WINNER_RULES[rule]})"
    return best.variant, f"자동 선택: {WINNER_RULES[rule]}"
