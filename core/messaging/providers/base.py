"""The message provider protocol, its results and errors (every provider and the sender share them).

Errors follow one root with a retriable branch (nothing happened: try later), a permanent branch
(trying again will not help) and the outcome-unknown state (the request may have been taken: ask
the provider before anything else, never send blindly again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class ProviderError(Exception):
    """Root of every provider error (the whole batch)."""


class RetriableProviderError(ProviderError):
    """Refused before anything was taken (connection refused, 429, 503 before processing)."""


class PermanentProviderError(ProviderError):
    """Bad credentials or a bad request: every message of the batch fails with this reason."""


class ProviderOutcomeUnknown(ProviderError):
    """Timeout, dropped connection, 5xx or unreadable answer after the request left: look it up."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # taken by the provider (sent)
    DELIVERED = "delivered"  # known to have reached the customer
    RETRY = "retry"  # not taken, may succeed later
    FAILED = "failed"  # not taken, will not succeed


@dataclass(frozen=True)
class OutgoingMessage:
    key: str  # our idempotency key, travels as customFields so it can be looked up
    to: str  # digits only
    text: str
    kind: str
    template_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    key: str
    outcome: Outcome
    provider_message_id: str | None = None
    group_id: str | None = None
    code: str | None = None
    reason: str | None = None


class Provider(Protocol):
    name: str
    max_batch: int

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        """One result per message (same keys); raises a ProviderError for the batch as a whole."""
        ...

    def lookup(self, messages: list[OutgoingMessage], since: datetime) -> dict[str, SendResult]:
        """Results for the keys the provider has taken since `since`; missing key = never taken."""
        ...

    def delivery_reports(self, group_id: str) -> dict[str, SendResult]:
        """Final results (DELIVERED / FAILED, or ACCEPTED while in flight) of one send group by key."""
        ...

    def close(self) -> None: ...
