"""The message sender: claim due messages, gate them, send in batches, record results.

Modules, one idea each:
- `settings`: the owner's "messaging" setting over its defaults, caps and retry backoff.
- `claims`: claiming rows and writing them back, every write guarded by the claim token.
- `gate`: hold rules (template pre-flight, phone, compliance gate, the daily ad-limit slots).
- `results`: a provider's answer becomes a row's state; expired claims are looked up, not resent.
- `dispatch`: the `message_sender` worker job that runs the above batch after batch.

Exactly once, even when killed at any instant:
- A row is claimed by one UPDATE that sets status='sending', a claim token and a lease
  (FOR UPDATE SKIP LOCKED on PostgreSQL, so N workers never claim the same row; SQLite takes the
  write lock with BEGIN IMMEDIATE, one worker is the rule there).
- Every later write is guarded by `claim_token`, so a worker that lost its claim changes nothing.
- A 'sending' row whose lease expired (the worker died, or the provider's answer was unknown) is
  never sent blindly again: we ask the provider whether it took our key (our idempotency key
  travels as customFields). Taken -> recorded as sent. Not taken -> queued again. The provider
  cannot be asked -> the row stays 'sending' and is asked again on the next tick.
  Solapi's `allowDuplicates: false` is sent as a second guard, but we do not rely on it alone:
  it is not documented to dedupe across calls by our key, so the lookup is what makes a resend safe.
  The embedded outbox provider takes nothing outside the database, so "not found" is the truth.
- Retriable failures (connection refused, 429, per-message retry codes) go back to 'queued' with
  exponential backoff and full jitter, up to `max_attempts`; then 'failed' with the last reason.
"""

from core.messaging.sender.claims import claim_due, claim_due_rows, claim_expired
from core.messaging.sender.dispatch import message_sender, prepare_claim, run, worker_provider
from core.messaging.sender.settings import (
    CATEGORY_HINT,
    MAX_CLAIM_ROWS,
    MESSAGING_DEFAULTS,
    backoff_delay,
    messaging_settings,
)

__all__ = [
    "CATEGORY_HINT",
    "MAX_CLAIM_ROWS",
    "MESSAGING_DEFAULTS",
    "backoff_delay",
    "claim_due",
    "claim_due_rows",
    "claim_expired",
    "message_sender",
    "messaging_settings",
    "prepare_claim",
    "run",
    "worker_provider",
]
