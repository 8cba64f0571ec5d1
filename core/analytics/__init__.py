"""Owner sales analytics: revenue, the Power Trio (conversion, AOV, LTV), cohorts, products, MRR.

    rules.py      the definitions (what a sale, a refund, AOV and LTV are) as pure functions
    facts.py      facts from the raw tables over a window (the one path rollups and the live tail share)
    rollup.py     the rollup tables: watermark, write-path hooks, writers, the chunked build
    build.py      the chunked build's customers, cohorts and repurchase gaps, set-based in SQL
    repair.py     recompute what backdated writes changed
    figures.py    sales figures: revenue, products, payment methods, link conversion
    customers.py  customer figures: LTV, repeat, cohorts, VIP, repurchase, subscriptions (MRR, churn)
    jobs.py       the worker's entry point (repair, then roll forward); catch_up for bulk writers

This module names the package's public functions; pages and the order import use these.

Speed: everything before the watermark `analytics_state.covered_until_at` comes from rollup
tables (core/models/analytics.py) that the worker job `analytics_rollup` keeps (every 10 minutes,
up to now minus 5 minutes, today included); everything after it (minutes, or more while the
worker lags) and the days marked dirty by `record_sale` / `record_refund` are computed live from
the raw tables with the same code that builds the rollups. Reads are cheap at a
million orders because they touch a few thousand rollup rows, not the orders.
"""

from core.analytics.customers import (
    CohortRow,
    CustomerValue,
    SubscriptionMonth,
    VipCustomer,
    cohorts,
    customer_value,
    monthly_amount,
    product_repurchase_intervals,
    repurchase_interval_days,
    subscription_months,
    vip_customers,
)
from core.analytics.facts import (
    Facts,
    collect_facts,
)
from core.analytics.figures import (
    FUNNEL_LABELS,
    FUNNEL_STAGES,
    VERSION_SECONDS,
    Funnel,
    MethodShare,
    ProductSales,
    RevenuePoint,
    RevenueSummary,
    Totals,
    data_version,
    link_funnel,
    method_mix,
    revenue_series,
    revenue_summary,
    revenue_totals,
    top_products,
)
from core.analytics.jobs import (
    CatchUp,
    analytics_rollup_job,
    catch_up,
    refresh_rollups,
)
from core.analytics.repair import (
    repair_dirty,
)
from core.analytics.rollup import (
    REBUILD_CHUNK_DAYS,
    ROLLUP_GRACE,
    Coverage,
    coverage,
    rebuild_rollups,
    record_refund,
    record_sale,
    record_sales_at,
)
from core.analytics.rules import (
    DELETED_PRODUCT_ID,
    DELETED_PRODUCT_NAME,
    GRAINS,
    MAX_RANGE_DAYS,
    METHOD_LABELS,
    OTHER_METHOD,
    SOLD_STATUSES,
    add_months,
    change,
    check_range,
    kst_day,
    month_start,
    months_between,
    period_start,
    previous_range,
    ratio,
    rounded_div,
    split_amount,
)

__all__ = [
    "CatchUp",
    "CohortRow",
    "Coverage",
    "CustomerValue",
    "DELETED_PRODUCT_ID",
    "DELETED_PRODUCT_NAME",
    "FUNNEL_LABELS",
    "FUNNEL_STAGES",
    "Facts",
    "Funnel",
    "GRAINS",
    "MAX_RANGE_DAYS",
    "METHOD_LABELS",
    "MethodShare",
    "OTHER_METHOD",
    "ProductSales",
    "REBUILD_CHUNK_DAYS",
    "ROLLUP_GRACE",
    "RevenuePoint",
    "RevenueSummary",
    "SOLD_STATUSES",
    "SubscriptionMonth",
    "Totals",
    "VERSION_SECONDS",
    "VipCustomer",
    "add_months",
    "analytics_rollup_job",
    "catch_up",
    "change",
    "check_range",
    "cohorts",
    "collect_facts",
    "coverage",
    "customer_value",
    "data_version",
    "kst_day",
    "link_funnel",
    "method_mix",
    "month_start",
    "monthly_amount",
    "months_between",
    "period_start",
    "previous_range",
    "product_repurchase_intervals",
    "ratio",
    "rebuild_rollups",
    "record_refund",
    "record_sale",
    "record_sales_at",
    "refresh_rollups",
    "repair_dirty",
    "repurchase_interval_days",
    "revenue_series",
    "revenue_summary",
    "revenue_totals",
    "rounded_div",
    "split_amount",
    "subscription_months",
    "top_products",
    "vip_customers",
]
