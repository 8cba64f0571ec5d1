"""VIP customers (seed 000: the customers who spend the most get VIP benefits), by the owner's rule.

The rule (settings key "vip_rule", owner only, audited; off until the owner sets a threshold):

- Only an active customer counts: at least `min_orders` paid orders, and the last one within the
  last `window_days` (365: a customer who stopped buying a year ago is no VIP any more).
- Then a spend bar, a rank bar, or both: the customer's paid total (total minus refunded over the
  paid orders, the same figure as the segment rules) is at least `min_spend` 원, and/or it is
  among the top `top_percent` % of the active customers (the top ceil(N% x count); a tie at the
  last place is in too). With both set, `match` says whether one is enough ("any") or both are
  needed ("all").

How fresh: computed when read, from core.models.customer_summary, which every payment, refund and
import updates in its own transaction; so the spend bar, the orders and the window are exact as of
the screen's read. The rank bar's cut-off (the paid total at the last top place: a count and an
ordered scan over every active customer, ~140 ms on the 1M-order store) is kept per store and rule
for at most THRESHOLD_TTL, and recomputed at once after a rule change or a summary refresh in this
process (a payment through the web server); a payment recorded by the worker moves it within
THRESHOLD_TTL. The paid total is over the customer's whole history (the summary keeps no per-window
sums); the window bounds the last purchase, not the sum.

`is_vip` is the rule as a function of values; `condition` is the same rule as SQL over the summary
(the segment "VIP 고객" and the counts), tested against `is_vip` on tables of cases; `vip_ids`
answers a screen's customers (at most a page of them) with `is_vip` itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlmodel import Session

from core import clock, settings_store
from core.accounts.actor import Actor, require_role
from core.errors import ValidationFailed
from core.models import CustomerSummary, Role

SETTING_KEY = "vip_rule"
LABEL = "VIP"  # the one word every screen shows (ui.labels.VIP_BADGE)
MAX_SPEND = 10**12
MATCHES = {"any": "둘 중 하나만 맞아도", "all": "둘 다 맞아야"}
CS = CustomerSummary.__table__.c
THRESHOLD_TTL = timedelta(minutes=10)
_thresholds: dict[tuple[str, VipRule], tuple[datetime, int | None]] = {}


@dataclass(frozen=True)
class VipRule:
    min_spend: int | None = None  # 원; None: no spend bar
    top_percent: float | None = None  # 0 < N <= 100; None: no rank bar
    min_orders: int = 1
    match: str = "any"  # with both bars: "any" one is enough, "all" both are needed
    window_days: int = 365

    @property
    def active(self) -> bool:
        """A rule without a bar makes nobody VIP (the shop has not chosen yet)."""
        return self.min_spend is not None or self.top_percent is not None

    def since(self, now: datetime) -> datetime:
        """The earliest last purchase an active customer may have."""
        return now - timedelta(days=self.window_days)


# --------------------------------------------------------------------------- pure rules


def top_count(customers: int, percent: float) -> int:
    """How many places the top `percent` % of `customers` holds: rounded up (top 10% of 95 is 10),
    so a shop with few customers still has its best one."""
    if customers <= 0:
        return 0
    return min(customers, math.ceil(customers * percent / 100 - 1e-9))


def is_vip(
    rule: VipRule,
    *,
    paid_total: int,
    paid_orders: int,
    last_ordered_at: datetime | None,
    now: datetime,
    top_threshold: int | None,
) -> bool:
    """The rule for one customer's figures; `top_threshold` is the paid total at the last top place
    (None: the rank bar has nobody, e.g. no active customer)."""
    if not rule.active or paid_orders < rule.min_orders or last_ordered_at is None:
        return False
    if clock.as_utc(last_ordered_at) < rule.since(now):
        return False
    bars = []
    if rule.min_spend is not None:
        bars.append(paid_total >= rule.min_spend)
    if rule.top_percent is not None:
        bars.append(top_threshold is not None and paid_total >= top_threshold)
    return all(bars) if rule.match == "all" else any(bars)


def check(raw: dict[str, Any]) -> VipRule:
    """A rule from the 설정 form or the store; a clear Korean message for anything out of range."""

    def number(key: str, kind: type, low: float, high: float, label: str) -> Any:
        value = raw.get(key)
        if value is None or value == "":
            return None
        try:
            parsed = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ValidationFailed(f"{label}은(는) 숫자로 입력하세요: {value!r}") from None
        if isinstance(value, bool) or not low <= parsed <= high:
            raise ValidationFailed(f"{label}은(는) {low:,}~{high:,} 사이로 입력하세요")
        return parsed

    match = raw.get("match") or "any"
    if match not in MATCHES:
        raise ValidationFailed("두 조건을 묶는 방법을 고르세요 (하나만 / 둘 다)")
    spend = number("min_spend", int, 1, MAX_SPEND, "구매액 기준")
    percent = number("top_percent", float, 0.1, 100, "상위 비율(%)")
    orders = number("min_orders", int, 1, 100_000, "최소 주문 수")
    return VipRule(
        min_spend=spend,
        top_percent=percent,
        min_orders=1 if orders is None else orders,
        match=match,
        window_days=VipRule.window_days,
    )


# --------------------------------------------------------------------------- settings


def load(session: Session) -> VipRule:
    stored = settings_store.get(session, SETTING_KEY) or {}
    try:
        return check(stored)
    except ValidationFailed:  # a rule written by an older version: off, not a broken screen
        return VipRule()


def save(session: Session, actor: Actor, raw: dict[str, Any]) -> VipRule:
    """Owner only, audited (settings_store.put)."""
    require_role(actor, Role.OWNER)
    rule = check(raw)
    settings_store.put(session, actor, SETTING_KEY, asdict(rule))
    forget_thresholds()
    return rule


# --------------------------------------------------------------------------- over the summaries


def _eligible(rule: VipRule, now: datetime) -> ColumnElement[bool]:
    return and_(CS.paid_orders >= rule.min_orders, CS.last_ordered_at >= rule.since(now))


def forget_thresholds() -> None:
    """Drop the kept cut-offs (the rule changed, or a customer's summary did)."""
    _thresholds.clear()


def top_threshold(session: Session, rule: VipRule, now: datetime) -> int | None:
    """The paid total at the last top place among the active customers (None: no rank bar), kept
    for THRESHOLD_TTL per store and rule (see the module's "How fresh")."""
    if rule.top_percent is None:
        return None
    key = (session.get_bind().engine.url.render_as_string(hide_password=True), rule)  # an Engine or a Connection
    kept = _thresholds.get(key)
    if kept is not None and timedelta(0) <= now - kept[0] < THRESHOLD_TTL:
        return kept[1]
    value = _top_threshold(session, rule, now)
    _thresholds[key] = (now, value)
    return value


def _top_threshold(session: Session, rule: VipRule, now: datetime) -> int | None:
    active = session.execute(select(func.count()).where(_eligible(rule, now))).scalar_one()
    places = top_count(int(active), rule.top_percent)
    if places == 0:
        return None
    return session.execute(
        select(CS.paid_total)
        .where(_eligible(rule, now))
        .order_by(CS.paid_total.desc())
        .offset(places - 1)
        .limit(1)
    ).scalar_one()


def condition(rule: VipRule, now: datetime, threshold: int | None) -> ColumnElement[bool]:
    """`is_vip` as SQL over customer_summary (CS), for the segment and the counts."""
    if not rule.active:
        return false()
    bars = []
    if rule.min_spend is not None:
        bars.append(CS.paid_total >= rule.min_spend)
    if rule.top_percent is not None:
        bars.append(CS.paid_total >= threshold if threshold is not None else false())
    joined = and_(*bars) if rule.match == "all" else or_(*bars)
    return and_(_eligible(rule, now), joined)


def vip_customer_ids(session: Session, now: datetime | None = None) -> Any:
    """SELECT of every VIP's customer id (the segment "VIP 고객" reads it)."""
    now = now or clock.now()
    rule = load(session)
    return select(CS.customer_id).where(condition(rule, now, top_threshold(session, rule, now)))


def count(session: Session, now: datetime | None = None) -> int:
    now = now or clock.now()
    return int(
        session.execute(
            select(func.count()).select_from(vip_customer_ids(session, now).subquery())
        ).scalar_one()
    )


def vip_ids(session: Session, customer_ids: Iterable[int | None], now: datetime | None = None) -> set[int]:
    """Which of these customers are VIP now (the badges of one screen: a page of customers)."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    rule = load(session)
    if not ids or not rule.active:
        return set()
    now = now or clock.now()
    threshold = top_threshold(session, rule, now)
    rows = session.execute(
        select(CS.customer_id, CS.paid_total, CS.paid_orders, CS.last_ordered_at).where(
            CS.customer_id.in_(ids)
        )
    ).all()
    return {
        row.customer_id
        for row in rows
        if is_vip(
            rule,
            paid_total=row.paid_total,
            paid_orders=row.paid_orders,
            last_ordered_at=row.last_ordered_at,
            now=now,
            top_threshold=threshold,
        )
    }


def is_vip_customer(session: Session, customer_id: int, now: datetime | None = None) -> bool:
    return customer_id in vip_ids(session, [customer_id], now)
