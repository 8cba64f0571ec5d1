"""Message providers: the protocol (base.py), the embedded outbox provider and the Solapi client.

This package's own module is the factory above them: `make_provider` picks the configured one, so
neither provider imports the other or the factory (the client is imported only when chosen). The
protocol's names are re-exported here, which is what the sender, the reports and tests import.
"""

from __future__ import annotations

from typing import Any

from core.messaging.providers.base import (
    Outcome,
    OutgoingMessage,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderOutcomeUnknown,
    RetriableProviderError,
    SendResult,
)
from core.messaging.providers.outbox import OutboxProvider

__all__ = [
    "OutboxProvider",
    "Outcome",
    "OutgoingMessage",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "ProviderOutcomeUnknown",
    "RetriableProviderError",
    "SendResult",
    "make_provider",
]


def make_provider(name: str | None = None, **overrides: Any) -> Provider:
    """The configured provider (MESSAGE_PROVIDER), built from settings."""
    from core.config import get_settings

    settings = get_settings()
    name = name or settings.message_provider
    if name == "outbox":
        return OutboxProvider()
    if name == "solapi":
        from core.messaging.providers.solapi import SolapiClient

        return SolapiClient.from_settings(settings, **overrides)
    raise ValueError(f"알 수 없는 메시지 제공자: {name}")
