"""A charge under review (issue 13 item 8): it holds only its own period, is looked up on a backoff
that stops and waits for a person with its reason kept, writes history only when something changes,
and is never charged twice."""

from __future__ import annotations

from collections import deque
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import billing, clock
from core.accounts.actor import Actor
from core.billing import charges
from core.billing.dates import DEFAULT_REVIEW_BACKOFF_MINUTES, kst_instant
from core.models import (
    AuditLog,
    ChargeStatus,
    Message,
    Role,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionEvent,
)
from core.payments.gateways.base import LookupResult, PaymentOutcomeUnknown, RetriablePaymentError
from core.payments.gateways.kakaopay import NEEDS_REVIEW, needs_review
from tests.billing_support import FakeGateway, get_subscription, kst, make_subscription

OWNER = Actor(None, "사장님", Role.OWNER)


class ReviewGateway(FakeGateway):
    """Like KakaoPay after a lost answer: the order cannot be looked up without its tid, so the lookup
    says NEEDS_REVIEW (or itself fails) until the script says what the gateway really did."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: deque[str] = deque()  # review, down, found; the last one repeats
        self.lookup_calls: list[tuple[str, datetime]] = []

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        self.lookup_calls.append((partner_order_id, clock.now()))
        kind = self.lookups[0] if len(self.lookups) == 1 else self.lookups.popleft()
        if kind == "review":
            raise needs_review(partner_order_id, "응답을 받지 못해 tid를 알 수 없습니다")
        if kind == "down":
            raise RetriablePaymentError("조회 서버가 응답하지 않습니다", code="503")
        return super().find_by_order(partner_order_id=partner_order_id)


def _events(engine: Engine, sub_id: int) -> list[SubscriptionEvent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(SubscriptionEvent)
                .where(SubscriptionEvent.subscription_id == sub_id)
                .order_by(col(SubscriptionEvent.id))
            ).all()
        )


def _charge(engine: Engine, sub_id: int, period: date) -> SubscriptionCharge:
    with Session(engine) as session:
        return session.exec(
            select(SubscriptionCharge).where(
                SubscriptionCharge.subscription_id == sub_id, SubscriptionCharge.period == period
            )
        ).one()


def test_review_backs_off_then_waits_for_a_person_with_its_reason_kept(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    period = date(2027, 3, 1)
    with clock.frozen(kst("2027-02-20T12:00")):
        sub_id = make_subscription(engine, OWNER, start=period)
    gateway = ReviewGateway()
    gateway.inject("timeout")  # charged at the gateway, the answer lost
    gateway.lookups.extend(["review", "review", "down", "review"])
    order = billing.order_number(sub_id, period)
    start = kst("2027-03-01T09:00")
    # The worker's charge job every minute for the first hour, then every 10 minutes for 3 days.
    ticks = [start + timedelta(minutes=m) for m in range(60)]
    ticks += [start + timedelta(minutes=m) for m in range(60, 3 * 24 * 60, 10)]
    for tick in ticks:
        with clock.frozen(tick):  # as the worker's job runs it
            billing.run_charges(engine, tick, gateway=gateway)
    lookups = [at for o, at in gateway.lookup_calls if o == order]
    assert len(lookups) == len(DEFAULT_REVIEW_BACKOFF_MINUTES)  # 5 min, 15, 1 h, 4 h, 1 day: then stop
    gaps = [(b - a) for a, b in zip([start, *lookups], lookups, strict=False)]
    assert all(later >= earlier for earlier, later in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] >= timedelta(hours=4)
    charge = _charge(engine, sub_id, period)
    assert charge.status == ChargeStatus.UNKNOWN and charge.next_retry_at is None
    assert charge.failure_code == NEEDS_REVIEW  # the failed lookup did not overwrite it
    assert "주문번호" in (charge.failure_message or "") and "tid" in (charge.failure_message or "")
    # History and audit only when something changed: lost answer, needs review, waits for a person.
    kinds = [e.kind for e in _events(engine, sub_id) if e.kind.startswith("charge_")]
    assert kinds == ["charge_unknown", "charge_unknown", "charge_needs_person"]
    with Session(engine) as session:
        audits = session.exec(
            select(AuditLog).where(
                col(AuditLog.action).in_(["subscription.charge_unknown", "subscription.charge_needs_person"])
            )
        ).all()
        attempts = session.exec(select(SubscriptionChargeAttempt)).all()
    assert len(audits) == 3 and len(attempts) == 3
    assert gateway.charge_calls == 1 and not gateway.double_charged()
    # A person looks it up again: the gateway now finds the approval; recorded once, reasons cleared.
    gateway.lookups.clear()
    gateway.lookups.append("found")
    with Session(engine) as session:
        from core.models import StaffUser

        cs = session.exec(select(StaffUser)).first()
    actor = Actor(cs.id if cs else None, "상담원", Role.CS)
    assert billing.retry_charge(
        engine, actor, charge.id or 0, gateway=gateway, now=kst("2027-03-04T10:00")
    ) == ("succeeded")
    charge = _charge(engine, sub_id, period)
    assert charge.status == ChargeStatus.SUCCEEDED
    assert charge.failure_code is None and charge.failure_message is None
    assert gateway.charge_calls == 1 and not gateway.double_charged()


def test_a_charge_under_review_holds_only_its_own_period(engine: Engine) -> None:
    first = date(2027, 3, 1)
    with clock.frozen(kst("2027-02-20T12:00")):
        sub_id = make_subscription(engine, OWNER, start=first, interval_unit="week", plan_name="주간 꾸러미")
    gateway = ReviewGateway()
    gateway.inject("lost")  # nothing charged, but we cannot know: only a person can settle it
    gateway.lookups.append("review")
    day = first - timedelta(days=1)
    while day <= first + timedelta(days=22):
        for hour in (9, 10, 15):
            now = kst_instant(day, hour)
            with clock.frozen(now):
                billing.run_notices(engine, now)
                billing.run_charges(engine, now, gateway=gateway)
        day += timedelta(days=1)
    held = _charge(engine, sub_id, first)
    assert held.status == ChargeStatus.UNKNOWN and held.failure_code == NEEDS_REVIEW
    later = [first + timedelta(days=7 * n) for n in (1, 2, 3)]
    with Session(engine) as session:
        notices = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith(f"billing_notice:{sub_id}:"))
        ).all()
    for period in later:
        charge = _charge(engine, sub_id, period)
        assert charge.status == ChargeStatus.SUCCEEDED, period
        assert charge.updated_at.astimezone(clock.KST).date() == period  # charged on its own day
        told = [n for n in notices if n.idempotency_key.startswith(f"billing_notice:{sub_id}:{period}:")]
        assert told and told[0].send_after.astimezone(clock.KST).date() == period - timedelta(days=1)
    assert [o for op, o in gateway.calls if op == "charge"].count(billing.order_number(sub_id, first)) == 1
    assert not gateway.double_charged()
    assert get_subscription(engine, sub_id).next_charge_date == first + timedelta(days=28)


def test_needs_review_from_the_lookup_is_kept_not_renamed(sqlite_engine: Engine) -> None:
    """The claim's own rule, as a table: which reason a lookup that told nothing leaves behind."""
    claim = charges._Claim(
        charge_id=1,
        subscription_id=1,
        period=date(2027, 3, 1),
        amount=1,
        tax_free_amount=0,
        key="k",
        attempt=2,
        previous_status="unknown",
        instrument_ref=None,
        partner_user_id="u",
        item_name="i",
        subscription_status="active",
    )
    cases = [
        (None, PaymentOutcomeUnknown("검토 필요", code=NEEDS_REVIEW), NEEDS_REVIEW, "검토 필요"),
        (None, RetriablePaymentError("조회 실패", code="503"), "LOOKUP_FAILED", "조회 실패"),
        (NEEDS_REVIEW, RetriablePaymentError("조회 실패", code="503"), NEEDS_REVIEW, "이전 사유"),
        ("TIMEOUT", PaymentOutcomeUnknown("시간 초과", code="SETTLING"), "LOOKUP_FAILED", "시간 초과"),
    ]
    for previous, error, code, message in cases:
        claim.previous_code, claim.previous_message = previous, "이전 사유"
        claim.lookup_failed(error)
        assert (claim.outcome, claim.failure_code, claim.failure_message) == ("unknown", code, message)
