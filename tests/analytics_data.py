"""A small shop's sales with every awkward case, written to the store AND kept as plain records.

The tests compute each figure from the plain records (zoneinfo, plain Python) and compare it with
core.analytics reading the store, so the two share no code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete
from sqlmodel import Session

from core.models import (
    AnalyticsDirtyCustomer,
    AnalyticsDirtyDay,
    AnalyticsState,
    CohortRetention,
    CohortValue,
    Customer,
    CustomerMonth,
    CustomerProductLast,
    CustomerSales,
    DailyProductSales,
    DailySales,
    Order,
    OrderItem,
    Payment,
    PaymentLink,
    Product,
    ProductRepurchase,
    Refund,
    RepurchaseGap,
    Subscription,
    SubscriptionCharge,
    SubscriptionPlan,
)

ROLLUP_MODELS = (
    CohortValue, DailySales, DailyProductSales, CustomerSales, CustomerMonth, CohortRetention,
    ProductRepurchase, RepurchaseGap, CustomerProductLast, AnalyticsDirtyDay, AnalyticsDirtyCustomer,
    AnalyticsState,
)


def forget_rollups(engine: Engine) -> None:
    """Empty every rollup table and the watermark: the store as if never rolled up (every figure
    read live from the raw rows), e.g. to compare with what an import's rollup step built."""
    with Session(engine) as session:
        for model in ROLLUP_MODELS:
            session.execute(delete(model))
        session.commit()


SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=SEOUL).astimezone(UTC)  # the frozen "now" of the tests


def kst(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SEOUL).astimezone(UTC)


@dataclass
class SaleRecord:
    order_id: int
    customer_id: int
    status: str
    total: int
    paid_at: datetime | None
    method: str | None  # of the first approved payment
    items: list[tuple[int | None, int, int]]  # (product_id, quantity, amount)
    refunds: list[tuple[int, datetime]] = field(default_factory=list)  # (amount, completed_at)


@dataclass
class Shop:
    product_ids: list[int]
    deleted_product_id: int
    customer_ids: list[int]
    sales: list[SaleRecord] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    subscriptions: list[dict] = field(default_factory=list)
    charges: list[dict] = field(default_factory=list)


class ShopWriter:
    def __init__(self, session: Session, first_key: int = 0) -> None:
        self.session = session
        self.counter = first_key
        self.payments: dict[int, int | None] = {}

    def _key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def sale(
        self,
        shop: Shop,
        customer_id: int,
        paid_at: datetime | None,
        items: list[tuple[int | None, int, int]],
        *,
        method: str | None = "CARD",
        status: str = "paid",
        extra: int = 0,
        failed_first: str | None = None,
    ) -> SaleRecord:
        """An order of `items` (+ `extra`, e.g. shipping), paid at `paid_at` with `method`."""
        total = sum(amount for _, _, amount in items) + extra
        order = Order(
            order_number=self._key("ORD"),
            customer_id=customer_id,
            total_amount=total,
            status=status,
            ordered_at=(paid_at or NOW) - timedelta(minutes=5),
            paid_at=paid_at,
        )
        self.session.add(order)
        self.session.flush()
        for product_id, quantity, amount in items:
            self.session.add(
                OrderItem(
                    order_id=order.id,
                    product_id=product_id,
                    product_name=f"상품{product_id}",
                    quantity=quantity,
                    unit_price=amount // quantity,
                    amount=amount,
                )
            )
        if failed_first:
            self.session.add(
                Payment(
                    order_id=order.id,
                    customer_id=customer_id,
                    gateway="sandbox",
                    method=failed_first,
                    amount=total,
                    status="failed",
                    idempotency_key=self._key("PAYF"),
                )
            )
            self.session.flush()
        payment = None
        if paid_at is not None:
            payment = Payment(
                order_id=order.id,
                customer_id=customer_id,
                gateway="sandbox",
                method=method,
                amount=total,
                status="approved",
                approved_at=paid_at,
                idempotency_key=self._key("PAY"),
            )
            self.session.add(payment)
        self.session.flush()
        record = SaleRecord(order.id, customer_id, status, total, paid_at, method, items)
        self.payments[order.id] = payment.id if payment else None
        shop.sales.append(record)
        return record

    def refund(
        self,
        record: SaleRecord,
        amount: int,
        completed_at: datetime | None,
        *,
        status: str = "succeeded",
        created_at: datetime | None = None,
    ) -> None:
        created = created_at or completed_at or NOW
        self.session.add(
            Refund(
                payment_id=self.payments[record.order_id],
                order_id=record.order_id,
                amount=amount,
                reason="test",
                status=status,
                idempotency_key=self._key("REF"),
                created_at=created,
                completed_at=completed_at,
            )
        )
        self.session.flush()
        if status == "succeeded":
            record.refunds.append((amount, completed_at or created))


def build_shop(session: Session, seed: int = 7) -> Shop:
    rng = random.Random(seed)
    products = [Product(name=f"상품{i}", price=10_000 * (i + 1)) for i in range(5)]
    session.add_all(products)
    customers = [Customer(name=f"고객{i}") for i in range(12)]
    session.add_all(customers)
    session.flush()
    shop = Shop(
        product_ids=[p.id for p in products],
        deleted_product_id=products[4].id,
        customer_ids=[c.id for c in customers],
    )
    w = ShopWriter(session)
    p = shop.product_ids

    # KST boundaries: 23:30 KST on Jan 31 is January (UTC says Jan 31 14:30); 00:10 Feb 1 is February.
    w.sale(shop, shop.customer_ids[0], kst(2026, 1, 31, 23, 30), [(p[0], 1, 30_000)])
    w.sale(shop, shop.customer_ids[0], kst(2026, 2, 1, 0, 10), [(p[0], 2, 60_000)], method="MONEY")
    w.sale(shop, shop.customer_ids[1], kst(2026, 2, 28, 23, 59), [(p[1], 1, 20_000)])
    # Multi-item with shipping, first payment failed with another method.
    w.sale(
        shop,
        shop.customer_ids[2],
        kst(2026, 1, 10, 9),
        [(p[0], 1, 10_001), (p[2], 3, 29_999)],
        extra=3_000,
        failed_first="MONEY",
    )
    # Pending and canceled orders never count.
    w.sale(shop, shop.customer_ids[3], None, [(p[1], 1, 20_000)], status="pending")
    w.sale(shop, shop.customer_ids[3], None, [(p[1], 1, 20_000)], status="canceled")
    # An order whose product is deleted later, and an item whose product row is gone (product_id None).
    gone = w.sale(shop, shop.customer_ids[4], kst(2026, 2, 5, 15), [(p[4], 2, 40_000), (None, 1, 5_000)])
    # No method recorded by the gateway.
    w.sale(shop, shop.customer_ids[5], kst(2026, 2, 6, 8), [(p[3], 1, 15_000)], method=None)
    # Full refund on a later day, partial refunds (two), a refund bigger than the day's sales.
    full = w.sale(shop, shop.customer_ids[6], kst(2026, 1, 20, 10), [(p[2], 1, 50_000)], status="refunded")
    w.refund(full, 50_000, kst(2026, 1, 22, 0, 5))
    part = w.sale(
        shop,
        shop.customer_ids[7],
        kst(2026, 2, 10, 20),
        [(p[0], 1, 30_000), (p[1], 2, 40_000)],
        status="partially_refunded",
    )
    w.refund(part, 7_001, kst(2026, 2, 11, 23, 50))
    w.refund(part, 3_000, kst(2026, 2, 12, 1))
    w.refund(part, 9_999, None, status="failed")  # never counts
    big = w.sale(shop, shop.customer_ids[8], kst(2026, 1, 5, 10), [(p[3], 10, 150_000)], status="refunded")
    w.sale(shop, shop.customer_ids[9], kst(2026, 3, 3, 10), [(p[0], 1, 10_000)])
    w.refund(big, 150_000, kst(2026, 3, 3, 18))  # 3 March: refunds 150,000 > sales 10,000
    # Refund not yet completed (completed_at None) counts on its created_at day.
    pending_refund = w.sale(
        shop, shop.customer_ids[10], kst(2026, 3, 1, 11), [(p[1], 1, 20_000)], status="partially_refunded"
    )
    w.refund(pending_refund, 5_000, None, created_at=kst(2026, 3, 2, 9))
    # Repeat buyers over months (cohorts, repurchase intervals), random but seeded.
    start = kst(2026, 1, 1, 0, 0)
    for _ in range(60):
        customer = rng.choice(shop.customer_ids[:8])
        paid_at = start + timedelta(minutes=rng.randrange(0, 73 * 24 * 60))
        product = rng.choice(p[:4])
        quantity = rng.randint(1, 3)
        record = w.sale(
            shop,
            customer,
            paid_at,
            [(product, quantity, quantity * 9_900)],
            method=rng.choice(["CARD", "MONEY"]),
        )
        if rng.random() < 0.2:
            refunded_at = min(paid_at + timedelta(hours=rng.randint(1, 72)), NOW - timedelta(minutes=1))
            w.refund(record, rng.randint(1, record.total), refunded_at)
    # Today's sales (after any rollup), one at 00:00 KST sharp.
    w.sale(shop, shop.customer_ids[11], kst(2026, 3, 15, 0, 0), [(p[2], 1, 25_000)])
    w.sale(shop, shop.customer_ids[0], kst(2026, 3, 15, 9), [(p[0], 1, 30_000)], method="MONEY")
    # Delete product 4 after it was sold.
    deleted = session.get(Product, shop.deleted_product_id)
    deleted.deleted_at = kst(2026, 3, 1)
    deleted.is_active = False
    session.add(deleted)
    del gone

    # Payment links: funnel stages.
    link_specs = [
        (kst(2026, 2, 1, 10), "created", None, None),
        (kst(2026, 2, 2, 10), "opened", kst(2026, 2, 2, 11), None),
        (kst(2026, 2, 3, 10), "method_selected", kst(2026, 2, 3, 11), None),
        (kst(2026, 2, 4, 10), "paid", kst(2026, 2, 4, 11), kst(2026, 2, 4, 12)),
        (kst(2026, 2, 5, 10), "paid", None, kst(2026, 2, 5, 12)),
        (kst(2026, 2, 6, 10), "quit", kst(2026, 2, 6, 11), None),
        (kst(2026, 2, 7, 10), "expired", None, None),
        (kst(2026, 2, 28, 23, 30), "failed", kst(2026, 3, 1, 1), None),
        (kst(2026, 3, 1, 0, 30), "paid", kst(2026, 3, 1, 1), kst(2026, 3, 1, 2)),
    ]
    for i, (created, status, opened, paid) in enumerate(link_specs):
        product_id = p[i % 2]
        session.add(
            PaymentLink(
                code=f"L{i}",
                product_id=product_id,
                item_name="링크",
                amount=1000,
                status=status,
                created_at=created,
                opened_at=opened,
                paid_at=paid,
            )
        )
        shop.links.append(
            {"created": created, "status": status, "opened": opened, "paid": paid, "product_id": product_id}
        )

    # Subscriptions: monthly 39,000, a 3-month plan, a weekly one; churn in February.
    monthly = SubscriptionPlan(name="월회비", amount=39_000)
    quarterly = SubscriptionPlan(name="분기", amount=90_000, interval_count=3)
    weekly = SubscriptionPlan(name="주간", amount=10_000, interval_unit="week")
    session.add_all([monthly, quarterly, weekly])
    session.flush()
    sub_specs = [
        (monthly, 39_000, kst(2025, 12, 10), None),
        (monthly, 39_000, kst(2026, 1, 5), kst(2026, 2, 20)),
        (monthly, 35_000, kst(2026, 1, 31, 23, 30), None),
        (quarterly, 90_000, kst(2026, 2, 1, 0, 5), None),
        (weekly, 10_000, kst(2026, 2, 14), kst(2026, 3, 1, 0, 0)),
        (monthly, 39_000, kst(2026, 3, 10), None),
    ]
    for i, (plan, amount, started, canceled) in enumerate(sub_specs):
        sub = Subscription(
            customer_id=shop.customer_ids[i],
            plan_id=plan.id,
            amount=amount,
            anchor_day=10,
            status="canceled" if canceled else "active",
            started_at=started,
            canceled_at=canceled,
        )
        session.add(sub)
        session.flush()
        shop.subscriptions.append(
            {
                "started": started,
                "canceled": canceled,
                "amount": amount,
                "unit": plan.interval_unit,
                "count": plan.interval_count,
            }
        )
        for j, (period, status) in enumerate(
            [
                (date(2026, 1, 10), "succeeded"),
                (date(2026, 2, 10), "failed" if i % 2 else "succeeded"),
                (date(2026, 2, 28), "pending"),
                (date(2026, 3, 1), "failed" if i == 0 else "succeeded"),
            ]
        ):
            session.add(
                SubscriptionCharge(
                    subscription_id=sub.id,
                    period=period,
                    amount=amount,
                    status=status,
                    idempotency_key=f"charge-{i}-{j}",
                )
            )
            shop.charges.append({"period": period, "status": status})
    session.commit()
    return shop
