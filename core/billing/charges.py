"""The charge engine's first half: open the due charges, claim them (a committed `unknown` with a
lease before any gateway call) and attempt them, looking up earlier attempts by our order id
before the gateway is asked again, so a card is never charged twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, cast, func, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.accounts.actor import SYSTEM_ACTOR, Actor
from core.billing.dates import kst_instant
from core.billing.settings import CHARGED_STATUSES, LOOKUP_FAILED, NEEDS_REVIEW, BillingSettings, order_number
from core.db import is_postgres
from core.models import (
    ChargeAttemptVia,
    ChargeStatus,
    Customer,
    Payment,
    PaymentLink,
    PaymentStatus,
    Subscription,
    SubscriptionCharge,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.payments.gateways.base import (
    ApprovalResult,
    ChargeRequest,
    LookupResult,
    PaymentError,
    PaymentGateway,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
)
from core.payments.gateways.router import PaymentRouter, find_charge, note


@dataclass
class _Claim:
    """A charge this worker owns until it records the outcome (or the lease ends)."""

    charge_id: int
    subscription_id: int
    period: date
    amount: int
    tax_free_amount: int
    key: str
    attempt: int  # this attempt's number (1 = first call)
    # Before this claim: unknown means an earlier attempt may have charged (look it up first);
    # failed (a definite refusal) or pending means nothing was charged, so no lookup is needed,
    # which matters for KakaoPay, whose lookup needs a tid we never got.
    previous_status: str
    instrument_ref: str | None
    partner_user_id: str
    item_name: str
    subscription_status: str
    outcome: str = ""  # succeeded, failed, unknown, skipped
    approval: dict[str, Any] = field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None
    hard: bool = False
    via_lookup: bool = False
    instruments: dict[str, str] = field(default_factory=dict)  # gateway name -> SID / billing key
    gateway_used: str | None = None
    routing_log: list[dict[str, Any]] = field(default_factory=list)
    opened_at: datetime | None = None  # the charge row's creation: no earlier attempt was approved before it
    last_attempt_at: datetime | None = None  # when the previous attempt was claimed or recorded
    customer_id: int = 0
    via: str = ChargeAttemptVia.SCHEDULE
    actor_id: int | None = None
    payment_link_id: int | None = None  # the dunning link, once the charge failed
    link_code: str | None = None  # set when an unknown outcome may be the customer's link payment
    link_gateway: str | None = None
    new_link: PaymentLink | None = None  # a dunning link readied for this failure, to attach
    already_recorded: bool = False  # another worker recorded this charge first: nothing to do
    previous_code: str | None = None  # the recorded reason before this claim (kept when nothing new is known)
    previous_message: str | None = None
    unknown_checks: int = 0  # unsettled lookups in a row before this claim

    def lookup_failed(self, error: PaymentError) -> None:
        """The gateway could not say whether an earlier attempt charged: unknown, never charged blindly.

        A NEEDS_REVIEW answer is kept as it is (it says what a person must check); a lookup that
        merely failed does not overwrite an earlier NEEDS_REVIEW.
        """
        self.outcome = "unknown"
        if error.code == NEEDS_REVIEW:
            self.failure_code, self.failure_message = NEEDS_REVIEW, str(error)[:500]
        elif self.previous_code == NEEDS_REVIEW:
            self.failure_code, self.failure_message = NEEDS_REVIEW, self.previous_message
        else:
            self.failure_code, self.failure_message = LOOKUP_FAILED, str(error)[:500]

    @property
    def unchanged_unknown(self) -> bool:
        """Still unknown for the same reason as before this claim: nothing to add to history or audit."""
        return (
            self.outcome == "unknown"
            and self.previous_status == ChargeStatus.UNKNOWN
            and self.previous_code is not None
            and self.failure_code == self.previous_code
        )

    @property
    def counted_as(self) -> str:
        return "skipped" if self.already_recorded else self.outcome


def _default_gateway(engine: Engine) -> PaymentRouter:
    """The configured gateway router (sandbox by default, with failover to an enrolled backup)."""
    from core.payments.gateways.registry import get_router

    return get_router(engine=engine)


def _charge(gateway: PaymentGateway | PaymentRouter, claim: _Claim, request: ChargeRequest) -> ApprovalResult:
    """Through the router (retries, failover to an enrolled backup instrument) or one plain gateway."""
    if isinstance(gateway, PaymentRouter):
        routed = gateway.charge(claim.routing_log, request, instruments=claim.instruments)
        claim.gateway_used = routed.gateway
        return routed.result
    claim.gateway_used = gateway.name
    return gateway.charge(request)


def _find_by_order(
    gateway: PaymentGateway | PaymentRouter, claim: _Claim, partner_order_id: str
) -> LookupResult | None:
    """Look our order id up on every gateway the subscription has an instrument with.

    Hook into core.payments.gateways.router.find_charge: KakaoPay cannot look an order id up, so it also
    gets the instrument and the attempt's times (it judges by the SID's last approval, or says
    NEEDS_REVIEW, which stays UNKNOWN with that message on the subscriptions page).
    """
    times = {"not_before": claim.opened_at, "last_attempt_at": claim.last_attempt_at}
    if not isinstance(gateway, PaymentRouter):
        claim.gateway_used = gateway.name
        return find_charge(
            gateway, partner_order_id=partner_order_id, instrument_ref=claim.instrument_ref, **times
        )
    for name in claim.instruments or {gateway.primary.name: ""}:
        found = find_charge(
            gateway.gateway(name),
            partner_order_id=partner_order_id,
            instrument_ref=claim.instruments.get(name),
            **times,
        )
        note(
            claim.routing_log,
            name,
            "find_by_order",
            "found" if found else "not_found",
            status=found.status if found else None,
        )
        if found is not None and found.status in CHARGED_STATUSES:
            claim.gateway_used = name
            return found
    return None


def _open_due_charges(session: Session, now: datetime, today: date, config: BillingSettings) -> int:
    """One INSERT .. SELECT .. ON CONFLICT DO NOTHING: a charge row per due active subscription.

    Charges of a day open at the owner's charge hour (KST); the unique (subscription, period)
    makes a second worker's insert, or a retried tick's, a no-op.
    """
    last_day = today if now >= kst_instant(today, config.charge_hour) else today - timedelta(days=1)
    key = (
        literal("charge:")
        + cast(Subscription.id, String)
        + literal(":")
        + cast(Subscription.next_charge_date, String)
    )
    source = select(  # type: ignore[call-overload]
        Subscription.id,
        Subscription.next_charge_date,
        func.coalesce(Subscription.next_amount, Subscription.amount),
        literal(ChargeStatus.PENDING.value),
        literal(0),
        key,
        literal(False),
        literal(now, type_=SubscriptionCharge.__table__.c.created_at.type),
        literal(now, type_=SubscriptionCharge.__table__.c.updated_at.type),
    ).where(
        Subscription.status == SubscriptionStatus.ACTIVE,
        col(Subscription.cancel_at_period_end).is_(False),
        col(Subscription.next_charge_date) <= last_day,
    )
    table = SubscriptionCharge.__table__
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    statement = (
        dialect.insert(table)
        .from_select(
            [
                "subscription_id",
                "period",
                "amount",
                "status",
                "attempt_count",
                "idempotency_key",
                "hard_decline",
                "created_at",
                "updated_at",
            ],
            source,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return len(session.execute(statement).all())


def _is_due(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        or_(
            SubscriptionCharge.status == ChargeStatus.PENDING,
            and_(
                SubscriptionCharge.status == ChargeStatus.UNKNOWN,
                col(SubscriptionCharge.next_retry_at) <= now,
            ),
            and_(
                SubscriptionCharge.status == ChargeStatus.FAILED,
                col(SubscriptionCharge.hard_decline).is_(False),
                col(SubscriptionCharge.next_retry_at) <= now,
            ),
        ),
        or_(col(SubscriptionCharge.payment_link_id).is_(None), ~_link_payment_unresolved()),
    )


def _link_payment_unresolved():  # type: ignore[no-untyped-def]
    """The customer's payment of the dunning link has an unknown outcome: charging the SID could charge twice.

    The reconciliation job settles it (paid: `settle_charge_by_link`; not paid: the charge is due again).
    """
    return (
        select(Payment.id)
        .join(PaymentLink, col(Payment.idempotency_key) == literal("link:") + col(PaymentLink.code))
        .where(
            col(PaymentLink.id) == SubscriptionCharge.payment_link_id,
            Payment.status == PaymentStatus.UNKNOWN,
        )
        .exists()
    )


def _claim(
    session: Session,
    now: datetime,
    config: BillingSettings,
    limit: int,
    charge_id: int | None = None,
    *,
    via: str = ChargeAttemptVia.SCHEDULE,
    actor: Actor = SYSTEM_ACTOR,
) -> list[_Claim]:
    """Take due charges: status unknown + a lease, committed before any gateway call."""
    statement = (
        select(SubscriptionCharge.id).where(_is_due(now)).order_by(col(SubscriptionCharge.id)).limit(limit)
    )
    if charge_id is not None:
        statement = select(SubscriptionCharge.id).where(
            SubscriptionCharge.id == charge_id,
            or_(
                SubscriptionCharge.status == ChargeStatus.FAILED,
                and_(  # a recorded unknown outcome, or a claim whose lease is over; never one in flight
                    SubscriptionCharge.status == ChargeStatus.UNKNOWN,
                    or_(
                        col(SubscriptionCharge.failure_code).is_not(None),
                        col(SubscriptionCharge.next_retry_at) <= now,
                    ),
                ),
            ),
        )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update(skip_locked=True)
    ids = list(session.exec(statement).all())
    if not ids:
        return []
    rows = session.execute(
        select(  # type: ignore[call-overload]
            SubscriptionCharge.id,
            SubscriptionCharge.period,
            SubscriptionCharge.amount,
            SubscriptionCharge.idempotency_key,
            SubscriptionCharge.attempt_count,
            SubscriptionCharge.status,
            SubscriptionCharge.payment_link_id,
            SubscriptionCharge.created_at,
            SubscriptionCharge.updated_at,
            SubscriptionCharge.failure_code,
            SubscriptionCharge.failure_message,
            SubscriptionCharge.unknown_checks,
            Subscription.id,
            Subscription.status,
            Subscription.customer_id,
            Subscription.instrument_gateway,
            Subscription.instrument_ref,
            Subscription.backup_instrument_gateway,
            Subscription.backup_instrument_ref,
            Customer.public_id,
            SubscriptionPlan.name,
            SubscriptionPlan.tax_free_amount,
        )
        .join(Subscription, col(Subscription.id) == SubscriptionCharge.subscription_id)
        .join(Customer, col(Customer.id) == Subscription.customer_id)
        .join(
            SubscriptionPlan,
            col(SubscriptionPlan.id) == func.coalesce(Subscription.next_plan_id, Subscription.plan_id),
        )
        .where(col(SubscriptionCharge.id).in_(ids))
        .order_by(col(SubscriptionCharge.id))
    ).all()
    claims = [
        _Claim(
            charge_id=charge_id,
            subscription_id=subscription_id,
            period=period,
            amount=amount,
            tax_free_amount=min(plan_tax_free, amount),
            key=key,
            attempt=attempt_count + 1,
            opened_at=charge_created_at,
            last_attempt_at=charge_updated_at,
            previous_status=charge_status,
            instrument_ref=instrument_ref,
            partner_user_id=public_id,
            item_name=plan_name,
            subscription_status=status,
            instruments=_instruments(instrument_gateway, instrument_ref, backup_gateway, backup_ref),
            customer_id=customer_id,
            via=via,
            actor_id=actor.id,
            payment_link_id=payment_link_id,
            previous_code=previous_code,
            previous_message=previous_message,
            unknown_checks=unknown_checks,
        )
        for (
            charge_id,
            period,
            amount,
            key,
            attempt_count,
            charge_status,
            payment_link_id,
            charge_created_at,
            charge_updated_at,
            previous_code,
            previous_message,
            unknown_checks,
            subscription_id,
            status,
            customer_id,
            instrument_gateway,
            instrument_ref,
            backup_gateway,
            backup_ref,
            public_id,
            plan_name,
            plan_tax_free,
        ) in rows
    ]
    unsure = {
        c.payment_link_id: c
        for c in claims
        if c.payment_link_id and c.previous_status == ChargeStatus.UNKNOWN
    }
    if unsure:
        for link_id, code, link_gateway in session.execute(
            select(PaymentLink.id, PaymentLink.code, PaymentLink.gateway).where(
                col(PaymentLink.id).in_(unsure)
            )
        ).all():
            unsure[link_id].link_code, unsure[link_id].link_gateway = code, link_gateway
    session.execute(
        update(SubscriptionCharge)
        .where(col(SubscriptionCharge.id).in_(ids))
        .values(
            status=ChargeStatus.UNKNOWN,
            attempt_count=SubscriptionCharge.attempt_count + 1,
            next_retry_at=now + timedelta(minutes=config.lease_minutes),
            failure_code=None,  # in flight: no reason yet (each attempt keeps its own in the attempts)
            failure_message=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return claims


def _instruments(
    gateway: str | None, ref: str | None, backup_gateway: str | None, backup_ref: str | None
) -> dict[str, str]:
    found: dict[str, str] = {}
    if ref:
        found[gateway or "sandbox"] = ref
    if backup_ref and backup_gateway:
        found.setdefault(backup_gateway, backup_ref)
    return found


def _attempt(gateway: PaymentGateway | PaymentRouter, claim: _Claim) -> None:
    """Ask the gateway, once; an attempt whose outcome is unknown is looked up first (never charge twice)."""
    if claim.outcome:  # decided before the call (the customer paid the dunning link)
        return
    partner_order_id = order_number(claim.subscription_id, claim.period)
    if claim.previous_status == ChargeStatus.UNKNOWN:  # an earlier attempt may have charged
        try:
            found = _find_by_order(gateway, claim, partner_order_id)
        except PaymentError as exc:
            claim.lookup_failed(exc)
            return
        if found is not None and found.status in CHARGED_STATUSES:
            claim.outcome, claim.via_lookup = "succeeded", True
            claim.approval = {
                "tid": found.tid,
                "total_amount": found.total_amount,
                "approved_at": found.approved_at,
                "method": None,
            }
            return
    paused_by_schedule = (
        claim.subscription_status == SubscriptionStatus.PAUSED and claim.via != ChargeAttemptVia.MANUAL
    )
    if claim.subscription_status == SubscriptionStatus.CANCELED or paused_by_schedule:
        # A person may still collect the period of a paused subscription (after the dunning paused it).
        claim.outcome, claim.failure_code = "skipped", "NOT_ACTIVE"
        claim.failure_message = "구독이 해지 또는 일시정지되어 결제하지 않았습니다"
        return
    if claim.amount <= 0:
        claim.outcome, claim.hard, claim.failure_code = "failed", True, "ZERO_AMOUNT"
        claim.failure_message = "결제 금액이 0원이라 청구하지 않았습니다 (요금을 확인하세요)"
        return
    if not claim.instrument_ref:
        claim.outcome, claim.hard, claim.failure_code = "failed", True, "NO_INSTRUMENT"
        claim.failure_message = "등록된 결제수단(SID)이 없습니다"
        return
    # A fresh gateway key after a definite failure; the same one after an unknown outcome.
    gateway_key = claim.key if claim.attempt == 1 else f"{claim.key}:{claim.attempt}"
    try:
        request = ChargeRequest(
            instrument_ref=claim.instrument_ref,
            partner_order_id=partner_order_id,
            partner_user_id=claim.partner_user_id,
            item_name=claim.item_name,
            total_amount=claim.amount,
            tax_free_amount=claim.tax_free_amount,
            idempotency_key=gateway_key,
        )
        result = _charge(gateway, claim, request)
    except PaymentOutcomeUnknown as exc:
        claim.outcome, claim.failure_code, claim.failure_message = "unknown", "TIMEOUT", str(exc)[:500]
    except PermanentPaymentError as exc:
        claim.outcome, claim.hard = "failed", True
        claim.failure_code, claim.failure_message = str(exc.code or "DECLINED")[:64], str(exc)[:500]
    except PaymentError as exc:  # retriable: busy, locked, 5xx
        claim.outcome, claim.failure_code, claim.failure_message = (
            "failed",
            str(exc.code or "RETRY")[:64],
            str(exc)[:500],
        )
    else:
        claim.outcome = "succeeded"
        claim.approval = {
            "tid": result.tid,
            "total_amount": result.total_amount,
            "approved_at": result.approved_at,
            "method": result.method,
        }


def _attempt_all(gateway: PaymentGateway | PaymentRouter, claims: list[_Claim]) -> None:
    """Every claim's gateway call: in turn for the in-process sandbox, on a thread pool for a remote one.

    A remote gateway spends its time waiting on the network, so `max_concurrent_charges` calls
    overlap (each claim is owned by this worker alone, so the calls are independent).
    """
    primary = gateway.primary if isinstance(gateway, PaymentRouter) else gateway
    workers = min(int(getattr(primary, "max_concurrent_charges", 1) or 1), len(claims))
    if workers <= 1:
        for claim in claims:
            _attempt(gateway, claim)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charge") as pool:
        for _ in pool.map(lambda claim: _attempt(gateway, claim), claims):
            pass
