"""Sales rollups for the 매출 page: kept by the worker (core.analytics.refresh_rollups), read by the page.

The rollups hold every sale and refund before `analytics_state.covered_until_at`, exactly; the page
reads them for that and queries the raw tables live for what came after and for any day marked
dirty by a late write (`record_sale` / `record_refund` before the watermark). So the figures are
right even while the worker lags.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from core.models.base import utc_field
from core.models.orders import Order, PaymentLink, Refund
from core.models.subscriptions import SubscriptionCharge

# The live tail reads the sales paid and the refunds completed since the rollups end.
ORDER_PAID_INDEX = Index("ix_orders_paid_at", Order.paid_at)
REFUND_COMPLETED_INDEX = Index("ix_refund_completed_at", Refund.completed_at)
# The link funnel counts a range of links by stage from the index alone (no table lookups).
PAYMENT_LINK_FUNNEL_INDEX = Index(
    "ix_payment_link_funnel",
    PaymentLink.created_at,
    PaymentLink.status,
    PaymentLink.product_id,
    PaymentLink.opened_at,
    PaymentLink.paid_at,
)
# The failed-charge rate groups charges by the month of their period.
CHARGE_PERIOD_INDEX = Index(
    "ix_subscription_charge_period_status", SubscriptionCharge.period, SubscriptionCharge.status
)


class DailySales(SQLModel, table=True):
    """Order-level totals per KST day and payment method (orders are counted once here)."""

    __tablename__ = "daily_sales"

    day: date = Field(primary_key=True)
    method: str = Field(primary_key=True, max_length=16)
    orders: int = 0
    gross: int = 0
    refunds: int = 0
    refund_count: int = 0


class DailyProductSales(SQLModel, table=True):
    """Per KST day, product and method; an order's total and refunds are split over its items."""

    __tablename__ = "daily_product_sales"
    __table_args__ = (Index("ix_daily_product_sales_product_day", "product_id", "day"),)

    day: date = Field(primary_key=True)
    product_id: int = Field(primary_key=True)  # 0: the item's product row is gone
    method: str = Field(primary_key=True, max_length=16)
    product_name: str = Field(default="", max_length=120)
    orders: int = 0  # orders containing the product
    units: int = 0
    gross: int = 0
    refunds: int = 0


class CustomerSales(SQLModel, table=True):
    """Lifetime totals of one customer (for LTV, repeat rate, VIP and cohorts)."""

    __tablename__ = "customer_sales"
    __table_args__ = (Index("ix_customer_sales_net", "net"),)

    customer_id: int = Field(primary_key=True)
    first_paid_at: datetime = utc_field(nullable=False)
    last_paid_at: datetime = utc_field(nullable=False)
    first_month: date = Field(index=True)  # first day of the KST month of the first purchase
    orders: int = 0
    gross: int = 0
    refunds: int = 0
    net: int = 0


class CustomerMonth(SQLModel, table=True):
    """A month (KST, first day) in which a customer paid for at least one order."""

    __tablename__ = "customer_month"

    customer_id: int = Field(primary_key=True)
    month: date = Field(primary_key=True)


class CohortRetention(SQLModel, table=True):
    """How many customers of a first-purchase cohort bought in month `month_offset` after it."""

    __tablename__ = "cohort_retention"

    cohort_month: date = Field(primary_key=True)
    month_offset: int = Field(primary_key=True)
    customers: int = 0


class CohortValue(SQLModel, table=True):
    """Per first-purchase month: customers, how many bought twice or more, their lifetime net."""

    __tablename__ = "cohort_value"

    cohort_month: date = Field(primary_key=True)
    customers: int = 0
    repeat_customers: int = 0
    net: int = 0


class ProductRepurchase(SQLModel, table=True):
    """Median days between purchases of the same product by the same customer."""

    __tablename__ = "product_repurchase"

    product_id: int = Field(primary_key=True)
    median_days: float
    intervals: int


class RepurchaseGap(SQLModel, table=True):
    """How many times a product was bought again after `gap_days` days by the same customer."""

    __tablename__ = "repurchase_gap"

    product_id: int = Field(primary_key=True)
    gap_days: int = Field(primary_key=True)
    intervals: int = 0


class CustomerProductLast(SQLModel, table=True):
    """The KST day a customer last bought a product (where the next repurchase gap starts)."""

    __tablename__ = "customer_product_last"

    customer_id: int = Field(primary_key=True)
    product_id: int = Field(primary_key=True)
    last_day: date


class AnalyticsState(SQLModel, table=True):
    """One row (id 1): the rollups hold exactly the sales and refunds before covered_until_at."""

    __tablename__ = "analytics_state"

    id: int = Field(default=1, primary_key=True)
    covered_until: date  # the KST day of covered_until_at (for people reading the table)
    covered_until_at: datetime | None = utc_field()
    refreshed_at: datetime = utc_field(default_now=True)


class AnalyticsDirtyDay(SQLModel, table=True):
    """A rolled-up day that changed later (late import, backdated sale): read live until repaired."""

    __tablename__ = "analytics_dirty_day"

    day: date = Field(primary_key=True)
    marked_at: datetime = utc_field(default_now=True)


class AnalyticsDirtyCustomer(SQLModel, table=True):
    """A customer whose rolled-up lifetime totals a backdated sale or refund changed: the repair
    (core.analytics.repair_dirty) recomputes exactly these customers and their cohorts."""

    __tablename__ = "analytics_dirty_customer"

    customer_id: int = Field(primary_key=True)
    marked_at: datetime = utc_field(default_now=True)
