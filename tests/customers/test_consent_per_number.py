"""Consent and opt-out belong to the phone number: an opted-out number never gets an ad, through any
row or any path (정보통신망법 제50조: a refusal stops advertising at once, and the same-kind purchase
exception never overrides it).

The person opts out, then comes back by every path in with the number typed another way: a new
order from the payment-link page (+82 …), a CSV import (full-width digits), a staff lookup, a direct
ORM write. Each finds the one row that carries the opt-out; then a campaign (even one about the
goods they just bought), the repurchase automation and the sender all leave them alone.
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import campaigns, clock
from core.accounts.actor import Actor
from core.customers import service
from core.db import session_scope
from core.errors import ValidationFailed
from core.messaging import sender
from core.messaging.automations import repurchase_reminders
from core.models import Customer, Message, MessageKind, Order, Product, Role
from core.payments.link_approval import pay_link
from core.payments.link_checkout import select_method, start_payment
from core.payments.links import create_payment_link
from core.payments.order_import import run_import
from tests.messaging.helpers import setup_templates
from tests.payments.helpers import sandbox_router

NOW = clock.parse_instant("2026-11-20T12:00+09:00")
STAFF = Actor(id=None, name="스태프", role=Role.STAFF)
OWNER = Actor(id=None, name="사장", role=Role.OWNER)
EVERYONE = {"include": [{"type": "channel_friend", "value": True}]}


def _customers(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(Customer)).scalar_one()


def _pay_by_link(engine: Engine, router, product_id: int, name: str, phone: str) -> Order:  # type: ignore[no-untyped-def]
    with Session(engine, expire_on_commit=False) as s:
        link = create_payment_link(s, STAFF, product_id=product_id, router=router)
        start = start_payment(s, link.code, customer_name=name, customer_phone=phone, router=router)
        token = select_method(s, link.code, "CARD", router=router, tid=start.tid)
        return pay_link(s, link.code, pg_token=token, attempt=start.attempt, router=router)


def test_an_opted_out_number_never_gets_an_ad_through_any_row_or_path(engine: Engine) -> None:
    clock.set_now(NOW)
    _, router = sandbox_router(engine)
    setup_templates(engine)
    with session_scope(engine) as s:
        coffee = Product(name="원두 1kg", category="커피", price=30_000, replenishment_days=30)
        s.add(coffee)
        s.flush()
        coffee_id = coffee.id
        person = service.find_or_create_by_phone(s, "김민지", "010-1234-5678")
        person.ad_consent_at = NOW - timedelta(days=400)
        person.night_ad_consent_at = NOW - timedelta(days=400)
        person.ad_opt_out_at = NOW - timedelta(days=40)  # "수신거부" 40 days ago
        s.add(person)
        s.flush()
        person_id = person.id

    # 1. A new order from /pay, the number typed the international way: the same customer.
    clock.set_now(NOW - timedelta(days=31))
    order = _pay_by_link(engine, router, coffee_id, "민지", "+82 10 1234 5678")
    assert order.customer_id == person_id and _customers(engine) == 1
    clock.set_now(NOW)

    # 2. A CSV import with the number in full-width digits (a Korean IME): the same customer.
    csv = (
        "주문번호,주문일시,고객명,연락처,상품명,수량,단가\n"
        "IMP-1,2026-10-20 10:00,김민지,０１０－１２３４－５６７８,원두 1kg,1,30000\n"
        "IMP-2,2026-10-21 10:00,Minji,010.1234.5678,원두 1kg,1,30000\n"
    ).encode()
    result = run_import(engine, OWNER, csv, source_name="orders.csv")
    assert (result.created, result.customers_created) == (2, 0)
    assert _customers(engine) == 1

    # 3. A staff lookup in any shape finds the row; a direct ORM write of a second row is refused.
    with Session(engine) as s:
        for typed in ("01012345678", "٠١٠١٢٣٤٥٦٧٨", "82-10-1234-5678"):
            assert service.find_by_phone(s, typed).id == person_id
        s.add(Customer(name="중복", phone="+82-010-1234-5678"))
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
    with Session(engine) as s:
        person = s.get(Customer, person_id)
        assert person.ad_opt_out_at is not None  # no path cleared it
        assert s.execute(select(func.count()).select_from(Order).where(Order.customer_id == person_id)).scalar_one() == 3

    # 4. Campaign reach about the very goods just bought (the purchase exception would apply):
    #    the opt-out wins, nobody reachable, and a started campaign queues nothing for them.
    with Session(engine) as s:
        counted = campaigns.count_segment(s, EVERYONE, now=NOW, advertised_category="커피")
    assert counted.reachable == 0 and counted.excluded["opted_out"] == 1
    with session_scope(engine) as s:
        campaign = campaigns.create_campaign(
            s, STAFF, name="원두 특가", bodies=["#{이름}님 원두 특가"], rules=EVERYONE,
            options={"advertised_category": "커피"},
        )
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="광고를 받을 수 있는 고객이 없습니다"):
        campaigns.start(s, STAFF, campaign.id, now=NOW)
    with Session(engine) as s:
        assert s.execute(select(Message).where(Message.campaign_id == campaign.id)).scalars().all() == []

    # 5. The repurchase automation (advertising) at the product's cycle: whatever it queues, the
    #    sender's gate skips it as opted out. Nothing advertising is ever sent to the number.
    later = NOW + timedelta(days=30)
    clock.set_now(later)
    repurchase_reminders(engine, later)
    with session_scope(engine) as s:
        from core.messaging.outbox import enqueue

        enqueue(s, customer_id=person_id, template_key="promo", idempotency_key="direct-ad",
                kind=MessageKind.ADVERTISING, variables={"고객명": "민지"}, send_after=later)
    sender.run(engine, later)
    with Session(engine) as s:
        ads = s.execute(
            select(Message).where(Message.customer_id == person_id, Message.kind == MessageKind.ADVERTISING)
        ).scalars().all()
        assert ads, "the automation or the direct ad queued something to gate"
        assert all(m.status != "sent" and m.sent_at is None for m in ads), [(m.status, m.reason) for m in ads]
        assert all("수신거부" in (m.reason or "") for m in ads)


def test_a_row_merged_into_an_opted_out_number_cannot_requalify(engine: Engine) -> None:
    """The issue's legal defect: a duplicate row with consent (or a recent purchase) used to carry
    ads to a person who had opted out on another row. After the merge there is one row, opted out."""
    from core.customers import merge

    with Session(engine) as s:
        conn = s.connection()
        opted = conn.execute(
            Customer.__table__.insert().values(
                name="김민지", phone="010-7777-0001", public_id="a" * 20, is_channel_friend=True,
                created_at=NOW, ad_consent_at=NOW - timedelta(days=300), ad_opt_out_at=NOW - timedelta(days=5),
            )
        ).inserted_primary_key[0]
        conn.execute(
            Customer.__table__.insert().values(
                name="민지", phone="＋８２ １０ ７７７７ ０００１", public_id="b" * 20, is_channel_friend=True,
                created_at=NOW, ad_consent_at=NOW - timedelta(days=1),
            )
        )
        s.commit()
    with Session(engine) as s:
        before = campaigns.count_segment(s, EVERYONE, now=NOW)
    # The defect needed a duplicate row that reach counted; reach now goes by the canonical mobile, so
    # a row written without one (as this raw insert) is "휴대전화 번호 아님" and never a recipient.
    assert (before.reachable, before.excluded["not_mobile"], before.excluded["opted_out"]) == (0, 1, 1)
    with Session(engine) as s:
        merge.merge_duplicates(s.connection(), now=NOW)
        s.commit()
    with Session(engine) as s:
        after = campaigns.count_segment(s, EVERYONE, now=NOW)
        assert (after.total, after.reachable, after.excluded["opted_out"]) == (1, 0, 1)
        assert s.get(Customer, opted).ad_consent_at is None
