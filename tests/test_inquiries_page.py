"""The 문의 page as a cs user (AppTest): queue order and badges, actions, new-inquiry form, report."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock
from core.accounts.actor import Actor
from core.inquiries import service as inquiries
from core.models import Inquiry, InquiryEvent, Message
from tests.inquiry_helpers import k, make_customer, make_payment
from tests.ui_helpers import open_app, texts

NOW = k("2026-11-23 10:10")
HTML = "<script>alert('x')</script><b>굵게</b> 😡"


@pytest.fixture
def seeded(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> dict[str, int]:
    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session:
        with clock.frozen(k("2026-11-23 09:00")):
            customer = make_customer(session, "박민지", "01055556666")
            late = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="결제 오류가 났어요")
        with clock.frozen(k("2026-11-23 09:20")):
            soon = inquiries.create_inquiry(session, cs, customer_id=customer.id, body=HTML + " 이중 결제")
            payment = make_payment(session, customer, None, 39000, k("2026-11-23 09:00"), "page-p1")
        session.commit()
        return {"late": late.id, "soon": soon.id, "customer": customer.id, "payment": payment.id}


def _page(engine: Engine, actor: Actor):  # type: ignore[no-untyped-def]
    clock.set_now(NOW)
    at = open_app(engine, actor, "pages/inquiries.py")
    assert not at.exception, at.exception
    return at


def test_queue_sorted_with_states_and_customer_text_as_plain_text(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    table = at.dataframe[0].value
    assert list(table["번호"]) == [seeded["late"], seeded["soon"]]
    assert list(table["상태"]) == ["초과", "임박"]
    assert table["남은 시간"].iloc[0] == "40분 0초 초과"
    # The detail of the first row shows the timeline; customer HTML is plain text (st.text), never markdown.
    assert any(HTML in t.value for t in at.text) is False  # first row selected: no HTML there
    at.selectbox(key="inq_pick").select(seeded["soon"]).run()
    assert any(t.value.startswith(HTML) for t in at.text)
    assert HTML not in texts(at)  # never through markdown/caption


def test_claim_reply_wait_and_resolve(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    at = _page(sqlite_engine, cs)
    at.button(key="inq_claim").click().run()
    assert "담당자로 지정되었습니다" in [t.value for t in at.toast]
    at.text_area(key="inq_reply_text").input("확인해 보겠습니다")
    next(b for b in at.button if b.label == "답변 보내기").click().run()
    assert not at.exception, at.exception
    at.button(key="inq_wait").click().run()
    at.button(key="inq_resolve").click().run()
    with Session(sqlite_engine) as session:
        inquiry = session.get(Inquiry, seeded["late"])
        assert (inquiry.assignee_id, inquiry.status) == (cs.id, "resolved")
        kinds = session.exec(
            select(InquiryEvent.kind).where(InquiryEvent.inquiry_id == inquiry.id).order_by(InquiryEvent.id)
        ).all()
        assert kinds == ["created", "assign", "reply", "wait_customer", "resolve"]
        assert session.exec(select(Message.text)).all() == ["확인해 보겠습니다"]


def test_empty_reply_shows_clear_error(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    next(b for b in at.button if b.label == "답변 보내기").click().run()
    assert [e.value for e in at.error] == ["답변을(를) 입력해 주세요"]


def test_new_inquiry_with_suggested_type(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    at.text_input(key="inq_new_search").input("5555").run()
    at.text_area(key="inq_new_body").input("현금영수증 발급해 주세요").run()
    assert "추천 유형: 영수증 요청" in texts(at)
    at.button(key="inq_new_submit").click().run()
    assert not at.exception, at.exception
    with Session(sqlite_engine) as session:
        newest = session.exec(select(Inquiry).order_by(Inquiry.id.desc())).first()
        assert (newest.type, newest.customer_id) == ("receipt_request", seeded["customer"])


def test_report_tab_and_csv(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    assert "목표 내 처리 비율" not in [m.label for m in at.metric]  # computed on request only
    at.toggle(key="inq_rep_on").set_value(True).run()
    misses = at.dataframe[-1].value
    assert list(misses["문의"]) == [seeded["late"]]
    assert "목표 내 처리 비율" in [m.label for m in at.metric]


def test_refund_and_receipt_actions_present(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], seeded: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    at.button(key="inq_receipt").click().run()
    assert not at.exception
    with Session(sqlite_engine) as session:
        assert session.exec(select(Message.template_key)).all() == ["receipt"]
    # The refund button stays disabled until the amount is confirmed.
    assert at.button(key="inq_refund").disabled
