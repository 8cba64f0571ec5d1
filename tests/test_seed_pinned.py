"""The demo's content is pinned: a change made for speed must not change the data silently.

Every table's row count and a checksum of its rows (read back through the models' types, so SQLite
and PostgreSQL give the same values) for one small seed. The figures were taken from the seed before
the speed work of issue 15 (commit c26633e), then updated once on purpose for issue 20: orders gained
their discount columns, reviews their order item and link columns, one negative review its inquiry,
and the demo its coupons, points, a referral and three settings (refund policy, VIP rule, rewards);
every other table's rows are as before. If a change means to alter the demo, update them in the same
commit and say why.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from core import clock
from core.demo import generator, seed

NOW = clock.parse_instant("2026-11-23T10:00:00+09:00")
SMALL = {"customers": 300, "orders": 3000, "seed": 7, "now": NOW}
NOT_COMPARED = {"staff_user", "audit_log", "alembic_version"}  # argon2 salts and wall-clock stamps

# table -> (rows, first 16 hex digits of the sha256 of the rows in primary-key order)
PINNED: dict[str, tuple[int, str]] = {
    "coupon": (2, "26788bc3e07f5a49"),
    "customer": (300, "0232cd6dd34e88f4"),
    "customer_product_summary": (1461, "be78b05d4629f489"),
    "customer_summary": (242, "9bcb684a36145969"),
    "inquiry": (109, "ab41868263e7485b"),
    "inquiry_event": (294, "efb6521b788c9eeb"),
    "order_item": (4052, "c1dc312398844540"),
    "orders": (3038, "98d393fcecf8b994"),
    "payment": (3003, "166505bef9b84e7c"),
    "payment_link": (274, "4dc21ae01bb80321"),
    "point_entry": (1, "59e4bf25dc1fb5cb"),
    "product": (17, "821bdc5596103811"),
    "referral": (1, "bdf0d183595a47c7"),
    "referral_code": (1, "954838da0c4e4f52"),
    "refund": (118, "f460b09dff7c14f1"),
    "review": (262, "8881e219a2a17f69"),
    "sandbox_instrument": (18, "e51ac893a6e2a14a"),
    "sandbox_payment": (3003, "8f327856628613eb"),
    "setting": (3, "285c0e0004679d27"),
    "subscription": (18, "0c6deb1fc8238c19"),
    "subscription_charge": (38, "0c07ec4d0f9c581a"),
    "subscription_event": (26, "0a7d1d5e2f5bdd86"),
    "subscription_plan": (3, "1b31d501fccf58b7"),
}


def _checksums(engine: Engine) -> dict[str, tuple[int, str]]:
    sums = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in NOT_COMPARED:
                continue
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(_stable(tuple(row)).encode())
            sums[table.name] = (len(rows), digest.hexdigest()[:16])
    return sums


def _stable(value: Any) -> str:
    """One text per value whatever the driver returned (dict keys sorted, instants in UTC)."""
    if isinstance(value, tuple | list):
        return "(" + ",".join(_stable(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_stable(value[k])}" for k in sorted(value)) + "}"
    if hasattr(value, "utcoffset") and hasattr(value, "hour"):
        return clock.as_utc(value).isoformat()
    return repr(value)


@pytest.mark.parametrize("bulk", [False, True], ids=["row-path", "bulk-path"])
def test_a_small_seed_gives_exactly_the_pinned_rows(
    engine: Engine, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both load paths (indexes kept, or dropped and rebuilt as for a big seed) give the same rows."""
    if bulk:
        monkeypatch.setattr(generator, "BULK_INDEX_THRESHOLD", 0)
    with clock.frozen(NOW):
        counts = seed.seed_demo(engine, **SMALL)
    assert counts["orders"] == PINNED["orders"][0]
    sums = _checksums(engine)
    assert {name: value for name, value in sums.items() if name in PINNED} == PINNED
    assert {name for name, (rows, _sum) in sums.items() if rows and name not in PINNED} == set()
