"""A fair queue (issue 15): held messages go before new ones of the same kind when their time
comes (oldest first); an ad held for the daily limit moves to the customer's next free day, and
says so; the smart test's winner reaches everyone in the plan (over today's limit: held, counted,
sent the next day, never dropped)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from core import campaigns, clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.messaging import sender
from core.messaging.providers import OutboxProvider
from core.models import Customer, Message, MessageKind
from tests.messaging.helpers import NOON, customer, message, queue, setup_templates

AD = MessageKind.ADVERTISING
DAY = timedelta(days=1)


def _morning(days: int):
    """08:00 KST, `days` after NOON's day."""
    return clock.kst_midnight(clock.today_kst(NOON) + timedelta(days=days)) + timedelta(hours=8)


def test_a_held_ad_whose_time_came_goes_before_a_new_one(engine: Engine) -> None:
    setup_templates(engine, alimtalk=False)
    cid = customer(engine, ad_consent_at=NOON - 30 * DAY)
    queue(engine, cid, "promo:new", template="promo", kind=AD)  # a fresh ad, queued first
    old = queue(engine, cid, "promo:held", template="promo", kind=AD)
    with Session(engine) as s:  # held last night; its time came an hour ago
        s.execute(
            update(Message)
            .where(Message.id == old)
            .values(status="held", send_after=NOON - timedelta(hours=1))
        )
        s.commit()
    sender.run(engine, NOON, provider=OutboxProvider())
    assert message(engine, "promo:held").status == "delivered"
    new = message(engine, "promo:new")
    assert new.status == "held" and new.reason.startswith("내일 08:00 발송 예정: 하루 광고 한도")
    assert clock.as_utc(new.send_after) == _morning(1)


def test_ads_over_the_limit_move_to_the_next_free_days_visibly(engine: Engine) -> None:
    setup_templates(engine, alimtalk=False)
    cid = customer(engine, ad_consent_at=NOON - 30 * DAY)
    for i in range(4):
        queue(engine, cid, f"promo:{i}", template="promo", kind=AD)
    sender.run(engine, NOON, provider=OutboxProvider())
    rows = [message(engine, f"promo:{i}") for i in range(4)]
    assert [r.status for r in rows] == ["delivered", "held", "held", "held"]
    assert [clock.as_utc(r.send_after) for r in rows[1:]] == [_morning(1), _morning(2), _morning(3)]
    assert rows[1].reason.startswith("내일 08:00 발송 예정")
    assert rows[2].reason.startswith("모레 08:00 발송 예정")
    assert rows[3].reason.startswith(
        f"{clock.to_kst(_morning(3)).month}월 {clock.to_kst(_morning(3)).day}일 08:00"
    )
    # Each morning, the oldest held ad goes; a new ad of that day waits behind the held ones.
    sent_on: dict = {}
    for day in (1, 2, 3):
        queue(engine, cid, f"promo:late{day}", template="promo", kind=AD, send_after=_morning(day))
        sender.run(engine, _morning(day), provider=OutboxProvider())
        with Session(engine) as s:
            for m in s.exec(select(Message).where(Message.status == "delivered")):
                sent_on.setdefault(m.idempotency_key, clock.today_kst(clock.as_utc(m.sent_at)))
    assert [sent_on.get(f"promo:{i}") for i in range(4)] == [
        clock.today_kst(NOON + d * DAY) for d in range(4)
    ]
    assert max(Counter(sent_on.values()).values()) == 1  # never two ads a day
    assert all(message(engine, f"promo:late{d}").status == "held" for d in (1, 2, 3))


def test_the_winner_reaches_everyone_in_the_plan_over_the_limit_held_not_dropped(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    setup_templates(engine, alimtalk=False)
    with Session(engine) as s:
        for i in range(50):
            s.add(
                Customer(
                    name=f"고객{i}",
                    phone=f"010-3000-{i:04d}",
                    mobile=f"0103000{i:04d}",
                    public_id=f"pub{i}",
                    ad_consent_at=NOON - 30 * DAY,
                )
            )
        s.commit()
    staff = actors["staff"]
    with session_scope(engine) as s:
        cid = campaigns.create_campaign(
            s,
            staff,
            name="겨울 세일",
            bodies=["#{이름}님 A안", "#{이름}님 B안"],
            rules={"include": [{"type": "channel_friend", "value": True}]},
            test_share=0.2,
            holdout_share=0.0,
        ).id
    with session_scope(engine) as s:
        assert campaigns.start(s, staff, cid, now=NOON)["queued"] == 10
    sender.run(engine, NOON, provider=OutboxProvider())
    winner_at = NOON + DAY
    with Session(engine) as s:
        tested = set(s.exec(select(Message.customer_id).where(Message.campaign_id == cid)))
        busy = [c for c in s.exec(select(Customer.id).order_by(Customer.id)) if c not in tested][:7]
    for c in busy:  # a repurchase reminder already took their ad of the winner's day
        queue(engine, c, f"promo:busy{c}", template="promo", kind=AD, send_after=winner_at)
    sender.run(engine, winner_at, provider=OutboxProvider())
    with session_scope(engine) as s:
        counts = campaigns.send_winner(s, staff, cid, variant="B", now=winner_at)
    assert counts["queued"] == 40 and counts["over_limit"] == 7  # everyone in the plan
    sender.run(engine, winner_at, provider=OutboxProvider())
    with Session(engine) as s:
        result = campaigns.results(s, cid, now=winner_at)
        held = s.exec(select(Message).where(Message.campaign_id == cid, Message.status == "held")).all()
    by = {r.variant: r for r in result.variants}
    assert by["B"].held == 7 and result.total.held == 7 and result.total.failed == 0
    assert {m.customer_id for m in held} == set(busy)
    assert all(m.reason.startswith("내일 08:00 발송 예정") for m in held)
    sender.run(engine, winner_at + DAY - timedelta(hours=4), provider=OutboxProvider())  # 08:00 next day
    with Session(engine) as s:
        result = campaigns.results(s, cid, now=winner_at + DAY)
    assert result.total.held == 0 and result.total.delivered == 50  # nobody dropped
