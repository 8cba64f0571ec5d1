"""Campaigns: segments from payment data, a smart test on a sample, the winner to everyone, results.

    segments.py    segment rules -> SQL (over the per-customer summaries; the raw-order form too)
    reach.py       who an advertising message may reach (consents, ad law, daily limit, night hours)
    content.py     variables, rendering, tracked links, the (광고) frame, variant validation
    smart_test.py  test groups and the winner rule
    sending.py     queueing recipients and outbox messages, set-based and once
    results.py     clicks, conversions, per-variant figures
    queries.py     read models (one campaign, lists)
    service.py     what staff do: create, plan, preview, schedule, start, send the winner, cancel
    jobs.py        the worker's entry point (campaign_scheduler)
    tables.py      short column names the SQL is written with

This module names the package's public functions; pages use these.

Segments are rules (Segment.rules / Campaign.segment_rules), never frozen lists: they are turned
into one SQL expression over `customer` and evaluated when counting and when sending. Most rules
read the per-customer summaries (core.models.customer_summary, kept exact in every order write),
so a count over 200,000 customers and 1,000,000 orders is one indexed query; the raw-order form of
every rule stays as the definition the summaries are tested against (`segment_condition(raw=True)`).

A campaign is sent once: every start is a conditional UPDATE of its status (only one caller, worker
or double click, wins), recipients and messages are inserted in the same transaction with
`ON CONFLICT DO NOTHING` on `campaign_recipient(campaign_id, customer_id)` and on the outbox key
`campaign:{campaign}:{customer}`, set-based (INSERT .. SELECT, compliance in the SELECT). The
messages then wait in the outbox; the sender (core/messaging) delivers them, so a provider outage
delays them and loses none.
"""

from core.campaigns.content import (
    CHUNK,
    MAX_BODY_CHARS,
    MAX_VARIANTS,
    VARIABLE_PATTERN,
    VARIABLES,
    ad_frame,
    render,
    tracked_link,
    validate_variants,
    variables_in,
)
from core.campaigns.jobs import (
    campaign_scheduler,
)
from core.campaigns.queries import (
    CampaignRow,
    list_campaigns,
    open_campaigns,
    product_categories,
    products,
    saved_segments,
)
from core.campaigns.reach import (
    Member,
    SegmentCount,
    ad_text,
    count_segment,
    daily_ad_limit,
    exclusion_reason,
    is_night_kst,
    next_ad_window,
    purchase_exception,
    shop,
)
from core.campaigns.results import (
    CampaignResults,
    VariantResult,
    record_click,
    results,
)
from core.campaigns.segments import (
    EXCLUSION_LABELS,
    MAX_RULE_DAYS,
    MAX_RULE_NUMBER,
    PAID_STATUSES,
    RULE_LABELS,
    contradictions,
    segment_condition,
)
from core.campaigns.sending import (
    NIGHT_HOLD_REASON,
    QUEUE_CHUNK,
    QUEUED_COLUMNS,
    Progress,
)
from core.campaigns.service import (
    DEFAULT_PRICE_PER_MESSAGE,
    MAX_PRICE_PER_MESSAGE,
    PRICE_SETTING,
    PreviewLine,
    SendPlan,
    cancel,
    create_campaign,
    plan,
    preview,
    price_per_message,
    save_segment,
    schedule,
    send_winner,
    set_price_per_message,
    start,
)
from core.campaigns.smart_test import (
    DEFAULT_OPTIONS,
    WINNER_RULES,
    assign_groups,
    choose_winner,
)

__all__ = [
    "CHUNK",
    "CampaignResults",
    "CampaignRow",
    "DEFAULT_OPTIONS",
    "DEFAULT_PRICE_PER_MESSAGE",
    "EXCLUSION_LABELS",
    "MAX_BODY_CHARS",
    "MAX_PRICE_PER_MESSAGE",
    "MAX_RULE_DAYS",
    "MAX_RULE_NUMBER",
    "MAX_VARIANTS",
    "Member",
    "NIGHT_HOLD_REASON",
    "PAID_STATUSES",
    "PRICE_SETTING",
    "PreviewLine",
    "Progress",
    "QUEUED_COLUMNS",
    "QUEUE_CHUNK",
    "RULE_LABELS",
    "SegmentCount",
    "SendPlan",
    "VARIABLES",
    "VARIABLE_PATTERN",
    "VariantResult",
    "WINNER_RULES",
    "ad_frame",
    "ad_text",
    "assign_groups",
    "campaign_scheduler",
    "cancel",
    "choose_winner",
    "contradictions",
    "count_segment",
    "create_campaign",
    "daily_ad_limit",
    "exclusion_reason",
    "is_night_kst",
    "list_campaigns",
    "next_ad_window",
    "open_campaigns",
    "plan",
    "preview",
    "price_per_message",
    "product_categories",
    "products",
    "purchase_exception",
    "record_click",
    "render",
    "results",
    "save_segment",
    "saved_segments",
    "schedule",
    "segment_condition",
    "send_winner",
    "set_price_per_message",
    "shop",
    "start",
    "tracked_link",
    "validate_variants",
    "variables_in",
]
