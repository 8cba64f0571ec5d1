"""The merge: one person typed five ways becomes one customer, everything of theirs follows, consent
goes to the strictest, the merge is audited and listed; the migration does it before the unique index.

Duplicates are made the way they reached old stores: rows inserted without `mobile` (a store before
0002), every related row through the ORM. SQLite and PostgreSQL both (the `engine` fixture).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, func, select

from core import clock
from core.accounts.actor import Actor
from core.customers import merge
from core.customers.merge import REPOINT_TABLES, SPECIAL_TABLES, merge_all, merge_history, strictest_consent
from core.db import alembic_config, make_engine, upgrade
from core.errors import PermissionDenied
from core.models import (
    AdSendSlot,
    AuditLog,
    Campaign,
    CampaignClick,
    CampaignRecipient,
    Coupon,
    Customer,
    CustomerSummary,
    Inquiry,
    Message,
    Order,
    OrderItem,
    Payment,
    PaymentLink,
    PointEntry,
    Referral,
    ReferralCode,
    Review,
    Role,
)
from core.models.subscriptions import Subscription, SubscriptionPlan

NOW = clock.parse_instant("2026-11-20T10:00+09:00")
T0 = NOW - timedelta(days=300)

# One person, five shapes of one number (the reproduction), then someone else and a landline.
PERSON_FORMS = ["010-1234-5678", "01012345678", "０１０-１２３４-５６７８", "+82 10 1234 5678", "٠١٠١٢٣٤٥٦٧٨"]


def _raw_customer(conn: sa.Connection, name: str, phone: str | None, **consent: object) -> int:
    """A customer row as a store before 0002 had it: phone as typed, no mobile."""
    values = {
        "name": name,
        "phone": phone,
        "public_id": f"p{abs(hash((name, phone, str(consent)))) % 10**18:018d}",
        "is_channel_friend": True,
        "created_at": T0,
        "ad_consent_at": None,
        "night_ad_consent_at": None,
        "ad_opt_out_at": None,
        **consent,
    }
    return conn.execute(Customer.__table__.insert().values(**values)).inserted_primary_key[0]


def _history(session: Session, cid: int, n: int, campaign_id: int, plan_id: int, day: date) -> None:
    """An order, payment, item, review, inquiry, subscription, message, ad slot, link, click and
    campaign recipient for customer `cid` (the n-th row of the person)."""
    order = Order(
        order_number=f"M-{cid}", customer_id=cid, total_amount=10_000 * n, status="paid",
        ordered_at=T0 + timedelta(days=n), paid_at=T0 + timedelta(days=n),
    )
    session.add(order)
    session.flush()
    session.add(OrderItem(order_id=order.id, product_name=f"상품{n}", quantity=1, unit_price=10_000 * n,
                          amount=10_000 * n))
    session.add(Payment(customer_id=cid, order_id=order.id, gateway="sandbox", amount=10_000 * n,
                        idempotency_key=f"pay:{cid}", status="approved"))
    session.add(Review(order_id=order.id, customer_id=cid, rating=5))
    session.add(Inquiry(customer_id=cid, type="payment", subject=f"문의 {n}"))
    session.add(Subscription(customer_id=cid, plan_id=plan_id, amount=9_900, anchor_day=1))
    message = Message(customer_id=cid, template_key="promo", variables={}, idempotency_key=f"ad:{cid}",
                      kind="advertising", status="sent")
    session.add(message)
    session.flush()
    session.add(AdSendSlot(customer_id=cid, kst_day=day, slot=1, message_id=message.id))
    session.add(PaymentLink(code=f"L{cid}", item_name="x", amount=1000, customer_id=cid))
    session.add(CampaignClick(campaign_id=campaign_id, customer_id=cid))
    session.add(CampaignRecipient(campaign_id=campaign_id, customer_id=cid, group="rest"))
    session.flush()


@pytest.fixture
def store(engine: Engine) -> dict[str, object]:
    """Person A in five rows (consent on the oldest, an opt-out on the second), person B once,
    a landline customer twice (not a mobile: never merged)."""
    day = clock.to_kst(NOW).date()
    with Session(engine) as session:
        campaign = Campaign(name="봄 세일", segment_rules={}, variants=[], options={})
        plan = SubscriptionPlan(name="정기", amount=9_900)
        session.add(campaign)
        session.add(plan)
        session.flush()
        conn = session.connection()
        person = [
            _raw_customer(conn, "김민지", PERSON_FORMS[0], ad_consent_at=T0, night_ad_consent_at=T0),
            _raw_customer(conn, "김민지", PERSON_FORMS[1], ad_consent_at=T0, ad_opt_out_at=T0 + timedelta(days=3)),
            _raw_customer(conn, "민지", PERSON_FORMS[2], ad_consent_at=T0 + timedelta(days=10)),
            _raw_customer(conn, "Minji", PERSON_FORMS[3]),
            _raw_customer(conn, "김 민지", PERSON_FORMS[4]),
        ]
        other = _raw_customer(conn, "박서준", "010 9999 8888", ad_consent_at=T0)
        landlines = [_raw_customer(conn, "가게", "02-123-4567"), _raw_customer(conn, "가게2", "02-123-4567")]
        for n, cid in enumerate([*person, other], start=1):
            _history(session, cid, n, campaign.id, plan.id, day)
        session.commit()
        ids = {"person": person, "other": other, "landlines": landlines, "campaign": campaign.id, "day": day}
    return ids


def _count(session: Session, model: type[SQLModel], cid: int) -> int:
    return session.exec(select(func.count()).select_from(model).where(model.customer_id == cid)).one()


def test_one_person_in_five_rows_becomes_one_customer_with_everything(engine: Engine, store) -> None:
    person, other = store["person"], store["other"]
    keep = person[0]
    with Session(engine) as session:
        report = merge.merge_duplicates(session.connection(), now=NOW)
        session.commit()
    assert (report.numbers_merged, report.rows_merged, report.opted_out) == (1, 4, 1)
    with Session(engine) as session:
        rows = session.exec(select(Customer).order_by(Customer.id)).all()
        assert [c.id for c in rows] == [keep, other, *store["landlines"]]
        kept = session.get(Customer, keep)
        assert (kept.name, kept.phone, kept.mobile) == ("김민지", "010-1234-5678", "01012345678")
        assert session.get(Customer, other).mobile == "01099998888"
        for cid in store["landlines"]:
            landline = session.get(Customer, cid)
            assert (landline.phone, landline.mobile) == ("02-123-4567", None)
        # Everything of the five rows now belongs to the one customer.
        for model in (Order, Payment, Review, Inquiry, Subscription, Message, PaymentLink, CampaignClick):
            assert _count(session, model, keep) == 5, model.__name__
        # One campaign recipient per person and campaign; slots renumbered 1..5 on the one day.
        assert _count(session, CampaignRecipient, keep) == 1
        slots = session.exec(select(AdSendSlot.slot).where(AdSendSlot.customer_id == keep)).all()
        assert sorted(slots) == [1, 2, 3, 4, 5]
        summary = session.get(CustomerSummary, keep)
        assert (summary.paid_orders, summary.paid_total) == (5, 150_000)
        # The opt-out on the second row wins: no consent, opted out as of that opt-out.
        assert kept.ad_consent_at is None and kept.night_ad_consent_at is None
        assert kept.ad_opt_out_at == T0 + timedelta(days=3)
        # Audited with what every row was before.
        audit = session.exec(select(AuditLog).where(AuditLog.action == "customer.merge")).all()
        assert len(audit) == 1 and audit[0].entity_id == str(keep)
        assert sorted(m["id"] for m in audit[0].detail["merged"]) == sorted(person[1:])
        assert {m["phone"] for m in audit[0].detail["merged"]} == set(PERSON_FORMS[1:])


def test_merging_again_changes_nothing(engine: Engine, store) -> None:
    with Session(engine) as session:
        merge.merge_duplicates(session.connection(), now=NOW)
        session.commit()
    with Session(engine) as session:
        again = merge.merge_duplicates(session.connection(), now=NOW)
        session.commit()
    assert (again.numbers_merged, again.rows_merged, again.identified) == (0, 0, 0)


def test_a_number_that_becomes_mobile_later_joins_the_row_that_holds_it(engine: Engine, store) -> None:
    """The runtime merge (CLI, 설정): the kept row is the one whose `mobile` already holds the number."""
    with Session(engine) as session:
        merge.merge_duplicates(session.connection(), now=NOW)
        session.commit()
        late = _raw_customer(session.connection(), "늦게 온 민지", "+82-10-1234-5678")  # as an old import left it
        session.commit()
    owner = Actor(id=None, name="사장", role=Role.OWNER)
    with Session(engine) as session:
        report = merge_all(session, owner)
        session.commit()
        assert report.rows_merged == 1
        assert session.get(Customer, late) is None
        assert session.get(Customer, store["person"][0]).mobile == "01012345678"
        history = merge_history(session, owner)
        assert history[0].kept_id == store["person"][0] and history[0].actor_name == "사장"
        assert len(history) == 2


@pytest.mark.parametrize("role", [Role.CS, Role.STAFF])
def test_only_the_owner_merges_or_reads_the_merges(sqlite_engine: Engine, role: Role) -> None:
    actor = Actor(id=None, name="직원", role=role)
    with Session(sqlite_engine) as session, pytest.raises(PermissionDenied):
        merge_all(session, actor)
    with Session(sqlite_engine) as session, pytest.raises(PermissionDenied):
        merge_history(session, actor)


def test_every_customer_id_column_is_handled_by_the_merge() -> None:
    """A new table pointing at customers must be added to the merge (or the delete fails on the FK)."""
    pointing = {
        table.name
        for table in SQLModel.metadata.tables.values()
        if "customer_id" in table.c and table.name != "customer"
    }
    assert pointing == set(REPOINT_TABLES) | set(SPECIAL_TABLES)


A, B, C = T0, T0 + timedelta(days=1), T0 + timedelta(days=2)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # kept row first. (consent, night, opt_out) per row -> merged (consent, night, opt_out)
        ([(A, A, None), (None, None, None)], (A, A, None)),  # kept consent stands
        ([(None, None, None), (A, A, None)], (None, None, None)),  # a merged row's consent is not carried
        ([(A, A, None), (None, None, B)], (None, None, B)),  # an opt-out anywhere wins
        ([(A, A, B), (None, None, None)], (None, None, B)),  # kept row opted out
        ([(C, None, B), (None, None, None)], (C, None, B)),  # consented again after its opt-out: stands
        ([(C, None, None), (A, None, B)], (None, None, B)),  # merged row still opted out: wins
        ([(A, None, None), (None, None, B), (None, None, C)], (None, None, C)),  # the latest opt-out kept
        ([(None, A, None), (None, None, None)], (None, None, None)),  # night consent without ad consent: none
    ],
)
def test_consent_goes_to_the_strictest(rows, expected) -> None:
    members = [{"ad_consent_at": c, "night_ad_consent_at": n, "ad_opt_out_at": o} for c, n, o in rows]
    got = strictest_consent(members)
    assert (got["ad_consent_at"], got["night_ad_consent_at"], got["ad_opt_out_at"]) == expected


def _store_at(url: str, revision: str) -> Engine:
    engine = make_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def test_migration_0002_merges_before_the_unique_index(engine: Engine) -> None:
    """A store at 0001 with one person typed three ways and their orders: after upgrade, one customer,
    three orders, the unique index in place."""
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    if engine.dialect.name == "sqlite":
        engine.dispose()
        import os

        os.remove(engine.url.database)
    old = _store_at(url, "0001")
    with old.begin() as connection:
        ids = []
        for i, phone in enumerate(["010-5555-0001", "+82 10-5555-0001", "０１０５５５５０００１"]):
            ids.append(
                connection.execute(
                    text(
                        "INSERT INTO customer (name, phone, is_channel_friend, public_id, created_at) "
                        "VALUES (:n, :p, :f, :pid, :at) RETURNING id"
                    ),
                    {"n": f"고객{i}", "p": phone, "f": True, "pid": f"pid{i}", "at": "2026-01-01 00:00:00"},
                ).scalar()
            )
            connection.execute(
                text(
                    "INSERT INTO orders (order_number, customer_id, total_amount, tax_free_amount, refunded_amount, "
                    "status, source, ordered_at) VALUES (:o, :c, 1000, 0, 0, 'paid', 'import', :at)"
                ),
                {"o": f"O-{i}", "c": ids[-1], "at": "2026-01-01 00:00:00"},
            )
    old.dispose()
    new = make_engine(url)
    upgrade(new)
    with Session(new) as session:
        customers = session.exec(select(Customer)).all()
        assert [(c.id, c.phone, c.mobile) for c in customers] == [(ids[0], "010-5555-0001", "01055550001")]
        assert session.exec(select(func.count()).select_from(Order).where(Order.customer_id == ids[0])).one() == 3
        assert session.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "customer.merge")).one() == 1
    index = [i for i in sa.inspect(new).get_indexes("customer") if i["name"] == "ix_customer_mobile"]
    assert index and index[0]["unique"]
    new.dispose()


def test_the_cli_merges_and_says_what_it_did(sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    with Session(sqlite_engine) as session:
        for form in PERSON_FORMS[:3]:
            _raw_customer(session.connection(), "김민지", form)
        session.commit()
    url = sqlite_engine.url.render_as_string(hide_password=False)
    assert main(["--database-url", url, "customers", "merge"]) == 0
    out = capsys.readouterr().out
    assert "합친 번호 1개" in out and "합쳐진 고객 2명" in out
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(Customer)).one() == 1


@pytest.mark.parametrize("kept_has_code", [True, False])
def test_rewards_follow_the_person_and_one_referral_code_survives(engine: Engine, kept_has_code: bool) -> None:
    """Coupons, points and referral visits of a merged row are the person's; a person has one referral
    code: the kept row's own, else a merged row's (a link already shared keeps working)."""
    with engine.begin() as conn:
        keep = _raw_customer(conn, "가", "010-2222-3333")
        dup = _raw_customer(conn, "나", "+82 10 2222 3333")
        friend = _raw_customer(conn, "다", "010-4444-5555")
        conn.execute(Coupon.__table__.insert().values(
            code="ABCD-EFGH-JKMN", customer_id=dup, amount=3000, reason="review", source_key="review:1",
            issued_at=T0, expires_at=NOW + timedelta(days=30)))
        conn.execute(PointEntry.__table__.insert().values(
            customer_id=dup, amount=500, reason="review", source_key="review:2", created_at=T0))
        if kept_has_code:
            conn.execute(ReferralCode.__table__.insert().values(customer_id=keep, code="KEEP2345", created_at=T0))
        conn.execute(ReferralCode.__table__.insert().values(customer_id=dup, code="DUPE2345", created_at=T0))
        link = conn.execute(PaymentLink.__table__.insert().values(
            code="L1", item_name="원두", amount=10000, tax_free_amount=0, status="paid", created_at=T0)
        ).inserted_primary_key[0]
        conn.execute(Referral.__table__.insert().values(
            referrer_id=dup, payment_link_id=link, visited_at=T0, status="credited", referred_customer_id=friend))
    with Session(engine) as session:
        merge.merge_duplicates(session.connection(), now=NOW)
        session.commit()
    with Session(engine) as session:
        assert session.get(Customer, dup) is None
        assert _count(session, Coupon, keep) == 1 and _count(session, PointEntry, keep) == 1
        codes = session.exec(select(ReferralCode.customer_id, ReferralCode.code)).all()
        assert codes == [(keep, "KEEP2345" if kept_has_code else "DUPE2345")]
        referral = session.exec(select(Referral)).one()
        assert (referral.referrer_id, referral.referred_customer_id) == (keep, friend)
