"""Every periodic job the worker runs: (fixed id, where the function lives, how often).

A job is `def job(engine: Engine, now: datetime) -> dict[str, int]`: it claims due rows as of
`now`, does them, and returns counts for the JSON summary and the job_run row. Jobs must be
idempotent: a retried tick, a restart or a second worker must never send or charge twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import core.billing  # noqa: F401 (registers the dunning-link hooks payment jobs call)
import core.rewards  # noqa: F401 (registers the discount hooks: a reconciled link payment settles them)


@dataclass(frozen=True)
class JobSpec:
    id: str
    target: str  # "module:function"
    every_seconds: int


JOBS: list[JobSpec] = [
    # Settle what the gateways already did before anything new moves money.
    JobSpec("payment_reconciliation", "core.payments.jobs:reconcile_payments", 120),
    JobSpec("payment_link_expiry", "core.payments.jobs:payment_link_expiry", 300),
    JobSpec("payment_link_reminders", "core.payments.jobs:payment_link_reminders", 300),
    JobSpec("reward_releases", "core.rewards.jobs:release_abandoned_discounts", 300),
    JobSpec("billing_notices", "core.billing.jobs:billing_notices", 300),
    JobSpec("billing_charges", "core.billing.jobs:billing_charges", 60),
    JobSpec("double_charge_sentinel", "core.inquiries.jobs:double_charge_sentinel", 60),
    JobSpec("sla_watch", "core.inquiries.jobs:sla_watch", 30),
    JobSpec("inbound_log_prune", "core.inquiries.jobs:inbound_log_prune", 3600),
    # Post-purchase automations and campaigns queue messages ...
    JobSpec("order_confirmations", "core.messaging.automations:order_confirmations", 1),
    JobSpec("review_requests", "core.reviews.jobs:review_requests", 300),
    JobSpec("repurchase_reminders", "core.messaging.automations:repurchase_reminders", 600),
    JobSpec("campaign_scheduler", "core.campaigns.jobs:campaign_scheduler", 60),
    JobSpec("analytics_rollup", "core.analytics.jobs:analytics_rollup_job", 600),
    # ... and the sender, last, sends whatever is due.
    JobSpec("message_sender", "core.messaging.sender:message_sender", 1),
    # Solapi's delivery reports turn 'sent' (accepted) into 'delivered' or 'failed' with the reason.
    JobSpec("delivery_reports", "core.messaging.reports:fetch_delivery_reports", 60),
]
