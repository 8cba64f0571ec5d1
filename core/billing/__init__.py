"""The billing engine: plans, subscriptions, D-1 notices, charges exactly once, dunning, pause and cancel.

KakaoPay has no scheduler and no retry, so ChannelDesk is the billing engine (like Stripe Billing):

- A charge is a `SubscriptionCharge` row per subscription and period; the unique constraint
  `uq_subscription_charge_period` means there is never a second row, whatever workers run.
- A worker claims a row before it calls the gateway by committing status `unknown` with a lease
  (`next_retry_at`): from that moment the outcome *is* unknown until we record it. If the worker dies,
  the row comes due again when the lease ends, and any row with an earlier attempt is looked up by our
  order id (`find_by_order`) before the gateway is asked again, so a success is recorded once and a
  card is never charged twice. The Payment's unique idempotency key (`charge:{subscription}:{period}`)
  and the Order's unique number are the last line of defence.
- Failure moves the subscription to past_due, tells the customer with a payment link, and retries on
  the owner's schedule (default +1, +3, +7 days after the due date); a hard decline is not retried by
  the schedule (a person may retry). When the schedule is spent the subscription is canceled or
  paused, as the owner chose.

Services take an `actor`, check the role, write `SubscriptionEvent` history and the audit log in the
caller's transaction, and tell the customer through the outbox.

The modules, each importing only those above it:

    dates.py          the pure date rules (charge dates, notice window, retry dates, Korean words)
    settings.py       the owner's billing settings and the names every part shares
    events.py         history rows, telling the customer, the small shared rules
    notices.py        D-1 notices and the promise that nobody is charged without one
    subscriptions.py  plans, subscriptions and the staff actions on them
    charges.py        the charge engine: open, claim, attempt (never twice)
    failures.py       a failed attempt: past_due, the retry date announced
    recording.py      record each attempt's outcome once: order, receipt, next period
    links.py          the dunning payment link's claim / release / settle (a link_approval hook)
    dunning.py        the end of dunning and the staff's "retry now"
    queries.py        the 정기결제 read models
    jobs.py           the worker's entry points

This module names the public functions pages, ui, other domains and tests use.
"""

from core.billing.dunning import retry_charge
from core.billing.failures import retry_words
from core.billing.jobs import billing_charges, billing_notices, run_charges
from core.billing.links import (
    claim_charge_for_link,
    release_charge_for_link,
    settle_charge_by_link,
)
from core.billing.notices import hold_unnoticed, notice_key, notice_variables, run_notices
from core.billing.queries import (
    attempt_words,
    failed_charges,
    history,
    last_move_words,
    list_subscriptions,
    order_attempts,
    status_counts,
    upcoming_charges,
)
from core.billing.settings import (
    FAILED_TEMPLATE,
    FINAL_ACTIONS,
    NOTICE_TEMPLATE,
    RECEIPT_TEMPLATE,
    SETTING_KEYS,
    BillingSettings,
    charge_key,
    load_settings,
    order_number,
    update_settings,
)
from core.billing.subscriptions import (
    cancel,
    change_amount,
    change_plan,
    create_plan,
    create_subscription,
    pause,
    resume,
    set_instrument,
)
from core.payments.link_approval import LinkHooks, register_link_hooks

# payment_links calls these around a link's approval; they do nothing for links that pay no charge.
register_link_hooks(
    LinkHooks(claim=claim_charge_for_link, release=release_charge_for_link, settle=settle_charge_by_link)
)

__all__ = [
    "FAILED_TEMPLATE",
    "FINAL_ACTIONS",
    "NOTICE_TEMPLATE",
    "RECEIPT_TEMPLATE",
    "SETTING_KEYS",
    "BillingSettings",
    "attempt_words",
    "billing_charges",
    "billing_notices",
    "cancel",
    "change_amount",
    "change_plan",
    "charge_key",
    "claim_charge_for_link",
    "create_plan",
    "create_subscription",
    "failed_charges",
    "history",
    "hold_unnoticed",
    "last_move_words",
    "list_subscriptions",
    "load_settings",
    "notice_key",
    "notice_variables",
    "order_attempts",
    "order_number",
    "pause",
    "release_charge_for_link",
    "resume",
    "retry_charge",
    "retry_words",
    "run_charges",
    "run_notices",
    "set_instrument",
    "settle_charge_by_link",
    "status_counts",
    "update_settings",
    "upcoming_charges",
]
