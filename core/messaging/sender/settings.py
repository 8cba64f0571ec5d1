"""The sender's knobs: the owner's "messaging" setting over its defaults, claim and concurrency caps,
and the retry backoff. Imported by the other sender modules and by campaigns (reach, CATEGORY_HINT)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from core.messaging import templates
from core.models import (
    Setting,
)

MESSAGING_DEFAULTS: dict[str, Any] = {
    "daily_ad_limit": 1,  # advertising messages per customer per KST day (informational exempt)
    "batch_size": 1000,
    "max_attempts": 5,
    "backoff_base_seconds": 30,
    "backoff_max_seconds": 3600,
    "claim_seconds": 120,
    "max_variable_length": templates.DEFAULT_MAX_VARIABLE_LENGTH,
    "tick_budget_seconds": 50,
    "send_concurrency": 4,  # chunks with the provider at once (the rate limit still applies)
}
# Whatever the settings say, one claim takes at most this many rows and at most
# MAX_SEND_CONCURRENCY chunks are in flight, so a worker holds at most
# (send_concurrency + 1) x MAX_CLAIM_ROWS rows at once and its memory stays flat on any backlog.
MAX_CLAIM_ROWS = 2000
MAX_SEND_CONCURRENCY = 16
CATEGORY_HINT = "__purchase_category"  # variable an ad carries to use the same-kind purchase exception


def messaging_settings(session: Session) -> dict[str, Any]:
    """The "messaging" owner setting over its defaults. Read directly (not via settings_store) so
    the sender does not import core.accounts.auth, whose import-time argon2 hash costs 64 MB of peak RSS."""
    row = session.get(Setting, "messaging")
    return {**MESSAGING_DEFAULTS, **((row.value if row is not None else None) or {})}


def claim_size(settings: dict[str, Any]) -> int:
    """Rows per claim: the configured batch_size, capped (see MAX_CLAIM_ROWS)."""
    return max(1, min(int(settings["batch_size"]), MAX_CLAIM_ROWS))


def send_concurrency(settings: dict[str, Any]) -> int:
    return max(1, min(int(settings["send_concurrency"]), MAX_SEND_CONCURRENCY))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter: uniform(0.5, 1) x min(cap, base x 2^(attempt-1))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return timedelta(seconds=ceiling * (0.5 + 0.5 * (rng or random).random()))
