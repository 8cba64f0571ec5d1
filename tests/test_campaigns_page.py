"""캠페인 page in AppTest as staff: build a segment, compose, confirm and send, results; /go clicks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import clock
from core.db import session_scope
from core.models import AuditLog, CampaignClick, Customer, Message
from tests.ui_helpers import open_app, texts


def _customers(engine: Engine, n: int = 30) -> None:
    with session_scope(engine) as s:
        for i in range(n):
            s.add(
                Customer(
                    name=f"고객{i}",
                    phone=f"010-1000-{i:04d}",
                    mobile=f"0101000{i:04d}",
                    public_id=f"pub{i}",
                    ad_consent_at=clock.now() - timedelta(days=10),
                    night_ad_consent_at=clock.now() - timedelta(days=10),
                )
            )
        s.add(Customer(name="미동의", phone="010-9999-0000", mobile="01099990000", public_id="nope"))


def test_staff_builds_a_segment_composes_and_sends(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _customers(sqlite_engine)
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/campaigns.py")
    assert not at.exception, at.exception
    at.selectbox(key="cmp_rule_type").set_value("channel_friend").run()
    at.button(key="cmp_add_include").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "포함 조건" not in [e.value for e in at.info]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["조건에 맞는 고객"] == "31명" and metrics["광고 발송 가능"] == "30명"
    assert "광고 수신 동의 없음 1명" in shown

    at.text_input(key="cmp_name").input("주말 특가").run()
    at.text_area(key="cmp_body_0").input("#{이름}님, 주말 특가! #{링크}").run()
    at.text_input(key="cmp_link").input("https://shop.example/weekend").run()
    at.button(key="cmp_create").click().run()
    assert not at.exception, at.exception
    assert any("캠페인 '주말 특가'을(를) 만들었습니다" in t.value for t in at.toast)

    shown = texts(at)
    assert "(광고)" in "\n".join(t.value for t in at.text) and "무료수신거부" in "\n".join(
        t.value for t in at.text
    )
    assert "30명" in shown  # the confirmation: how many receive it and the cost
    assert at.button(key="cmp_send_now").disabled
    at.checkbox(key="cmp_confirm").check().run()
    at.button(key="cmp_send_now").click().run()
    assert not at.exception, at.exception
    assert any("30건" in t.value for t in at.toast), [t.value for t in at.toast]
    with Session(sqlite_engine) as s:
        assert s.execute(select(func.count()).select_from(Message)).scalar() == 30
        link = s.execute(select(Message.text)).scalars().first()
    assert "/go?c=" in link
    # The results tab lists the campaign.
    assert any("주말 특가" in str(frame.value) for frame in at.dataframe)


def test_contradictory_rules_show_a_clear_error(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/campaigns.py")
    at.selectbox(key="cmp_rule_type").set_value("channel_friend").run()
    at.button(key="cmp_add_include").click().run()
    at.button(key="cmp_add_exclude").click().run()
    assert not at.exception, at.exception
    assert any("조건이 서로 맞지 않습니다" in e.value for e in at.error)


def test_go_records_a_click_and_redirects_to_the_target(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from core import campaigns
    from core.accounts.actor import Actor
    from core.models import Role

    _customers(sqlite_engine, 3)
    staff = Actor(None, "s", Role.STAFF)
    with session_scope(sqlite_engine) as s:
        cid = campaigns.create_campaign(
            s,
            staff,
            name="c",
            bodies=["#{링크}"],
            rules={"include": [{"type": "channel_friend"}]},
            options={"link_url": "https://shop.example/x"},
        ).id
        campaigns.start(s, staff, cid)
    from tests.web.helpers import customer_client

    with customer_client(sqlite_engine) as client:  # /go is a plain route of server.py (web/customer/go.py)
        answer = client.get(f"/go?c={cid}&u=pub1")
    assert answer.status_code == 303 and answer.headers["location"] == "https://shop.example/x"
    with Session(sqlite_engine) as s:
        assert s.execute(select(func.count()).select_from(CampaignClick)).scalar() == 1


def test_owner_sets_the_price_per_message_and_the_cost_follows(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _customers(sqlite_engine, 4)
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/campaigns.py")
    assert "현재 건당 15원" in texts(at)
    at.number_input(key="cmp_price").set_value(23).run()
    at.button(key="cmp_price_save").click().run()
    assert not at.exception, at.exception
    assert any("23원" in t.value for t in at.toast), [t.value for t in at.toast]
    with Session(sqlite_engine) as s:
        assert s.execute(select(AuditLog.action).where(AuditLog.action == "setting.change")).scalars().all()
    staff = open_app(sqlite_engine, sqlite_actors["staff"], "pages/campaigns.py")
    shown = texts(staff)
    assert "현재 건당 23원" in shown and "사장님만" in shown
    assert not [w for w in staff.number_input if w.key == "cmp_price"]
