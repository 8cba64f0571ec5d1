"""The same-kind purchase exception (정보통신망법 제50조①1, 시행령 제61조) and the set-based queue.

The exception: a customer who paid for goods of the kind an ad is about within the last 6 months
may get that ad without prior consent (never after opting out; the night ban and the required text
still apply). Six months are counted the way 민법 제157조/제160조 count months.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core import campaigns, clock
from core.accounts.actor import Actor
from core.campaigns import reach, sending
from core.db import session_scope
from core.errors import PermissionDenied, ValidationFailed
from core.messaging import compliance
from core.messaging.sender import CATEGORY_HINT
from core.models import (
    AuditLog,
    Campaign,
    CampaignRecipient,
    Customer,
    Message,
    MessageKind,
    MessageStatus,
    Product,
    Role,
)
from core.payments.orders import record_paid_order

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 12:00 KST
NIGHT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 23:00 KST
STAFF = Actor(id=None, name="스태프", role=Role.STAFF)
SHOP = compliance.Shop(name="테스트상점", opt_out_number="080-000-0000")


@pytest.mark.parametrize(
    ("purchase_day", "last_day"),
    [
        (date(2026, 1, 15), date(2026, 7, 15)),  # starts the 16th, ends the day before 7/16
        (date(2026, 1, 31), date(2026, 7, 31)),
        (date(2026, 2, 28), date(2026, 8, 31)),  # starts 3/1, ends the day before 9/1
        (date(2026, 6, 30), date(2026, 12, 31)),
        (date(2026, 8, 30), date(2027, 2, 28)),  # starts 8/31: no 2/31, so the month's last day
        (date(2026, 8, 31), date(2027, 2, 28)),
        (date(2027, 8, 30), date(2028, 2, 29)),  # leap year
        (date(2026, 12, 31), date(2027, 6, 30)),
        (date(2026, 5, 23), date(2026, 11, 23)),
    ],
)
def test_six_months_end_as_the_civil_code_counts(purchase_day: date, last_day: date) -> None:
    assert compliance.purchase_exception_last_day(purchase_day) == last_day


def _kst(y: int, m: int, d: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=clock.KST).astimezone(UTC)


@pytest.mark.parametrize(
    ("purchased_at", "now", "applies"),
    [
        (_kst(2026, 5, 23, 10), _kst(2026, 11, 23, 23, 59), True),  # the whole last day
        (_kst(2026, 5, 23, 10), _kst(2026, 11, 24, 0, 0), False),
        (_kst(2026, 5, 23, 23, 59), _kst(2026, 11, 24, 0, 1), False),
        (_kst(2026, 5, 24, 0, 0), _kst(2026, 11, 24, 9), True),
        (_kst(2026, 8, 31), _kst(2027, 2, 28, 23), True),
        (_kst(2026, 8, 31), _kst(2027, 3, 1, 0, 0), False),
        (None, _kst(2026, 11, 23), False),
        (_kst(2026, 11, 24), _kst(2026, 11, 23), False),  # not bought yet
    ],
)
def test_purchase_exception_applies(purchased_at: datetime | None, now: datetime, applies: bool) -> None:
    assert compliance.purchase_exception_applies(purchased_at, now) is applies


def test_the_sql_bound_agrees_with_the_rule_every_day_of_two_years() -> None:
    """count_segment uses one instant bound; it must say exactly what the per-message rule says."""
    day = date(2026, 1, 1)
    for offset in range(0, 730, 3):
        now = _kst(2026, 1, 1, 15) + timedelta(days=offset)
        bound = compliance.earliest_excepting_purchase(now)
        for back in range(170, 195):
            for hour in (0, 23):
                purchased = datetime.combine(
                    clock.to_kst(now).date() - timedelta(days=back), datetime.min.time(), tzinfo=clock.KST
                ) + timedelta(hours=hour, minutes=59 if hour else 0)
                assert compliance.purchase_exception_applies(purchased, now) is (purchased >= bound), (
                    day,
                    now,
                    purchased,
                )


@pytest.mark.parametrize(
    ("consent", "opted_out", "bought_days_ago", "action"),
    [
        (False, False, 30, compliance.Action.SEND),
        (False, False, 200, compliance.Action.SKIP),  # more than 6 months
        (False, False, None, compliance.Action.SKIP),
        (False, True, 30, compliance.Action.SKIP),  # an opt-out always wins
        (True, False, None, compliance.Action.SEND),
    ],
)
def test_compliance_gate_applies_the_exception(
    consent: bool, opted_out: bool, bought_days_ago: int | None, action: compliance.Action
) -> None:
    recipient = compliance.Recipient(
        ad_consent_at=NOW - timedelta(days=400) if consent else None,
        ad_opt_out_at=NOW - timedelta(days=1) if opted_out else None,
        last_same_kind_purchase_at=NOW - timedelta(days=bought_days_ago) if bought_days_ago else None,
    )
    decision = compliance.check(
        kind=MessageKind.ADVERTISING, text="특가", recipient=recipient, shop=SHOP, now=NOW
    )
    assert decision.action == action


# ------------------------------------------------------------------------------ in campaigns


@pytest.fixture
def buyers(engine: Engine) -> dict[str, int]:
    """One customer per case of the exception; orders recorded through the real write path."""
    with session_scope(engine) as s:
        coffee = Product(name="원두 1kg", category="커피", price=30000)
        mug = Product(name="머그컵", category="잡화", price=15000)
        s.add_all([coffee, mug])
        s.flush()
        cases = {
            "consented": (True, False, None, None),
            "coffee_5_months": (False, False, coffee, 150),
            "coffee_7_months": (False, False, coffee, 215),
            "mug_1_month": (False, False, mug, 30),
            "opted_out_coffee": (False, True, coffee, 30),
            "never_bought": (False, False, None, None),
        }
        ids = {}
        for number, (key, (consent, opted_out, product, days)) in enumerate(cases.items()):
            customer = Customer(
                name=key,
                phone=f"010-1000-{number:04d}",
                mobile=f"0101000{number:04d}",
                ad_consent_at=NOW - timedelta(days=400) if consent else None,
                ad_opt_out_at=NOW - timedelta(days=2) if opted_out else None,
            )
            s.add(customer)
            s.flush()
            ids[key] = customer.id
            if product is not None:
                record_paid_order(
                    s,
                    order_number=f"x-{number}",
                    customer_id=customer.id,
                    product_id=product.id,
                    item_name=product.name,
                    amount=product.price,
                    tax_free_amount=0,
                    source="link",
                    ordered_at=NOW - timedelta(days=days),
                    paid_at=NOW - timedelta(days=days),
                )
    return ids


EVERYONE = {"include": [{"type": "channel_friend", "value": True}]}


@pytest.mark.parametrize(
    ("category", "reachable", "by_exception"),
    [
        (None, {"consented"}, 0),
        ("커피", {"consented", "coffee_5_months"}, 1),
        ("잡화", {"consented", "mug_1_month"}, 1),
    ],
)
def test_count_and_send_include_recent_buyers_of_the_advertised_kind(
    engine: Engine, buyers: dict[str, int], category: str | None, reachable: set[str], by_exception: int
) -> None:
    with Session(engine) as s:
        counted = campaigns.count_segment(s, EVERYONE, now=NOW, advertised_category=category)
    assert (counted.reachable, counted.by_purchase_exception) == (len(reachable), by_exception)
    assert counted.excluded["opted_out"] == 1
    with session_scope(engine) as s:
        campaign = campaigns.create_campaign(
            s,
            STAFF,
            name="원두 특가",
            bodies=["#{이름}님 특가"],
            rules=EVERYONE,
            options={"advertised_category": category},
        )
    with session_scope(engine) as s:
        assert campaigns.plan(s, campaign.id, now=NOW).reachable == len(reachable)
        campaigns.start(s, STAFF, campaign.id, now=NOW)
    with Session(engine) as s:
        messages = s.execute(select(Message).where(Message.campaign_id == campaign.id)).scalars().all()
        names = {s.get(Customer, m.customer_id).name for m in messages}
        assert names == reachable
        for message in messages:
            # The sender re-checks each message; the hint lets it apply the same exception.
            assert message.variables == ({CATEGORY_HINT: category} if category else {})
            assert message.text.startswith("(광고) ") and "무료수신거부" in message.text


def test_unknown_advertised_category_is_refused(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as s, pytest.raises(ValidationFailed, match="상품 분류"):
        campaigns.create_campaign(
            s, STAFF, name="x", bodies=["특가"], rules=EVERYONE, options={"advertised_category": "없는분류"}
        )


# ------------------------------------------------------------------------------ the queue in SQL


def test_queued_texts_are_exactly_the_preview_texts(engine: Engine, buyers: dict[str, int]) -> None:
    """The set-based INSERT .. SELECT renders what the Python preview shows, variable by variable."""
    bodies = [
        "#{이름}님, #{최근구매상품} 또 필요하세요? 구매 #{구매횟수}회 · 누적 #{누적구매액} #{링크}",
        "(광고) 직접 쓴 머리말 #{이름} #{링크}",  # no second "(광고)"
    ]
    with session_scope(engine) as s:
        for key in ("coffee_5_months", "mug_1_month", "never_bought"):
            s.get(Customer, buyers[key]).ad_consent_at = NOW - timedelta(days=10)
        campaign = campaigns.create_campaign(
            s,
            STAFF,
            name="미리보기",
            bodies=bodies,
            rules=EVERYONE,
            test_share=0.5,
            options={"link_url": "https://shop.example/a"},
        )
    with session_scope(engine) as s:
        preview = campaigns.preview(s, campaign.id, now=NOW, limit=10)
        counts = campaigns.start(s, STAFF, campaign.id, now=NOW)
    expected = {(line.customer_id, line.variant): line for line in preview}
    with Session(engine) as s:
        recipients = (
            s.execute(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id))
            .scalars()
            .all()
        )
        messages = {
            m.customer_id: m
            for m in s.execute(select(Message).where(Message.campaign_id == campaign.id)).scalars()
        }
    assert len(recipients) == counts["recipients"] == 2  # the test sample: half of four
    for recipient in recipients:
        line = expected[(recipient.customer_id, recipient.variant)]
        assert recipient.skipped_reason == line.skipped_reason
        if line.text is None:
            assert recipient.customer_id not in messages
        else:
            assert messages[recipient.customer_id].text == line.text
    texts = [m.text for m in messages.values()]
    assert all(t.count("(광고)") == 1 for t in texts)
    assert texts and len(texts) + counts["skipped"] == 2


def test_queue_again_adds_nothing_and_night_holds(engine: Engine, buyers: dict[str, int]) -> None:
    """A second run over the same recipients (a rerun, a second worker past the status guard)
    queues nothing more; at 23:00 those without night consent are held to 08:00."""
    with session_scope(engine) as s:
        campaign = campaigns.create_campaign(s, STAFF, name="밤", bodies=["#{이름}님 특가"], rules=EVERYONE)
    with session_scope(engine) as s:
        first = campaigns.start(s, STAFF, campaign.id, now=NIGHT)
    with session_scope(engine) as s:
        c = s.get(Campaign, campaign.id)
        members = reach._members(s, c, NIGHT)
        again = sending._queue(s, c, [(m, "rest", "A") for m in members], NIGHT, None)
    assert first["queued"] == first["held"] == 1
    assert (again["recipients"], again["queued"]) == (0, 0)
    with Session(engine) as s:
        held = s.execute(select(Message).where(Message.campaign_id == campaign.id)).scalars().all()
    assert [(m.status, m.send_after) for m in held] == [
        (MessageStatus.HELD, compliance.next_day_start(NIGHT))
    ]


# ------------------------------------------------------------------------------ price per message


@pytest.mark.parametrize(
    ("value", "stored"),
    [(20, 20), ("30", 30), ("1,000원", 1000), (0, 0), (-1, None), (1001, None), ("abc", None), (None, None)],
)
def test_price_per_message_is_validated_and_audited(
    sqlite_engine: Engine, sqlite_actors, value, stored
) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as s:
        if stored is None:
            with pytest.raises(ValidationFailed, match="건당 비용"):
                campaigns.set_price_per_message(s, sqlite_actors["owner"], value)
        else:
            assert campaigns.set_price_per_message(s, sqlite_actors["owner"], value) == stored
    with Session(sqlite_engine) as s:
        expected = campaigns.DEFAULT_PRICE_PER_MESSAGE if stored is None else stored
        assert campaigns.price_per_message(s) == expected
        audited = s.execute(select(AuditLog).where(AuditLog.action == "setting.change")).scalars().all()
        assert len(audited) == (0 if stored is None else 1)


def test_only_the_owner_sets_the_price(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as s, pytest.raises(PermissionDenied):
        campaigns.set_price_per_message(s, sqlite_actors["staff"], 10)
