"""The embedded `outbox` provider: the default when no message service is configured."""

from __future__ import annotations

from datetime import datetime

from core.messaging.providers.base import Outcome, OutgoingMessage, SendResult


class OutboxProvider:
    """Embedded default: nothing leaves the machine; the message is recorded and shown as delivered."""

    name = "outbox"
    max_batch = 10_000

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [SendResult(m.key, Outcome.DELIVERED, provider_message_id=f"outbox:{m.key}") for m in messages]

    def lookup(self, messages: list[OutgoingMessage], since: datetime) -> dict[str, SendResult]:
        # Nothing left the machine: a row whose worker died before recording the result was never
        # "sent" anywhere, so sending it again is its first and only delivery.
        return {}

    def delivery_reports(self, group_id: str) -> dict[str, SendResult]:
        return {}  # marked delivered when recorded: there is nothing to report later

    def close(self) -> None:
        return None
