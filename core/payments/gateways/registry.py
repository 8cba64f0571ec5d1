"""Gateways and the failover router, built from settings (PAYMENT_GATEWAY, PAYMENT_BACKUP_GATEWAY)."""

from __future__ import annotations

from sqlalchemy import Engine

from core.config import Settings, get_settings
from core.payments.gateways.base import PaymentGateway
from core.payments.gateways.router import PaymentRouter

GATEWAY_NAMES = ("sandbox", "kakaopay", "toss")


class UnknownGateway(ValueError):
    """The configuration names a gateway we do not have."""


def get_gateway(
    name: str, *, engine: Engine | None = None, settings: Settings | None = None
) -> PaymentGateway:
    """A gateway client by name; the sandbox keeps its state in `engine` (default: the app's store)."""
    settings = settings or get_settings()
    key = (name or "").strip().lower()
    if key == "sandbox":
        from core.db import get_engine
        from core.payments.gateways.sandbox import SandboxGateway

        return SandboxGateway(engine or get_engine(), public_base_url=settings.public_base_url)
    if key == "kakaopay":
        from core.payments.gateways.kakaopay import KakaoPayGateway

        return KakaoPayGateway.from_settings(settings)
    if key == "toss":
        from core.payments.gateways.toss import TossGateway

        return TossGateway.from_settings(settings)
    raise UnknownGateway(
        f"알 수 없는 결제 대행사입니다: {name!r} (PAYMENT_GATEWAY는 {', '.join(GATEWAY_NAMES)} 중 하나)"
    )


def get_router(*, engine: Engine | None = None, settings: Settings | None = None) -> PaymentRouter:
    settings = settings or get_settings()
    primary = get_gateway(settings.payment_gateway, engine=engine, settings=settings)
    backup = None
    if settings.payment_backup_gateway and settings.payment_backup_gateway != settings.payment_gateway:
        backup = get_gateway(settings.payment_backup_gateway, engine=engine, settings=settings)
    return PaymentRouter(
        primary, backup, resolve=lambda name: get_gateway(name, engine=engine, settings=settings)
    )
