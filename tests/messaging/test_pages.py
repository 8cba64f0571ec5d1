"""메시지 page and the 설정 > 메시지 section through Streamlit's AppTest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import clock, settings_store
from core.messaging import sender
from core.messaging.providers import OutboxProvider
from core.models import AuditLog, Customer, Message, Template
from core.reviews import jobs as review_jobs
from tests.messaging.helpers import customer, queue, setup_templates
from tests.ui_helpers import open_app, point_app_at, texts


@pytest.fixture
def store(sqlite_engine: Engine) -> Engine:
    setup_templates(sqlite_engine)
    good = customer(sqlite_engine, "김철수", "010-2222-3333")
    missing = customer(sqlite_engine, "이영희", None)
    queue(sqlite_engine, good, "hello:ok")
    queue(sqlite_engine, missing, "hello:nophone", variables={"고객명": "이영희"})
    sender.run(sqlite_engine, clock.now(), provider=OutboxProvider())
    return sqlite_engine


def test_messages_page_lists_statuses_reasons_and_counts(store: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(store, sqlite_actors["cs"], "pages/messages.py")
    assert not at.exception
    table = at.dataframe[1].value
    assert set(table["상태"]) == {"전달", "실패"}
    assert "전화번호가 없습니다" in " ".join(table["사유"])
    daily = at.dataframe[0].value
    assert daily["합계"].sum() == 2
    at.text_input(key="msg_customer").input("이영희").run()
    assert list(at.dataframe[1].value["고객"]) == ["이영희"]
    at.text_input(key="msg_customer").input("2222").run()
    assert list(at.dataframe[1].value["고객"]) == ["김철수"]


def test_resend_from_the_page_queues_a_new_key_and_audits(store: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    with Session(store) as s:
        c = s.exec(select(Customer).where(Customer.name == "이영희")).one()
        c.phone = "010-4444-5555"
        s.add(c)
        s.commit()
    at = open_app(store, sqlite_actors["staff"], "pages/messages.py")
    at.button(key="msg_resend").click().run()
    assert not at.exception
    assert "대기열에 넣었습니다" in texts(at)
    with Session(store) as s:
        again = s.exec(select(Message).where(Message.idempotency_key == "hello:nophone:resend:1")).one()
        assert again.status == "queued"
        assert s.exec(select(AuditLog).where(AuditLog.action == "message.resend")).first() is not None
    # The list re-read: the new message is in it, marked, with its template named in Korean.
    listed = next(d for d in at.dataframe if "템플릿" in d.value.columns)
    assert again.id in list(listed.value["번호"])
    assert "background-color" in str(listed.proto.arrow_data.styler.styles)
    assert not any("_" in str(v) for v in listed.value["템플릿"])


def _settings_app(engine: Engine, actor) -> AppTest:  # type: ignore[no-untyped-def]
    point_app_at(engine)
    at = AppTest.from_file(str(Path(__file__).parent / "settings_script.py"), default_timeout=30)
    at.session_state["actor"] = actor
    return at.run()


def test_template_edit_needs_reapproval_and_preview_shows_a_real_customer(
    store: Engine, sqlite_actors
) -> None:  # type: ignore[no-untyped-def]
    at = _settings_app(store, sqlite_actors["owner"])
    assert not at.exception
    at.selectbox(key="setmsg_tpl").select("hello").run()
    with Session(store) as s:
        kim = s.exec(select(Customer).where(Customer.name == "김철수")).one()
    at.selectbox(key="setmsg_preview_customer").select(kim.id).run()
    assert "김철수님 안녕하세요" in [t.value for t in at.text]
    at.text_area(key="setmsg_body_hello").input("#{고객명}님 반가워요 #{쿠폰}").run()
    assert any("#{쿠폰}" in e.value for e in at.error)  # the preview says why it would be refused
    at.text_area(key="setmsg_body_hello").input("#{고객명}님 반가워요").run()
    at.button(key="setmsg_save").click().run()
    assert not at.exception
    with Session(store) as s:
        t = s.exec(select(Template).where(Template.key == "hello")).one()
        assert t.body == "#{고객명}님 반가워요" and t.approved_body == "#{고객명}님 안녕하세요"
    assert any("승인된 내용과 다릅니다" in w.value for w in at.warning)
    at.checkbox(key="setmsg_approved_hello").check().run()
    at.button(key="setmsg_save").click().run()
    with Session(store) as s:
        t = s.exec(select(Template).where(Template.key == "hello")).one()
        assert t.approved_body == t.body


def test_automation_toggles_and_timing_are_saved(store: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _settings_app(store, sqlite_actors["owner"])
    at.toggle(key="setmsg_order_on").set_value(False)
    at.number_input(key="setmsg_review_days").set_value(5)
    at.number_input(key="setmsg_ad_limit").set_value(2)
    at.button[-1].click().run()
    assert not at.exception and "저장했습니다" in texts(at)
    with Session(store) as s:
        automations = settings_store.get(s, "automations")
        assert automations["order_confirmation"]["enabled"] is False
        assert automations["review_request"]["days_after"] == 5
        assert settings_store.get(s, "messaging")["daily_ad_limit"] == 2


def test_staff_cannot_edit_templates(store: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _settings_app(store, sqlite_actors["staff"])
    at.button(key="setmsg_save").click().run()
    assert any("권한" in e.value for e in at.error)
    assert clock.now() - timedelta(seconds=1) < clock.now()


def test_messages_page_shows_delivery_reports_with_the_providers_reason(
    sqlite_engine: Engine, sqlite_actors
) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from core.messaging import reports
    from core.messaging.providers.solapi import SolapiClient
    from tests.messaging.fake_solapi import FakeSolapi

    setup_templates(sqlite_engine)
    cid = customer(sqlite_engine, "박민수", "010-7777-8888")
    for key in ("r:ok", "r:lms", "r:blocked"):
        queue(sqlite_engine, cid, key)
    now = clock.now()
    with FakeSolapi() as fake:
        client = SolapiClient(
            base_url=fake.url,
            api_key="K",
            api_secret="S",
            sender="0212345678",
            pf_id="PF",
            rate_per_second=0,
            timeout=httpx.Timeout(2.0, connect=1.0),
        )
        sender.run(sqlite_engine, now, provider=client)
        fake.reports = {
            "r:lms": {"statusCode": "4000", "type": "LMS", "replacement": True},
            "r:blocked": {"statusCode": "3020", "statusMessage": "blocked"},
        }
        reports.fetch(sqlite_engine, now + timedelta(minutes=2), client)
        client.close()
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/messages.py")
    assert not at.exception
    table = at.dataframe[1].value
    rows = {r["사유"]: r["상태"] for _, r in table.iterrows()}
    assert rows[""] == "전달"
    assert rows["알림톡 대신 문자(LMS) 대체 발송으로 전달"] == "전달"
    blocked = next(reason for reason in rows if "3020" in reason)
    assert rows[blocked] == "실패" and "고객이 채널을 차단함" in blocked
    assert all(v != "-" for v in table["결과 확인"])


def test_history_is_let_in_only_after_the_owner_sees_the_count_and_confirms(
    store: Engine, sqlite_actors
) -> None:  # type: ignore[no-untyped-def]
    """설정 shows how many customers the past orders would reach; the button waits for the box."""
    from core.messaging import automations
    from core.models import Order, OrderItem

    now = clock.now()
    with Session(store) as s:
        automations.live_state(s, now)  # the worker went live now: what follows is history
        kim = s.exec(select(Customer).where(Customer.name == "김철수")).one()
        for i in range(3):
            at = now - timedelta(days=4 + i)
            order = Order(
                order_number=f"CD-H{i}",
                customer_id=kim.id,
                total_amount=1_000,
                status="paid",
                paid_at=at,
                ordered_at=at,
            )
            s.add(order)
            s.flush()  # every paid order has its item: a review is asked per item (issue 20)
            s.add(OrderItem(order_id=order.id, product_name="샴푸", quantity=1, unit_price=1_000, amount=1_000))
        s.commit()
    at = _settings_app(store, sqlite_actors["owner"])
    assert "지난 주문 3건 · 고객 1명" in texts(at)
    assert at.button(key="setmsg_history").disabled
    at.checkbox(key="setmsg_history_ok").check().run()
    at.button(key="setmsg_history").click().run()
    assert not at.exception and "고객 1명에게" in texts(at)
    assert review_jobs.review_requests(store, now)["requested"] == 1
    with Session(store) as s:
        assert s.exec(select(AuditLog).where(AuditLog.entity_id == automations.LIVE_KEY)).first()
