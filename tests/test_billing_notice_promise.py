"""No charge without its notice (issue 13 item 6): whatever resumes, changes or misses a day, every
approved charge was told the lead before, through the worker's `--once --now` path (`run_once`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import billing, clock
from core.accounts.actor import Actor
from core.billing.dates import kst_instant
from core.models import Message, Payment, Role, Subscription, SubscriptionCharge, SubscriptionEvent
from core.models.sandbox import SandboxInstrument
from core.worker import run_once
from tests.billing_support import get_subscription, make_subscription

OWNER = Actor(None, "사장님", Role.OWNER)
CHARGE_DAY = date(2027, 3, 10)  # the subscription's own charge date (anchored on the 10th)


@dataclass(frozen=True)
class Case:
    event: str  # resume_on (paused until), resume (a person resumes), amount, plan, down (no worker)
    offset: int  # the event's day relative to CHARGE_DAY
    hour: int  # the event's KST hour (resume_on: ignored)
    lead: int
    charge_hour: int
    notice_hour: int


CASES = [
    # The case: paused until its own charge date.
    Case("resume_on", 0, 0, 1, 9, 10),
    Case("resume_on", -1, 0, 1, 9, 10),
    Case("resume_on", 0, 0, 2, 9, 10),
    Case("resume_on", -1, 0, 2, 6, 20),
    # A person resumes on the charge day before the charge, the evening before, or with a longer lead.
    Case("resume", 0, 7, 1, 9, 10),
    Case("resume", -1, 23, 1, 9, 10),
    Case("resume", -1, 11, 2, 9, 8),
    Case("resume", 0, 3, 1, 12, 6),
    # Amount or plan changed after the notice went out: told again before the new amount is taken.
    Case("amount", -1, 15, 1, 9, 10),
    Case("amount", 0, 8, 1, 9, 10),
    Case("amount", -1, 9, 2, 9, 10),
    Case("plan", 0, 5, 1, 9, 10),
    Case("plan", -1, 22, 1, 14, 7),
    # The worker was down on the notice day(s).
    Case("down", 0, 0, 1, 9, 10),
    Case("down", 0, 0, 2, 9, 10),
]


def _ticks(case: Case) -> list[datetime]:
    """The worker's instants: around the owner's hours, just after midnight and late at night."""
    hours = sorted({0, case.charge_hour, case.notice_hour, 23})
    ticks = []
    for day_offset in range(-3, 4):
        day = CHARGE_DAY + timedelta(days=day_offset)
        if case.event == "down" and -case.lead <= day_offset < 0:
            continue
        ticks += [kst_instant(day, hour, 5) for hour in hours]
    return ticks


def _setup(engine: Engine, case: Case) -> int:
    with clock.frozen(kst_instant(CHARGE_DAY - timedelta(days=20), 12)):
        with Session(engine) as session:
            session.add(SandboxInstrument(sid="S0000000000000000010", partner_user_id="u10", status="ACTIVE"))
            session.commit()
        sub_id = make_subscription(
            engine,
            OWNER,
            start=CHARGE_DAY - timedelta(days=28),
            anchor_day=10,
            amount=29000,
            instrument_ref="S0000000000000000010",
        )
        with Session(engine) as session:
            sub = session.get(Subscription, sub_id)
            assert sub is not None
            sub.instrument_gateway = "sandbox"
            sub.next_charge_date = CHARGE_DAY
            session.add(sub)
            billing.update_settings(
                session,
                OWNER,
                notice_lead_days=case.lead,
                charge_hour=case.charge_hour,
                notice_hour=case.notice_hour,
            )
            if case.event in ("resume_on", "resume"):
                resume_on = CHARGE_DAY + timedelta(days=case.offset) if case.event == "resume_on" else None
                billing.pause(session, OWNER, sub_id, resume_on=resume_on)
            session.commit()
    return sub_id


def _event(engine: Engine, case: Case, sub_id: int) -> None:
    with Session(engine) as session:
        if case.event == "resume":
            billing.resume(session, OWNER, sub_id)
        elif case.event == "amount":
            billing.change_amount(session, OWNER, sub_id, 39000)
        else:
            plan = billing.create_plan(session, OWNER, name="프리미엄 월회비", amount=49000)
            billing.change_plan(session, OWNER, sub_id, plan.id or 0)
        session.commit()


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: f"{c.event}{c.offset:+d}@{c.hour}h-lead{c.lead}-c{c.charge_hour}-n{c.notice_hour}",
)
def test_every_approved_charge_was_told_the_lead_before(sqlite_engine: Engine, case: Case) -> None:
    engine = sqlite_engine
    sub_id = _setup(engine, case)
    event_at = kst_instant(CHARGE_DAY + timedelta(days=case.offset), case.hour)
    pending_event = case.event in ("resume", "amount", "plan")
    for tick in _ticks(case):
        if pending_event and tick > event_at:
            with clock.frozen(event_at):
                _event(engine, case, sub_id)
            pending_event = False
        summary = run_once(engine, tick)
        assert summary["jobs"]["billing_charges"]["outcome"] == "ok", summary
    with Session(engine) as session:
        charges = session.exec(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sub_id)
        ).all()
        payments = {p.id: p for p in session.exec(select(Payment)).all()}
        notices = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith(f"billing_notice:{sub_id}:"))
        ).all()
    approved = [c for c in charges if c.status == "succeeded"]
    assert len(approved) == 1 and len(payments) == 1, "the period is charged once, within the days ticked"
    for charge in approved:
        payment = payments[charge.payment_id]
        assert payment.approved_at is not None
        told = [
            n
            for n in notices
            if n.variables.get("결제일") == f"{charge.period.month}월 {charge.period.day}일"
            and n.variables.get("금액") == f"{charge.amount:,}원"
        ]
        assert told, f"{charge.period} {charge.amount:,}원 charged without a notice of that date and amount"
        first = min(told, key=lambda n: n.send_after)
        told_day = first.send_after.astimezone(clock.KST).date()
        assert (charge.period - told_day).days >= case.lead
        assert first.created_at <= payment.approved_at and first.send_after <= payment.approved_at
        charged_day = payment.approved_at.astimezone(clock.KST).date()
        assert (charged_day - told_day).days >= case.lead


def test_resume_on_the_charge_day_moves_the_charge_and_the_screen_says_so(sqlite_engine: Engine) -> None:
    """The issue's example: resumed on 12-07, its own charge date, after 10:00: charged on 12-08."""
    engine = sqlite_engine
    with clock.frozen(kst_instant(date(2027, 11, 20), 12)):
        sub_id = make_subscription(engine, OWNER, start=date(2027, 12, 7), anchor_day=7, amount=29000)
        with Session(engine) as session:
            billing.pause(session, OWNER, sub_id)
            session.commit()
    with clock.frozen(kst_instant(date(2027, 12, 7), 8)), Session(engine) as session:
        billing.resume(session, OWNER, sub_id)
        words = billing.last_move_words(session, sub_id)
        session.commit()
    assert words == "결제 예정일이 12월 8일로 조정되었습니다: 결제 전날 안내를 보내기 위해"
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 12, 8)
    with Session(engine) as session:
        [resumed] = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith(f"subscription_resumed:{sub_id}:"))
        ).all()
        event = session.exec(select(SubscriptionEvent).where(SubscriptionEvent.kind == "resumed")).one()
    assert "다음 결제일은 12월 8일입니다" in resumed.text
    assert event.detail["moved_from"] == "2027-12-07"


def test_a_change_well_before_the_notice_moves_nothing(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    with clock.frozen(kst_instant(date(2027, 11, 20), 12)):
        sub_id = make_subscription(engine, OWNER, start=date(2027, 12, 7), anchor_day=7)
    with clock.frozen(kst_instant(date(2027, 12, 5), 12)), Session(engine) as session:
        billing.change_amount(session, OWNER, sub_id, 45000)
        assert billing.last_move_words(session, sub_id) is None
        session.commit()
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 12, 7)


def test_a_sign_up_on_its_charge_day_is_charged_as_agreed(sqlite_engine: Engine) -> None:
    """The first charge of a subscription that did not exist on its notice day is the one the
    customer agreed to when subscribing: not moved. One that existed is moved (the `down` cases)."""
    engine = sqlite_engine
    with Session(engine) as session:
        session.add(SandboxInstrument(sid="S0000000000000000011", partner_user_id="u11", status="ACTIVE"))
        session.commit()
    with clock.frozen(kst_instant(CHARGE_DAY, 8)):
        sub_id = make_subscription(engine, OWNER, start=CHARGE_DAY, instrument_ref="S0000000000000000011")
        with Session(engine) as session:
            sub = session.get(Subscription, sub_id)
            assert sub is not None
            sub.instrument_gateway = "sandbox"
            session.add(sub)
            session.commit()
    summary = run_once(engine, kst_instant(CHARGE_DAY, 9, 5))
    assert summary["jobs"]["billing_charges"]["counts"]["succeeded"] == 1
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 4, 10)


def test_a_change_while_paused_moves_nothing_until_it_resumes(sqlite_engine: Engine) -> None:
    """Paused: no charge is coming, so a change moves nothing; the resume keeps the promise."""
    engine = sqlite_engine
    with clock.frozen(kst_instant(date(2027, 11, 1), 12)):
        sub_id = make_subscription(engine, OWNER, start=date(2027, 11, 7), anchor_day=7)
        with Session(engine) as session:
            billing.pause(session, OWNER, sub_id)
            session.commit()
    with clock.frozen(kst_instant(date(2027, 12, 6), 12)), Session(engine) as session:
        billing.change_amount(session, OWNER, sub_id, 45000)
        assert billing.last_move_words(session, sub_id) is None
        session.commit()
    assert get_subscription(engine, sub_id).next_charge_date == date(2027, 11, 7)  # untouched while paused
    with clock.frozen(kst_instant(date(2027, 12, 7), 8)), Session(engine) as session:
        billing.resume(session, OWNER, sub_id)
        assert billing.last_move_words(session, sub_id) == (
            "결제 예정일이 12월 8일로 조정되었습니다: 결제 전날 안내를 보내기 위해"
        )
        session.commit()


def test_a_missed_notice_day_moves_the_charge_on_both_stores(engine: Engine) -> None:
    """The worker was down on D-1: on D it tells the customer and charges on D+1 (SQLite and PostgreSQL)."""
    from tests.billing_support import FakeGateway

    with clock.frozen(kst_instant(date(2027, 2, 1), 12)):
        sub_id = make_subscription(engine, OWNER, start=date(2027, 3, 1))
    gateway = FakeGateway()
    for day, hour in ((date(2027, 3, 1), 9), (date(2027, 3, 1), 10), (date(2027, 3, 2), 9)):
        now = kst_instant(day, hour)
        with clock.frozen(now):
            billing.billing_notices(engine, now)
            billing.run_charges(engine, now, gateway=gateway)
        if day == date(2027, 3, 1):
            assert gateway.charge_calls == 0
    assert gateway.charge_calls == 1
    with Session(engine) as session:
        [charge] = session.exec(select(SubscriptionCharge)).all()
        [notice] = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith(f"billing_notice:{sub_id}:"))
        ).all()
        moved = session.exec(select(SubscriptionEvent).where(SubscriptionEvent.kind == "charge_moved")).one()
    assert charge.period == date(2027, 3, 2) and charge.status == "succeeded"
    assert notice.send_after.astimezone(clock.KST).date() == date(2027, 3, 1)
    assert notice.text.startswith("내일(3월 2일)")
    assert moved.detail["moved_from"] == "2027-03-01"
