"""Campaigns: segment rules as SQL, reachability, compose, smart test, send once, results."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import campaigns, clock
from core.accounts.actor import Actor
from core.customers import summary as customer_summary
from core.customers.identity import canonical_mobile
from core.db import session_scope
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import (
    AdSendSlot,
    AuditLog,
    Campaign,
    CampaignClick,
    CampaignRecipient,
    CampaignStatus,
    Customer,
    Message,
    MessageKind,
    MessageStatus,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Role,
    Subscription,
    SubscriptionPlan,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 12:00 KST, a Monday
STAFF = Actor(id=None, name="스태프", role=Role.STAFF)
CS = Actor(id=None, name="상담", role=Role.CS)
NIGHT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 23:00 KST


_PHONES = itertools.count()


def _customer(
    s: Session,
    name: str,
    *,
    consent: bool = True,
    night: bool = False,
    friend: bool = True,
    phone: str | None = "auto",
    opted_out: bool = False,
) -> int:
    if phone == "auto":  # one number per person (Customer.mobile is unique), all ending 5678
        phone = f"010-{1000 + next(_PHONES):04d}-5678"
    c = Customer(
        name=name,
        phone=phone,
        mobile=canonical_mobile(phone),
        is_channel_friend=friend,
        ad_consent_at=NOW - timedelta(days=400) if consent else None,
        night_ad_consent_at=NOW - timedelta(days=400) if night else None,
        ad_opt_out_at=NOW - timedelta(days=1) if opted_out else None,
        created_at=NOW - timedelta(days=500),
    )
    s.add(c)
    s.flush()
    return c.id


def _order(
    s: Session,
    customer_id: int,
    days_ago: int,
    amount: int,
    product: Product | None = None,
    status: str = OrderStatus.PAID,
) -> None:
    o = Order(
        order_number=f"o-{customer_id}-{days_ago}-{amount}",
        customer_id=customer_id,
        total_amount=amount,
        status=status,
        ordered_at=NOW - timedelta(days=days_ago),
    )
    s.add(o)
    s.flush()
    if product is not None:
        s.add(
            OrderItem(
                order_id=o.id,
                product_id=product.id,
                product_name=product.name,
                quantity=1,
                unit_price=amount,
                amount=amount,
            )
        )
    customer_summary.refresh(s, [customer_id])  # as every order write path does


@pytest.fixture
def shop(engine: Engine) -> dict[str, int]:
    """A small shop whose every customer is there to make one rule true or false."""
    with session_scope(engine) as s:
        coffee = Product(name="원두 1kg", category="커피", price=30000, replenishment_days=30)
        mug = Product(name="머그컵", category="잡화", price=15000)
        s.add_all([coffee, mug])
        s.flush()
        plan = SubscriptionPlan(name="월 원두", amount=39000)
        s.add(plan)
        s.flush()
        ids = {
            "vip": _customer(s, "김VIP", night=True),
            "coffee_due": _customer(s, "이커피"),
            "dormant": _customer(s, "박휴면"),
            "new": _customer(s, "최신규"),
            "never": _customer(s, "정무주문"),
            "subscriber": _customer(s, "한구독"),
            "no_consent": _customer(s, "오동의없음", consent=False),
            "opted_out": _customer(s, "윤거부", opted_out=True),
            "not_friend": _customer(s, "장친구아님", friend=False),
        }
        for days in (10, 20, 40):
            _order(s, ids["vip"], days, 200000, mug)
        _order(s, ids["coffee_due"], 200, 30000, coffee)
        _order(s, ids["coffee_due"], 28, 30000, coffee)  # due in 2 days
        _order(s, ids["dormant"], 200, 50000, mug)
        _order(s, ids["new"], 3, 15000, mug)
        _order(s, ids["new"], 1, 99999, mug, status=OrderStatus.REFUNDED)
        _order(s, ids["subscriber"], 15, 39000, coffee)
        _order(s, ids["no_consent"], 5, 500000, mug)
        _order(s, ids["opted_out"], 5, 500000, mug)
        _order(s, ids["not_friend"], 5, 500000, mug)
        s.add(Subscription(customer_id=ids["subscriber"], plan_id=plan.id, amount=39000, anchor_day=1))
        ids["coffee"], ids["mug"] = coffee.id, mug.id
    return ids


def _members(engine: Engine, rules: dict) -> set[int]:
    with Session(engine) as s:
        condition = campaigns.segment_condition(s, rules, NOW)
        return set(s.execute(select(Customer.__table__.c.id).where(condition)).scalars())


CUSTOMERS = [
    "vip",
    "coffee_due",
    "dormant",
    "new",
    "never",
    "subscriber",
    "no_consent",
    "opted_out",
    "not_friend",
]

RULE_CASES = [
    ({"type": "spent", "min_amount": 300000, "days": 30}, {"vip", "no_consent", "opted_out", "not_friend"}),
    ({"type": "spent", "min_amount": 500000, "days": 60}, {"vip", "no_consent", "opted_out", "not_friend"}),
    ({"type": "spent", "min_amount": 600001, "days": 60}, set()),
    ({"type": "bought", "product_ids": ["coffee"], "days": 60}, {"coffee_due", "subscriber"}),
    (
        {"type": "bought", "category": "잡화", "start": "2026-11-01", "end": "2026-11-30"},
        {"vip", "new", "no_consent", "opted_out", "not_friend"},
    ),
    ({"type": "repurchase_due", "within_days": 7}, {"coffee_due"}),
    ({"type": "dormant", "days": 90}, {"dormant"}),
    ({"type": "dormant", "days": 90, "include_never": True}, {"dormant", "never"}),
    ({"type": "subscription", "statuses": ["active"]}, {"subscriber"}),
    ({"type": "channel_friend", "value": False}, {"not_friend"}),
    ({"type": "order_count", "min": 2}, {"vip", "coffee_due"}),
    ({"type": "order_count", "max": 0}, {"never"}),
    ({"type": "first_purchase", "days": 30}, {"new", "subscriber", "no_consent", "opted_out", "not_friend"}),
]


def test_each_rule_selects_exactly_its_customers(engine: Engine, shop: dict[str, int]) -> None:
    """The table of cases runs on one store per engine (PostgreSQL setup is the slow part)."""
    wrong = []
    for rule, expected in RULE_CASES:
        if "product_ids" in rule:
            rule = {**rule, "product_ids": [shop[p] for p in rule["product_ids"]]}
        got = _members(engine, {"include": [rule]})
        if got != {shop[k] for k in expected}:
            names = {v: k for k, v in shop.items()}
            wrong.append((rule, sorted(names[i] for i in got), sorted(expected)))
    assert not wrong, wrong


def test_include_and_exclude_combine(engine: Engine, shop: dict[str, int]) -> None:
    rules = {
        "include": [{"type": "order_count", "min": 1}],
        "exclude": [
            {"type": "spent", "min_amount": 300000, "days": 60},
            {"type": "subscription", "statuses": ["active"]},
        ],
    }
    assert _members(engine, rules) == {shop[k] for k in ("coffee_due", "dormant", "new")}


@pytest.mark.parametrize(
    "rules",
    [
        {"include": []},
        {},
        {"include": [{"type": "dormant", "days": 90}, {"type": "spent", "min_amount": 1, "days": 30}]},
        {"include": [{"type": "channel_friend", "value": True}, {"type": "channel_friend", "value": False}]},
        {"include": [{"type": "order_count", "min": 5, "max": 2}]},
        {"include": [{"type": "order_count", "max": 0}, {"type": "bought", "category": "커피", "days": 10}]},
        {"include": [{"type": "dormant", "days": 30}], "exclude": [{"type": "dormant", "days": 30}]},
        {"include": [{"type": "first_purchase", "start": "2026-12-01", "end": "2026-11-01"}]},
        {"include": [{"type": "spent", "days": 30}]},
        {"include": [{"type": "nonsense"}]},
    ],
    ids=[
        "empty",
        "no-include",
        "dormant-vs-spent",
        "friend-both",
        "min>max",
        "never-but-bought",
        "include=exclude",
        "period-reversed",
        "missing-amount",
        "unknown",
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(sqlite_engine: Engine, rules) -> None:
    with Session(sqlite_engine) as s, pytest.raises(ValidationFailed) as caught:
        campaigns.count_segment(s, rules, now=NOW)
    assert str(caught.value)


def test_count_shows_reachable_excluded_why_and_a_sample(engine: Engine, shop: dict[str, int]) -> None:
    with Session(engine) as s:
        counted = campaigns.count_segment(
            s, {"include": [{"type": "spent", "min_amount": 300000, "days": 60}]}, now=NOW
        )
    assert (counted.total, counted.reachable) == (4, 1)
    assert counted.excluded == {
        "opted_out": 1,
        "no_consent": 1,
        "not_mobile": 0,
        "not_friend": 1,
        "pressure": 0,
    }
    assert [m["id"] for m in counted.sample] == [shop["vip"]]
    assert counted.sample[0]["phone"] == "010-****-5678"


def test_no_members_gives_a_message(engine: Engine, shop: dict[str, int]) -> None:
    with Session(engine) as s:
        counted = campaigns.count_segment(
            s, {"include": [{"type": "spent", "min_amount": 10**9, "days": 9}]}, now=NOW
        )
    assert counted.total == 0 and "없습니다" in counted.message


def test_pressure_limit_excludes_customers_who_had_enough_ads(engine: Engine, shop: dict[str, int]) -> None:
    """The sender's ledger of today's ad slots decides it: the default is one ad per KST day."""
    with session_scope(engine) as s:
        sent = Message(
            customer_id=shop["vip"],
            kind=MessageKind.ADVERTISING,
            template_key="x",
            idempotency_key="old:0",
            status=MessageStatus.SENT,
            sent_at=NOW - timedelta(hours=3),
        )
        s.add(sent)
        s.flush()
        s.add(AdSendSlot(customer_id=shop["vip"], kst_day=clock.today_kst(NOW), slot=1, message_id=sent.id))
        yesterday = Message(
            customer_id=shop["coffee_due"],
            kind=MessageKind.ADVERTISING,
            template_key="x",
            idempotency_key="old:1",
            status=MessageStatus.SENT,
            sent_at=NOW - timedelta(days=1),
        )
        s.add(yesterday)
        s.flush()
        s.add(
            AdSendSlot(
                customer_id=shop["coffee_due"],
                kst_day=clock.today_kst(NOW - timedelta(days=1)),
                slot=1,
                message_id=yesterday.id,
            )
        )
    with Session(engine) as s:
        counted = campaigns.count_segment(s, {"include": [{"type": "order_count", "min": 1}]}, now=NOW)
    assert counted.excluded["pressure"] == 1


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("#{이름}님 안녕하세요", {"이름": "김"}, ("김님 안녕하세요", [])),
        ("#{최근구매상품} 다시", {"이름": "김"}, (None, ["최근구매상품"])),
        ("변수 없음", {}, ("변수 없음", [])),
    ],
)
def test_render(body, values, expected) -> None:
    assert campaigns.render(body, values) == expected


def test_ad_text_has_prefix_shop_and_opt_out() -> None:
    from core.messaging.compliance import Shop

    text = campaigns.ad_text("할인합니다", Shop("테스트샵", "080-111-2222", "02-1"))
    assert text.startswith("(광고) 테스트샵\n") and text.endswith("무료수신거부 080-111-2222")
    assert campaigns.ad_text(text, Shop("테스트샵", "080-111-2222", "02-1")) == text


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 11, 23, 3, 0, tzinfo=UTC), datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),  # 12:00 KST
        (datetime(2026, 11, 23, 14, 0, tzinfo=UTC), datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),  # 23:00
        (datetime(2026, 11, 23, 18, 0, tzinfo=UTC), datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),  # 03:00
        (datetime(2026, 11, 23, 12, 0, tzinfo=UTC), datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),  # 21:00
        (datetime(2026, 11, 22, 23, 0, tzinfo=UTC), datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),  # 08:00
    ],
)
def test_night_hold_moves_to_eight(at, expected) -> None:
    assert campaigns.next_ad_window(at) == expected


def test_assignment_is_deterministic_and_split_by_share() -> None:
    members = [(i, f"n{i}", f"p{i}", False) for i in range(1000)]
    first = campaigns.assign_groups(
        members, seed="7:1", keys=["A", "B", "C"], test_share=0.3, holdout_share=0.1
    )
    again = campaigns.assign_groups(
        list(reversed(members)), seed="7:1", keys=["A", "B", "C"], test_share=0.3, holdout_share=0.1
    )
    other = campaigns.assign_groups(
        members, seed="8:1", keys=["A", "B", "C"], test_share=0.3, holdout_share=0.1
    )
    assert first == again and first != other
    groups = [(g, v) for _, g, v in first]
    assert groups.count(("holdout", None)) == 100
    assert [groups.count(("test", k)) for k in "ABC"] == [100, 100, 100]
    assert len(first) == 400  # the rest waits for the winner


def _bulk_customers(engine: Engine, n: int, *, night_every: int = 0) -> None:
    with session_scope(engine) as s:
        s.execute(
            Customer.__table__.insert(),
            [
                {
                    "name": f"고객{i}",
                    "phone": f"010-0000-{i:04d}",
                    "mobile": f"0100000{i:04d}",
                    "is_channel_friend": True,
                    "public_id": f"pub{i}",
                    "ad_consent_at": NOW - timedelta(days=30),
                    "night_ad_consent_at": NOW if night_every and i % night_every == 0 else None,
                    "created_at": NOW - timedelta(days=30),
                }
                for i in range(n)
            ],
        )


EVERYONE = {"include": [{"type": "channel_friend", "value": True}]}


def _campaign(engine: Engine, actor: Actor, bodies: list[str], **kw) -> int:
    with session_scope(engine) as s:
        return campaigns.create_campaign(
            s, actor, name="테스트 캠페인", bodies=bodies, rules=kw.pop("rules", EVERYONE), **kw
        ).id


def test_smart_test_then_winner_to_the_rest_once(engine: Engine, actors: dict[str, Actor]) -> None:
    _bulk_customers(engine, 200)
    staff = actors["staff"]
    cid = _campaign(
        engine,
        staff,
        ["#{이름}님 A안 #{링크}", "#{이름}님 B안 #{링크}"],
        test_share=0.2,
        holdout_share=0.1,
        options={"seed": 3, "link_url": "https://shop.example/sale"},
    )
    with session_scope(engine) as s:
        counts = campaigns.start(s, staff, cid, now=NOW)
    assert (counts["holdout"], counts["queued"]) == (20, 40)
    with session_scope(engine) as s, pytest.raises(Conflict):
        campaigns.start(s, staff, cid, now=NOW)  # the double click
    with Session(engine) as s:
        msgs = s.execute(select(Message).where(Message.campaign_id == cid)).scalars().all()
        assert len(msgs) == 40 and {m.campaign_variant for m in msgs} == {"A", "B"}
        first = msgs[0]
        assert first.kind == MessageKind.ADVERTISING and first.text.startswith("(광고) ")
        assert first.idempotency_key == f"campaign:{cid}:{first.customer_id}"
        assert first.to_phone and "/go?c=" in first.text and first.send_after == NOW
        assert s.get(Campaign, cid).status == CampaignStatus.TESTING
        # Two clicks on B by people who then buy: B wins by the stated rule.
        b_people = [m for m in msgs if m.campaign_variant == "B"][:2]
        publics = [s.get(Customer, m.customer_id).public_id for m in b_people]
    with session_scope(engine) as s:
        for public_id in publics:
            assert (
                campaigns.record_click(
                    s, campaign_id=str(cid), public_id=public_id, now=NOW + timedelta(hours=1)
                )
                == "https://shop.example/sale"
            )
        # Walking campaign ids with a made-up recipient id reveals nothing (#16): only sent links answer.
        assert campaigns.record_click(s, campaign_id=str(cid), public_id="stranger") is None
        assert campaigns.record_click(s, campaign_id=str(cid), public_id="") is None
        assert campaigns.record_click(s, campaign_id="x", public_id="y") is None
        for m in b_people:
            s.add(
                Order(
                    order_number=f"buy-{m.customer_id}",
                    customer_id=m.customer_id,
                    total_amount=50000,
                    status=OrderStatus.PAID,
                    ordered_at=NOW + timedelta(hours=2),
                )
            )
    with Session(engine) as s:
        result = campaigns.results(s, cid, now=NOW + timedelta(days=1))
    by = {r.variant: r for r in result.variants}
    assert (by["B"].clicks, by["B"].orders, by["B"].revenue) == (2, 2, 100000)
    assert (by["A"].recipients, by["A"].queued) == (20, 20)
    assert result.holdout.recipients == 20 and result.lift is None  # holdout did not buy: no base rate
    assert campaigns.choose_winner(result.variants, "click_rate")[0] == "B"
    with session_scope(engine) as s:
        counts = campaigns.send_winner(s, staff, cid, now=NOW + timedelta(days=1))
    assert counts["queued"] == 140  # 200 - 20 holdout - 40 tested
    with session_scope(engine) as s, pytest.raises(Conflict):
        campaigns.send_winner(s, staff, cid, variant="A", now=NOW + timedelta(days=1))
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign.status == CampaignStatus.SENDING and campaign.winner_variant == "B"
        per = dict(
            s.execute(
                select(Message.campaign_variant, func.count())
                .where(Message.campaign_id == cid)
                .group_by(Message.campaign_variant)
            ).all()
        )
        assert per == {"A": 20, "B": 160}
        assert (
            s.execute(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.action.in_(["campaign.start", "campaign.send_winner"]))
            ).scalar()
            == 2
        )


def test_auto_winner_by_scheduler_after_the_window_and_finish(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    _bulk_customers(engine, 50)
    cid = _campaign(
        engine,
        actors["owner"],
        ["A안", "B안", "C안"],
        test_share=0.3,
        options={"auto_winner": True, "test_window_hours": 4},
    )
    with session_scope(engine) as s:
        campaigns.start(s, actors["owner"], cid, now=NOW)
    early = campaigns.campaign_scheduler(engine, NOW + timedelta(hours=3))
    assert early["winners_sent"] == 0
    late = campaigns.campaign_scheduler(engine, NOW + timedelta(hours=5))
    assert late["winners_sent"] == 1 and late["queued"] == 35
    assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=6))["winners_sent"] == 0
    with session_scope(engine) as s:
        s.execute(Message.__table__.update().where(Message.campaign_id == cid).values(status="delivered"))
    assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=7))["finished"] == 1
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign.status == CampaignStatus.SENT and campaign.winner_variant == "A"
        assert "차이가 없어" in campaign.options["winner_reason"]


def test_scheduled_campaign_starts_once_and_can_be_cancelled_before(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    _bulk_customers(engine, 30)
    staff = actors["staff"]
    with clock.frozen(NOW):
        first = _campaign(engine, staff, ["안내"])
        second = _campaign(engine, staff, ["안내2"])
        with session_scope(engine) as s:
            campaigns.schedule(s, staff, first, NOW + timedelta(hours=2))
            campaigns.schedule(s, staff, second, NOW + timedelta(hours=2))
            with pytest.raises(ValidationFailed):
                campaigns.schedule(s, staff, second, NOW - timedelta(hours=2))
        with session_scope(engine) as s:
            campaigns.cancel(s, staff, second)
    assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=1))["started"] == 0
    ran = campaigns.campaign_scheduler(engine, NOW + timedelta(hours=2))
    assert (ran["started"], ran["queued"]) == (1, 30)
    assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=3))["started"] == 0
    with session_scope(engine) as s, pytest.raises(Conflict):
        campaigns.cancel(s, staff, first)
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Message)).scalar() == 30
        assert s.get(Campaign, second).status == CampaignStatus.CANCELED


def test_at_23h_held_to_8_unless_night_consent(engine: Engine, actors: dict[str, Actor]) -> None:
    _bulk_customers(engine, 10, night_every=5)
    cid = _campaign(engine, actors["staff"], ["야간 테스트"])
    with session_scope(engine) as s:
        counts = campaigns.start(s, actors["staff"], cid, now=NIGHT)
    assert (counts["queued"], counts["held"]) == (10, 8)
    with Session(engine) as s:
        rows = sorted((m.send_after, m.status) for m in s.execute(select(Message)).scalars())
    assert rows[:2] == [(NIGHT, MessageStatus.QUEUED)] * 2
    assert set(rows[2:]) == {(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), MessageStatus.HELD)}


def test_missing_variable_skips_those_people_only(
    engine: Engine, shop: dict[str, int], actors: dict[str, Actor]
) -> None:
    rules = {"include": [{"type": "order_count", "max": 5}]}
    cid = _campaign(engine, actors["staff"], ["#{이름}님, #{최근구매상품} 어떠셨나요?"], rules=rules)
    with session_scope(engine) as s:
        lines = campaigns.preview(s, cid, now=NOW)
        counts = campaigns.start(s, actors["staff"], cid, now=NOW)
    assert lines and all(line.text is None or line.text.startswith("(광고)") for line in lines)
    # reachable: vip, coffee_due, dormant, new, never, subscriber; "never" has no last product.
    assert (counts["recipients"], counts["queued"], counts["skipped"]) == (6, 5, 1)
    with Session(engine) as s:
        skipped = (
            s.execute(select(CampaignRecipient).where(CampaignRecipient.skipped_reason.is_not(None)))
            .scalars()
            .one()
        )
        assert skipped.customer_id == shop["never"] and "최근구매상품" in skipped.skipped_reason
        texts = [m.text for m in s.execute(select(Message)).scalars()]
    assert any("이커피님, 원두 1kg 어떠셨나요?" in t for t in texts)


def test_compose_refuses_bad_input(sqlite_engine: Engine) -> None:
    for bodies, options, share in [
        ([""], {}, 0.1),
        (["#{쿠폰} 드려요"], {}, 0.1),
        (["#{링크}"], {}, 0.1),
        (["a"], {"link_url": "javascript:alert(1)"}, 0.1),
        (["a", "b", "c", "d", "e", "f"], {}, 0.1),
        (["a", "b"], {}, 0.0),
        (["x" * 1000], {}, 0.1),
    ]:
        with session_scope(sqlite_engine) as s, pytest.raises(ValidationFailed):
            campaigns.create_campaign(
                s, STAFF, name="x", bodies=bodies, rules=EVERYONE, test_share=share, options=options
            )


def test_empty_segment_refuses_to_start_and_leaves_draft(engine: Engine, actors: dict[str, Actor]) -> None:
    cid = _campaign(engine, actors["staff"], ["안내"])
    with pytest.raises(ValidationFailed), session_scope(engine) as s:
        campaigns.start(s, actors["staff"], cid, now=NOW)
    with Session(engine) as s:
        assert s.get(Campaign, cid).status == CampaignStatus.DRAFT


def test_cs_may_not_send(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as s, pytest.raises(PermissionDenied):
        campaigns.create_campaign(s, CS, name="x", bodies=["a"], rules=EVERYONE)


def test_provider_down_messages_wait_and_results_show_failures(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    _bulk_customers(engine, 20)
    cid = _campaign(engine, actors["staff"], ["안내"], holdout_share=0.25)
    with session_scope(engine) as s:
        campaigns.start(s, actors["staff"], cid, now=NOW)
    # The provider is down: nothing moves; the scheduler does not requeue, nor finish the campaign.
    for hour in (1, 2):
        assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=hour))["finished"] == 0
    with session_scope(engine) as s:
        ids = (
            s.execute(select(Message.id).where(Message.campaign_id == cid).order_by(Message.id))
            .scalars()
            .all()
        )
        assert len(ids) == 15
        s.execute(Message.__table__.update().where(Message.id.in_(ids[:12])).values(status="delivered"))
        s.execute(
            Message.__table__.update()
            .where(Message.id.in_(ids[12:]))
            .values(status="failed", reason="카카오톡 미사용자")
        )
        holdout_people = (
            s.execute(select(CampaignRecipient.customer_id).where(CampaignRecipient.group == "holdout"))
            .scalars()
            .all()
        )
        treated = s.execute(select(Message.customer_id).where(Message.id.in_(ids[:6]))).scalars().all()
        for n, customer_id in enumerate([holdout_people[0], *treated]):
            s.add(
                Order(
                    order_number=f"after-{n}",
                    customer_id=customer_id,
                    total_amount=10000,
                    status=OrderStatus.PAID,
                    ordered_at=NOW + timedelta(days=1),
                )
            )
    assert campaigns.campaign_scheduler(engine, NOW + timedelta(hours=3))["finished"] == 1
    with Session(engine) as s:
        result = campaigns.results(s, cid)
        listed = campaigns.list_campaigns(s)
    row = result.total
    assert (row.recipients, row.delivered, row.failed) == (15, 12, 3)
    assert row.failed_by_reason == {"카카오톡 미사용자": 3}
    assert result.holdout.recipients == 5 and result.holdout.converted == 1
    # treated 6/15 = 40 % against holdout 1/5 = 20 %: +100 % lift
    assert result.lift == pytest.approx(1.0)
    assert listed[0].id == cid and listed[0].messages == 15 and listed[0].status == CampaignStatus.SENT


def test_plan_shows_people_and_cost(engine: Engine, actors: dict[str, Actor]) -> None:
    _bulk_customers(engine, 100)
    cid = _campaign(engine, actors["staff"], ["A", "B"], test_share=0.2, holdout_share=0.1)
    with Session(engine) as s:
        plan = campaigns.plan(s, cid, now=NIGHT)
    assert (plan.reachable, plan.holdout, plan.test, plan.rest, plan.messages_now) == (100, 10, 20, 70, 20)
    assert plan.cost == 20 * campaigns.DEFAULT_PRICE_PER_MESSAGE
    assert plan.held_until == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_two_workers_racing_send_once(pg_engine: Engine) -> None:
    _bulk_customers(pg_engine, 300)
    cid = _campaign(pg_engine, STAFF, ["동시 발송"])
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        try:
            with session_scope(pg_engine) as s:
                campaigns.start(s, STAFF, cid, now=NOW)
            outcomes.append("sent")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "sent"]
    with Session(pg_engine) as s:
        assert s.execute(select(func.count()).select_from(Message)).scalar() == 300


class _Provider:
    """The outbox provider that can be switched off: records every key it accepted."""

    name = "outbox"
    max_batch = 10_000

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[str] = []

    def send_batch(self, messages):  # type: ignore[no-untyped-def]
        from core.messaging.providers import Outcome, RetriableProviderError, SendResult

        if not self.up:
            raise RetriableProviderError("provider down (test)")
        self.accepted += [m.key for m in messages]
        return [SendResult(m.key, Outcome.DELIVERED, provider_message_id=f"t:{m.key}") for m in messages]

    def lookup(self, messages, since):  # type: ignore[no-untyped-def]
        return {}

    def close(self) -> None:
        return None


def test_campaign_at_23h_with_the_provider_down_goes_later_once(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    """End to end with the real sender: held to 08:00 without night consent, nothing lost or doubled."""
    from core.messaging import sender

    _bulk_customers(engine, 10, night_every=5)
    cid = _campaign(engine, actors["staff"], ["#{이름}님 특가"])
    with session_scope(engine) as s:
        campaigns.start(s, actors["staff"], cid, now=NIGHT)
    provider = _Provider()
    sender.run(engine, NIGHT, provider=provider)  # down: the 2 with night consent wait for a retry
    assert provider.accepted == []
    provider.up = True
    sender.run(engine, NIGHT + timedelta(hours=2), provider=provider)  # 01:00 KST: only night consent
    assert len(provider.accepted) == 2
    for hours in (9, 10):  # 08:00 and 09:00 KST: the held ones, once
        sender.run(engine, NIGHT + timedelta(hours=hours), provider=provider)
        campaigns.campaign_scheduler(engine, NIGHT + timedelta(hours=hours))
    assert sorted(provider.accepted) == sorted(set(provider.accepted)) and len(provider.accepted) == 10
    with Session(engine) as s:
        assert s.get(Campaign, cid).status == CampaignStatus.SENT
        texts = s.execute(select(Message.text)).scalars().all()
        result = campaigns.results(s, cid)
    assert all(t.startswith("(광고) ") and t.count("무료수신거부") == 1 for t in texts)
    assert (result.total.delivered, result.total.failed) == (10, 0)


def test_a_draft_campaigns_link_answers_nobody(engine: Engine, actors: dict[str, Actor]) -> None:
    """/go answers only for links that were sent (#16): a draft's target stays unknown to a visitor
    walking campaign ids, even with a real customer's public id."""
    _bulk_customers(engine, 3)
    cid = _campaign(engine, actors["staff"], ["a"], options={"link_url": "https://shop.example/secret-sale"})
    with session_scope(engine) as s:
        for public_id in ("pub0", "pub1", "stranger", ""):
            assert campaigns.record_click(s, campaign_id=str(cid), public_id=public_id) is None
        assert s.execute(select(func.count()).select_from(CampaignClick)).scalar_one() == 0
