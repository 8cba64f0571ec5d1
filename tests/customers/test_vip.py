"""VIP (seed 000: the customers who spend the most get VIP benefits): the owner's rule as a table of
boundary cases, the same rule over the stored summaries (SQLite and PostgreSQL), and one count for
the badge, the 캠페인 segment "VIP 고객" and 설정.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core import clock
from core.accounts.actor import Actor
from core.campaigns import segments
from core.customers import vip
from core.db import session_scope
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Customer, Product
from core.payments.orders import record_paid_order
from tests.conftest import TEST_NOW

DAY = timedelta(days=1)
RECENT = TEST_NOW - 10 * DAY


def _vip(
    rule: vip.VipRule, total: int, orders: int = 1, last: datetime | None = RECENT, top: int | None = None
) -> bool:
    return vip.is_vip(
        rule, paid_total=total, paid_orders=orders, last_ordered_at=last, now=TEST_NOW, top_threshold=top
    )


@pytest.mark.parametrize(
    ("rule", "total", "orders", "last", "top", "expected"),
    [
        # No bar set: the shop has not chosen, nobody is VIP.
        (vip.VipRule(), 10**9, 100, RECENT, None, False),
        # Spend bar: at the bar is in, one 원 under is out.
        (vip.VipRule(min_spend=500_000), 500_000, 1, RECENT, None, True),
        (vip.VipRule(min_spend=500_000), 499_999, 1, RECENT, None, False),
        # Orders: at least M paid orders.
        (vip.VipRule(min_spend=500_000, min_orders=3), 900_000, 3, RECENT, None, True),
        (vip.VipRule(min_spend=500_000, min_orders=3), 900_000, 2, RECENT, None, False),
        # Active: the last purchase within 365 days; exactly 365 days ago is in, a second more is out.
        (vip.VipRule(min_spend=1), 10, 1, TEST_NOW - 365 * DAY, None, True),
        (vip.VipRule(min_spend=1), 10, 1, TEST_NOW - 365 * DAY - timedelta(seconds=1), None, False),
        (vip.VipRule(min_spend=1), 10, 1, None, None, False),
        # Rank bar: at the last top place's total is in (ties too), under it is out, nobody ranked is out.
        (vip.VipRule(top_percent=10), 300_000, 1, RECENT, 300_000, True),
        (vip.VipRule(top_percent=10), 299_999, 1, RECENT, 300_000, False),
        (vip.VipRule(top_percent=10), 300_000, 1, RECENT, None, False),
        # Both bars: "any" needs one, "all" needs both.
        (vip.VipRule(min_spend=500_000, top_percent=10, match="any"), 400_000, 1, RECENT, 300_000, True),
        (vip.VipRule(min_spend=500_000, top_percent=10, match="all"), 400_000, 1, RECENT, 300_000, False),
        (vip.VipRule(min_spend=500_000, top_percent=10, match="all"), 500_000, 1, RECENT, 300_000, True),
        (vip.VipRule(min_spend=200_000, top_percent=10, match="any"), 250_000, 1, RECENT, 300_000, True),
    ],
)
def test_the_vip_rule_at_its_boundaries(rule, total, orders, last, top, expected) -> None:  # type: ignore[no-untyped-def]
    assert _vip(rule, total, orders, last, top) is expected


@pytest.mark.parametrize(
    ("customers", "percent", "places"),
    [
        (0, 10, 0),
        (1, 10, 1),
        (9, 10, 1),
        (10, 10, 1),
        (11, 10, 2),
        (95, 10, 10),
        (100, 10, 10),
        (100, 100, 100),
        (3, 50, 2),
        (200_000, 0.1, 200),
        (7, 100, 7),
    ],
)
def test_the_top_percent_is_rounded_up_so_a_small_shop_keeps_its_best_customer(
    customers, percent, places
) -> None:  # type: ignore[no-untyped-def]
    assert vip.top_count(customers, percent) == places


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"min_spend": -1}, "구매액 기준"),
        ({"min_spend": "많이"}, "숫자로"),
        ({"min_spend": 10**13}, "구매액 기준"),
        ({"top_percent": 0}, "상위 비율"),
        ({"top_percent": 101}, "상위 비율"),
        ({"top_percent": True}, "상위 비율"),
        ({"min_orders": 0}, "최소 주문 수"),
        ({"match": "some"}, "묶는 방법"),
    ],
)
def test_a_bad_rule_is_refused_in_korean(raw, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed, match=reason):
        vip.check(raw)


def test_only_the_owner_sets_the_rule_and_it_is_audited(engine: Engine, actors: dict[str, Actor]) -> None:
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        vip.save(s, actors["cs"], {"min_spend": 1})
    with session_scope(engine) as s:
        vip.save(s, actors["owner"], {"min_spend": 300_000, "min_orders": 2})
    with session_scope(engine) as s:
        assert vip.load(s) == vip.VipRule(min_spend=300_000, min_orders=2)
        audited = s.execute(
            select(func.count()).where(
                AuditLog.action == "setting.change", AuditLog.entity_id == vip.SETTING_KEY
            )
        ).scalar_one()
        assert audited == 1


# --------------------------------------------------------------------------- over the summaries

# (name, [(amount, days ago)]): totals 900k, 500k, 500k (a tie), 300k, 200k (3 orders), 100k, and one
# big spender whose last purchase is over a year ago.
SHOP = [
    ("가", [(900_000, 5)]),
    ("나", [(500_000, 40)]),
    ("다", [(250_000, 100), (250_000, 20)]),
    ("라", [(300_000, 200)]),
    ("마", [(50_000, 300), (50_000, 30), (100_000, 3)]),
    ("바", [(100_000, 1)]),
    ("사", [(2_000_000, 400)]),
]


@pytest.fixture
def shop(engine: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        product = Product(name="원두", price=10_000)
        s.add(product)
        s.flush()
        number = 0
        for name, orders in SHOP:
            customer = Customer(name=name)
            s.add(customer)
            s.flush()
            ids[name] = customer.id  # type: ignore[assignment]
            for amount, days_ago in orders:
                number += 1
                at = TEST_NOW - days_ago * DAY
                record_paid_order(
                    s,
                    order_number=f"V-{number:04d}",
                    customer_id=customer.id,
                    product_id=product.id,  # type: ignore[arg-type]
                    item_name="원두",
                    amount=amount,
                    tax_free_amount=0,
                    source="link",
                    ordered_at=at,
                    paid_at=at,
                )
    return ids


def _set(engine: Engine, owner: Actor, **raw: object) -> None:
    with session_scope(engine) as s:
        vip.save(s, owner, dict(raw))


def _names(engine: Engine, shop: dict[str, int]) -> set[str]:
    with session_scope(engine) as s:
        found = vip.vip_ids(s, shop.values())
    return {name for name, cid in shop.items() if cid in found}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, set()),
        ({"min_spend": 500_000}, {"가", "나", "다"}),  # 사 spent more, but over a year ago
        ({"min_spend": 500_000, "min_orders": 2}, {"다"}),
        # 6 active customers, top 34% = 3 places: 900k, 500k, 500k (the tie at the 3rd place is in).
        ({"top_percent": 34}, {"가", "나", "다"}),
        # top 20% = 2 places; the 2nd place is a tie at 500k: both are in.
        ({"top_percent": 20}, {"가", "나", "다"}),
        ({"top_percent": 10}, {"가"}),
        ({"top_percent": 10, "min_spend": 300_000, "match": "any"}, {"가", "나", "다", "라"}),
        ({"top_percent": 50, "min_spend": 400_000, "match": "all"}, {"가", "나", "다"}),
        ({"min_spend": 200_000, "min_orders": 3}, {"마"}),
    ],
)
def test_vip_over_the_summaries_is_the_rule_and_one_count_for_badge_segment_and_settings(
    engine: Engine, actors: dict[str, Actor], shop: dict[str, int], raw: dict[str, object], expected: set[str]
) -> None:
    _set(engine, actors["owner"], **raw)
    assert _names(engine, shop) == expected
    with session_scope(engine) as s:
        assert vip.count(s) == len(expected)
        condition = segments.segment_condition(s, {"include": [{"type": "vip"}]}, clock.now())
        members = set(s.execute(select(Customer.id).where(condition)).scalars())
        assert {name for name, cid in shop.items() if cid in members} == expected


def test_a_payment_makes_a_customer_vip_at_once(
    engine: Engine, actors: dict[str, Actor], shop: dict[str, int]
) -> None:
    """How fresh: the summaries are updated in the payment's transaction, so the badge follows at once."""
    _set(engine, actors["owner"], min_spend=150_000)
    assert "바" not in _names(engine, shop)
    with session_scope(engine) as s:
        record_paid_order(
            s,
            order_number="V-9999",
            customer_id=shop["바"],
            product_id=None,
            item_name="원두",
            amount=50_000,
            tax_free_amount=0,
            source="link",
            ordered_at=TEST_NOW,
            paid_at=TEST_NOW,
        )
    assert "바" in _names(engine, shop)


def test_a_rule_from_an_older_version_turns_vip_off_instead_of_breaking_screens(
    engine: Engine, actors
) -> None:  # type: ignore[no-untyped-def]
    from core import settings_store

    with session_scope(engine) as s:
        settings_store.put(s, actors["owner"], vip.SETTING_KEY, {"min_spend": "lots"})
    with session_scope(engine) as s:
        assert vip.load(s) == vip.VipRule() and vip.count(s) == 0
