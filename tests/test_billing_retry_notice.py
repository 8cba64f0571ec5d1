"""Every dunning retry date is told to the customer before it is tried (issue 13 item 9)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import billing, clock
from core.accounts.actor import Actor
from core.billing.dates import korean_date, kst_instant
from core.models import Message, Role, SubscriptionChargeAttempt
from tests.billing_support import FakeGateway, make_subscription

OWNER = Actor(None, "사장님", Role.OWNER)
DUE = date(2027, 3, 1)


@pytest.mark.parametrize("retry_days", [(1, 3, 7), (2, 5), (1, 2, 3, 4), (7,), (3, 10, 14)])
def test_every_retry_date_is_announced_before_it_is_tried(
    sqlite_engine: Engine, retry_days: tuple[int, ...]
) -> None:
    engine = sqlite_engine
    with clock.frozen(kst_instant(DUE - timedelta(days=10), 12)):
        sub_id = make_subscription(engine, OWNER, start=DUE)
        with Session(engine) as session:
            billing.update_settings(session, OWNER, retry_days=list(retry_days))
            session.commit()
    gateway = FakeGateway()
    gateway.inject("busy", times=20)  # every try refused with a retriable answer (잔액 부족, busy)
    day = DUE
    while day <= DUE + timedelta(days=max(retry_days) + 2):
        for hour in (0, 9, 18):  # a tick after midnight, at the charge hour and in the evening
            now = kst_instant(day, hour, 30)
            with clock.frozen(now):
                billing.run_charges(engine, now, gateway=gateway)
        day += timedelta(days=1)
    with Session(engine) as session:
        attempts = session.exec(
            select(SubscriptionChargeAttempt).order_by(col(SubscriptionChargeAttempt.number))
        ).all()
        told = session.exec(
            select(Message).where(
                col(Message.idempotency_key).startswith(f"billing_failed:{sub_id}:")
                | col(Message.idempotency_key).startswith(f"billing_retry:{sub_id}:")
            )
        ).all()
    tried_days = [a.at.astimezone(clock.KST).date() for a in attempts]
    assert tried_days == [DUE] + [DUE + timedelta(days=d) for d in retry_days]
    for attempt, tried in zip(attempts[1:], tried_days[1:], strict=True):
        words = f"{korean_date(tried)}에 다시 결제를 시도합니다."
        before = [m for m in told if words in m.text and m.created_at < attempt.at]
        assert before, f"the retry on {tried} was not announced before it was tried"
        assert all(m.template_key == "billing_failed" and m.kind == "informational" for m in before)
    keys = [m.idempotency_key for m in told]
    assert len(keys) == len(set(keys)) == len(retry_days)  # one per retry, the first in the failure notice
    assert not any("다시 결제를 시도합니다" in m.text for m in told if m.created_at >= attempts[-1].at)
