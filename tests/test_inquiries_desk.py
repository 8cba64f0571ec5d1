"""The 문의 desk (AppTest on the real app.py, real services, the sandbox gateway): open a row by
selecting it, saved replies with variables, bulk actions, live signals, look-alike payments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.errors import PermissionDenied, ValidationFailed
from core.inquiries import jobs as inquiry_jobs
from core.inquiries import macros
from core.inquiries import panel as inquiry_panel
from core.inquiries import service as inquiries
from core.models import (
    AuditLog,
    Customer,
    Inquiry,
    InquiryEvent,
    Message,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
)
from core.payments.gateways.base import ApproveRequest, ReadyRequest
from core.payments.gateways.sandbox import SandboxGateway
from tests.inquiry_helpers import k, make_customer, make_order
from tests.ui_helpers import open_app, texts

NOW = k("2026-11-23 10:10")
HOSTILE_NAME = "<img src=x onerror=alert(1)>민지😡"


@pytest.fixture
def queue3(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> dict[str, int]:
    """Three open inquiries, nearest deadline first: late (breached), soon (at risk), fresh."""
    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session:
        customer = make_customer(session, HOSTILE_NAME, "01055556666")
        order = make_order(session, customer, number="ORD-7788")
        with clock.frozen(k("2026-11-23 09:00")):
            late = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="결제 오류가 났어요")
        with clock.frozen(k("2026-11-23 09:20")):
            soon = inquiries.create_inquiry(
                session, cs, customer_id=customer.id, body="이중 결제 같아요", order_id=order.id
            )
        with clock.frozen(k("2026-11-23 10:05")):
            fresh = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="영수증 주세요")
        session.commit()
        return {"late": late.id, "soon": soon.id, "fresh": fresh.id, "customer": customer.id, "order": order.id}


def _page(engine: Engine, actor: Actor):  # type: ignore[no-untyped-def]
    clock.set_now(NOW)
    at = open_app(engine, actor, "pages/inquiries.py")
    assert not at.exception, at.exception
    return at


def _opened(at) -> str:  # type: ignore[no-untyped-def]
    return next(h.value for h in at.subheader if "번 문의" in h.value)


# --------------------------------------------------------------------------- open a row


def test_selecting_a_row_opens_that_inquiry_and_clears_the_selection(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    table = at.dataframe[0]
    assert table.key == "inq_queue_table_0"
    order = list(table.value["번호"])
    assert sorted(order) == sorted([queue3["late"], queue3["soon"], queue3["fresh"]])
    assert order[0] == queue3["late"]  # breached first
    assert _opened(at).startswith(f"{order[0]}번 문의")
    # The person clicks the third row (what the browser sends for a single-row selection).
    at.session_state["inq_queue_table_0"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert _opened(at).startswith(f"{order[2]}번 문의")
    # A new table without a selection: a kept selection would point at another inquiry once rows move.
    assert [d.key for d in at.dataframe][0] == "inq_queue_table_1"
    # j / k (their buttons, which the J and K keys press) walk the queue and open at once.
    at.button(key="inq_prev").click().run()
    assert _opened(at).startswith(f"{order[1]}번 문의")
    at.button(key="inq_prev").click().run()
    at.button(key="inq_prev").click().run()  # at the top: stays on the first one
    assert _opened(at).startswith(f"{order[0]}번 문의")
    at.button(key="inq_next").click().run()
    assert _opened(at).startswith(f"{order[1]}번 문의")


def test_tapping_a_card_opens_it_and_a_number_overrides_nothing(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    at.number_input(key="inq_open_id").set_value(queue3["late"]).run()
    at.button(key=f"inq_card_{queue3['soon']}").click().run()
    assert not at.exception, at.exception
    assert _opened(at).startswith(f"{queue3['soon']}번 문의")
    assert at.number_input(key="inq_open_id").value == 0  # the tap wins over an earlier typed number


def _card_ids(at) -> list[int]:  # type: ignore[no-untyped-def]
    """The phone cards in the order drawn (their 열기 buttons)."""
    keys = [b.key for b in at.button if b.key and b.key.startswith("inq_card_")]
    return [int(key.removeprefix("inq_card_")) for key in keys]


@pytest.fixture
def queue75(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> list[int]:
    """75 open inquiries a minute apart, types alternating 결제 오류 / 영수증 요청: more than two pages."""
    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session:
        customer = make_customer(session, "김고객", "01077778888")
        made = []
        for i in range(75):
            with clock.frozen(k("2026-11-23 08:00") + timedelta(minutes=i)):
                kind = "payment_error" if i % 2 == 0 else "receipt_request"
                made.append(
                    inquiries.create_inquiry(
                        session, cs, customer_id=customer.id, body=f"문의 {i}", inquiry_type=kind
                    ).id
                )
        session.commit()
        return made


def test_more_cards_reach_every_open_inquiry_in_the_queue_order_under_the_filters(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue75: list[int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    at.selectbox(key="inq_f_limit").set_value(50).run()  # a small load: 더 보기 has to load more
    queue_order = list(at.dataframe[0].value["번호"])
    assert len(queue_order) == 50
    assert _card_ids(at) == queue_order[:30]  # most urgent first, as the table
    at.button(key="inq_cards_more").click().run()
    assert not at.exception, at.exception
    # 60 cards is past the 50 loaded: 표시 grew to 100, and the first 50 kept their places.
    assert at.selectbox(key="inq_f_limit").value == 100
    full_order = list(at.dataframe[0].value["번호"])
    assert full_order[:50] == queue_order and sorted(full_order) == sorted(queue75)
    assert _card_ids(at) == full_order[:60]
    assert "남은 15건" in at.button(key="inq_cards_more").label
    at.button(key="inq_cards_more").click().run()
    assert _card_ids(at) == full_order  # all 75, in order; nothing more to offer
    assert not [b for b in at.button if b.key == "inq_cards_more"]
    # Another filter starts again at one page, and 더 보기 stays inside it.
    at.multiselect(key="inq_f_type").set_value(["receipt_request"]).run()
    receipts = list(at.dataframe[0].value["번호"])
    assert len(receipts) == 37 and set(receipts) == set(queue75[1::2])
    assert _card_ids(at) == receipts[:30]
    at.button(key="inq_cards_more").click().run()
    assert _card_ids(at) == receipts


# --------------------------------------------------------------------------- saved replies


def test_macro_fills_variables_and_a_missing_value_is_never_sent(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    at = _page(sqlite_engine, cs)
    at.selectbox(key="inq_pick").select(queue3["soon"]).run()
    assert "이중 결제" in _opened(at)
    macro = at.button(key="inq_macro_default-double")
    assert "환불금액" in macro.help  # shown before the click: no refund yet
    macro.click().run()
    box = at.text_area(key="inq_reply_text").value
    # Customer name as typed (HTML, emoji), the inquiry's order number; the refund amount left visible.
    assert box.startswith(f"{HOSTILE_NAME}님, 주문 ORD-7788의 결제가")
    assert "#{환불금액}" in box
    assert any("#{환불금액}" in w.value and "보내지지 않습니다" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "답변 보내기").click().run()
    assert any("채워지지 않은 변수가 있습니다: #{환불금액}" in e.value for e in at.error)
    assert at.text_area(key="inq_reply_text").value == box  # kept for fixing, not cleared
    with Session(sqlite_engine) as session:
        assert session.exec(select(Message)).all() == []
        assert session.exec(
            select(InquiryEvent).where(InquiryEvent.inquiry_id == queue3["soon"], InquiryEvent.kind == "reply")
        ).all() == []
    # Filled in by hand, it goes; the box empties after a sent reply.
    at.text_area(key="inq_reply_text").input(box.replace("#{환불금액}", "39,000원"))
    next(b for b in at.button if b.label == "답변 보내기").click().run()
    assert not at.exception, at.exception
    assert "답변을 기록하고 발송 대기열에 넣었습니다" in [t.value for t in at.toast]
    assert at.text_area(key="inq_reply_text").value == ""
    with Session(sqlite_engine) as session:
        (sent,) = session.exec(select(Message.text)).all()
        assert "#{" not in sent and sent.startswith(HOSTILE_NAME) and "39,000원" in sent


def test_macro_insert_appends_to_what_is_typed_and_offers_only_the_types_macros(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])  # the late one: 결제 오류
    keys = {b.key for b in at.button if (b.key or "").startswith("inq_macro_")}
    assert keys == {"inq_macro_default-greeting", "inq_macro_default-error"}
    at.text_area(key="inq_reply_text").input("확인했습니다.")
    at.button(key="inq_macro_default-greeting").click().run()
    assert at.text_area(key="inq_reply_text").value == f"확인했습니다.\n{HOSTILE_NAME}님, 안녕하세요. " + (
        "문의 주셔서 감사합니다. 확인 후 바로 안내드리겠습니다."
    )


def test_values_follow_the_inquiry_refunds_and_the_only_order(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session:
        one = make_customer(session, "한주문", "01011112222")
        order = make_order(session, one, number="ONLY-1", amount=12000)
        inquiry = inquiries.create_inquiry(session, cs, customer_id=one.id, body="환불해 주세요")
        values = macros.values_for(session, inquiry.id, cs)
        assert values["주문번호"] == "ONLY-1"  # the customer's one and only order
        assert values["결제금액"] == "12,000원"
        assert values["환불금액"] is None
        make_order(session, one, number="SECOND-2")
        assert macros.values_for(session, inquiry.id, cs)["주문번호"] is None  # two orders: no guess
        session.add(InquiryEvent(inquiry_id=inquiry.id, kind="refund", detail={"amount": 5000}))
        session.add(InquiryEvent(inquiry_id=inquiry.id, kind="refund", detail={"amount": 7000}))
        session.flush()
        assert macros.values_for(session, inquiry.id, cs)["환불금액"] == "12,000원"
        assert macros.values_for(session, inquiry.id, cs)["담당자"] == cs.name
        assert order.id


def test_owner_edits_macros_on_the_page_cs_cannot(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    owner, cs = sqlite_actors["owner"], sqlite_actors["cs"]
    at = _page(sqlite_engine, owner)
    at.text_input(key="inq_macro_new_title").input("배송 안내")
    at.text_area(key="inq_macro_new_body").input("#{고객명}님, 주문 #{주문번호}은 오늘 출발합니다.")
    at.multiselect(key="inq_macro_new_types").select("other")
    next(b for b in at.button if b.label == "추가").click().run()
    assert not at.exception, at.exception
    assert "매크로를 추가했습니다" in [t.value for t in at.toast]
    with Session(sqlite_engine) as session:
        saved = macros.load(session)
        assert saved[-1].title == "배송 안내" and saved[-1].types == ("other",)
        audit = session.exec(select(AuditLog).where(AuditLog.action == "setting.change")).all()
        assert [a.entity_id for a in audit] == [macros.SETTING_KEY]
        with pytest.raises(PermissionDenied):
            macros.save(session, cs, title="몰래", body="안녕")
        with pytest.raises(PermissionDenied):
            macros.delete(session, cs, saved[0].id)
        with pytest.raises(ValidationFailed, match="알 수 없는 변수"):
            macros.save(session, owner, title="오타", body="#{고객 이름}님")
    cs_page = _page(sqlite_engine, cs)
    assert "매크로는 사장님이 고칠 수 있습니다." in texts(cs_page)
    assert not any(b.label == "추가" for b in cs_page.button)


# --------------------------------------------------------------------------- bulk actions


def test_bulk_assign_from_the_page_audits_each_and_the_batch(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    cs, owner = sqlite_actors["cs"], sqlite_actors["owner"]
    at = _page(sqlite_engine, cs)
    at.toggle(key="inq_bulk").set_value(True).run()
    table = at.dataframe[0]
    assert table.key.startswith("inq_bulk_table_")
    order = list(table.value["번호"])
    at.session_state[table.key] = {"selection": {"rows": [0, 2], "columns": [], "cells": []}}
    at.run()
    chosen = [order[0], order[2]]
    untouched = order[1]
    assert f"2건 선택** · {chosen[0]}번, {chosen[1]}번" in "\n".join(m.value for m in at.markdown)
    at.selectbox(key="inq_bulk_to").select(owner.id).run()
    at.button(key="inq_bulk_assign").click().run()
    assert not at.exception, at.exception
    assert f"2건을 {owner.name}에게 배정했습니다" in [t.value for t in at.toast]
    with Session(sqlite_engine) as session:
        assigned = {i.id: i.assignee_id for i in session.exec(select(Inquiry)).all()}
        assert assigned == {chosen[0]: owner.id, untouched: None, chosen[1]: owner.id}
        actions = session.exec(select(AuditLog.action, AuditLog.entity_id).order_by(AuditLog.id)).all()
        assert [a for a in actions if a[0].startswith("inquiry.") and a[0] != "inquiry.create"] == [
            ("inquiry.assign", str(chosen[0])),
            ("inquiry.assign", str(chosen[1])),
            ("inquiry.bulk_assign", None),
        ]
        bulk = session.exec(select(AuditLog).where(AuditLog.action == "inquiry.bulk_assign")).one()
        assert bulk.detail["ids"] == chosen and bulk.actor_id == cs.id


def test_bulk_type_and_resolve_from_the_page(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    at = _page(sqlite_engine, sqlite_actors["cs"])
    at.toggle(key="inq_bulk").set_value(True).run()
    order = list(at.dataframe[0].value["번호"])
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    at.selectbox(key="inq_bulk_type_to").select("refund_request").run()
    at.button(key="inq_bulk_type").click().run()
    assert "2건의 유형을 환불 요청(으)로 바꿨습니다" in [t.value for t in at.toast]
    # New deadlines reordered the queue, so the choice was cleared (never acting on moved rows): choose again.
    assert "표 왼쪽 칸을 눌러 문의를 고르세요." in texts(at)
    now_order = list(at.dataframe[0].value["번호"])
    at.session_state[at.dataframe[0].key] = {
        "selection": {"rows": [now_order.index(order[0]), now_order.index(order[1])], "columns": [], "cells": []}
    }
    at.run()
    assert at.button(key="inq_bulk_resolve").disabled  # resolving needs its confirmation
    at.checkbox(key="inq_bulk_resolve_ok").check().run()
    at.button(key="inq_bulk_resolve").click().run()
    assert "2건을 해결 처리했습니다" in [t.value for t in at.toast]
    with Session(sqlite_engine) as session:
        rows = {i.id: (i.type, i.status) for i in session.exec(select(Inquiry)).all()}
    assert rows[order[0]] == ("refund_request", "resolved")
    assert rows[order[1]] == ("refund_request", "resolved")
    assert rows[order[2]][1] == "open" and rows[order[2]][0] != "refund_request"
    # The resolved rows left the queue, so the choice was cleared: nothing can act on stale rows.
    assert "표 왼쪽 칸을 눌러 문의를 고르세요." in texts(at)


@pytest.mark.parametrize(
    ("action", "args"),
    [("bulk_assign", (None,)), ("bulk_change_type", ("other",)), ("bulk_resolve", ())],
)
def test_bulk_actions_check_the_role_and_change_nothing(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int], action: str, args: tuple
) -> None:
    ids = [queue3["late"], queue3["soon"]]
    with pytest.raises(PermissionDenied), session_scope(sqlite_engine) as session:
        getattr(inquiries, action)(session, sqlite_actors["staff"], ids, *args)
    with Session(sqlite_engine) as session:
        assert session.exec(select(AuditLog).where(col(AuditLog.action).like("inquiry.bulk%"))).all() == []


def test_a_failure_in_the_middle_leaves_nothing_half_done(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    with session_scope(sqlite_engine) as session:
        inquiries.resolve(session, cs, queue3["soon"])  # resolved meanwhile by a colleague
    with Session(sqlite_engine) as session:
        events_before = len(session.exec(select(InquiryEvent)).all())
        audits_before = len(session.exec(select(AuditLog)).all())
    ids = [queue3["late"], queue3["soon"], queue3["fresh"]]
    stopped = f"{queue3['soon']}번 문의: 이미 해결된 문의.*아무 문의도 바꾸지 않았습니다"
    with pytest.raises(ValidationFailed, match=stopped), session_scope(sqlite_engine) as session:
        inquiries.bulk_resolve(session, cs, ids)
    with pytest.raises(ValidationFailed, match="CS 담당자나 사장님에게만"), session_scope(sqlite_engine) as session:
        inquiries.bulk_assign(session, cs, ids, sqlite_actors["staff"].id)
    with pytest.raises(ValidationFailed, match="알 수 없는 문의 유형"), session_scope(sqlite_engine) as session:
        inquiries.bulk_change_type(session, cs, ids, "vip")
    with pytest.raises(ValidationFailed, match="처리할 문의를 고르세요"), session_scope(sqlite_engine) as session:
        inquiries.bulk_resolve(session, cs, [])
    with Session(sqlite_engine) as session:
        assert session.get(Inquiry, queue3["late"]).status == "open"
        assert session.get(Inquiry, queue3["late"]).assignee_id is None
        assert session.get(Inquiry, queue3["fresh"]).status == "open"
        assert len(session.exec(select(InquiryEvent)).all()) == events_before
        assert len(session.exec(select(AuditLog)).all()) == audits_before


# --------------------------------------------------------------------------- signals


def test_new_inquiry_and_breach_raise_a_toast_while_the_page_is_open(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    at = _page(sqlite_engine, cs)
    assert not any("새 문의" in t.value or "기한 초과" in t.value for t in at.toast)  # old news is no signal
    with session_scope(sqlite_engine) as session:
        new = inquiries.create_inquiry(session, cs, customer_id=queue3["customer"], body="환불 문의 <b>😡</b>")
    at.run()
    assert f"새 문의: {new.id}번 환불 요청" in [t.value for t in at.toast]
    assert new.id in list(at.dataframe[0].value["번호"])  # the table followed at once
    at.run()
    assert not any("새 문의" in t.value for t in at.toast)  # told once
    # The 'soon' one (결제 오류 first response 30 min, at risk) crosses its deadline while watched.
    with Session(sqlite_engine) as session:
        due = clock.as_utc(session.get(Inquiry, queue3["soon"]).sla_due_at)
    clock.set_now(due + timedelta(seconds=1))
    at.run()
    assert any(t.value.startswith("기한 초과: ") and f"{queue3['soon']}번" in t.value for t in at.toast)
    at.run()
    assert not any("기한 초과" in t.value for t in at.toast)



def test_the_optional_sound_plays_only_with_a_signal_and_only_when_switched_on(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], queue3: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    at = _page(sqlite_engine, cs)
    with session_scope(sqlite_engine) as session:
        inquiries.create_inquiry(session, cs, customer_id=queue3["customer"], body="첫 번째")
    at.run()
    assert len(at.get("audio")) == 0  # off by default
    at.toggle(key="inq_sound").set_value(True).run()
    assert len(at.get("audio")) == 0  # no signal, no sound
    with session_scope(sqlite_engine) as session:
        inquiries.create_inquiry(session, cs, customer_id=queue3["customer"], body="두 번째")
    at.run()
    (audio,) = at.get("audio")
    assert audio.proto.autoplay


# --------------------------------------------------------------------------- customer panel


def _sandbox_payment(engine: Engine, customer_id: int, number: str, amount: int, at_time) -> int:  # type: ignore[no-untyped-def]
    """An approved sandbox payment of an order of this customer (the gateway knows it: refunds work)."""
    sandbox = SandboxGateway(engine)
    with clock.frozen(at_time):
        with Session(engine) as session:
            public_id = session.get(Customer, customer_id).public_id
        ready = sandbox.ready(ReadyRequest(
            partner_order_id=number, partner_user_id=public_id, item_name="원두 1kg", quantity=1,
            total_amount=amount, tax_free_amount=0, approval_url="a", cancel_url="c", fail_url="f",
        ))
        token = sandbox.select_method(ready.tid, "CARD")
        approved = sandbox.approve(ApproveRequest(tid=ready.tid, partner_order_id=number, partner_user_id=public_id, pg_token=token))
        with Session(engine) as session:
            order = Order(order_number=number, customer_id=customer_id, total_amount=amount,
                          status=OrderStatus.PAID, paid_at=clock.now(), ordered_at=clock.now())
            session.add(order)
            session.flush()
            session.add(OrderItem(order_id=order.id, product_name="원두 1kg", quantity=1, unit_price=amount, amount=amount))
            payment = Payment(order_id=order.id, customer_id=customer_id, gateway="sandbox", gateway_tid=approved.tid,
                              method="CARD", amount=amount, status=PaymentStatus.APPROVED,
                              idempotency_key=f"pay:{number}", approved_at=approved.approved_at, created_at=clock.now())
            session.add(payment)
            session.commit()
            return payment.id  # type: ignore[return-value]


@pytest.fixture
def doubled(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> dict[str, int]:
    with Session(sqlite_engine) as session:
        customer = make_customer(session, "이중결제", "01077778888")
        session.commit()
        customer_id = customer.id
    first = _sandbox_payment(sqlite_engine, customer_id, "D-1", 39000, k("2026-11-23 09:50"))
    later = _sandbox_payment(sqlite_engine, customer_id, "D-2", 39000, k("2026-11-23 09:53"))
    other = _sandbox_payment(sqlite_engine, customer_id, "D-3", 12000, k("2026-11-23 09:55"))
    with session_scope(sqlite_engine) as session:
        inquiry = inquiries.create_inquiry(
            session, sqlite_actors["cs"], customer_id=customer_id, body="같은 원두가 두 번 결제됐어요"
        )
    return {"first": first, "later": later, "other": other, "inquiry": inquiry.id, "customer": customer_id}


def test_look_alike_payments_side_by_side_and_the_later_refunded_once(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], doubled: dict[str, int]
) -> None:
    cs = sqlite_actors["cs"]
    at = _page(sqlite_engine, cs)
    assert _opened(at).startswith(f"{doubled['inquiry']}번 문의 · 이중 결제")
    payments = next(d.value for d in at.dataframe if "중복 의심" in d.value.columns)
    flags = list(zip(payments["결제"], payments["중복 의심"], strict=True))
    assert sorted(flags[:2]) == sorted([  # the look-alikes first, named
        (doubled["later"], f"중복 의심 · {doubled['first']}번과 같음"),
        (doubled["first"], "중복 의심 · 먼저 낸 결제"),
    ])
    assert flags[2] == (doubled["other"], "")
    text = texts(at)
    assert "중복으로 보이는 결제 1쌍" in text and "같은 금액이 짧은 간격으로 두 번 · 나중 결제가 3분 0초 뒤" in text
    assert "먼저 낸 결제 (유지)** · " + str(doubled["first"]) + "번" in text
    refund = at.button(key=f"inq_pair_refund_{doubled['later']}")
    assert refund.disabled  # not without the confirmation
    at.checkbox(key=f"inq_pair_ok_{doubled['later']}").check().run()
    at.button(key=f"inq_pair_refund_{doubled['later']}").click().run()
    assert not at.exception, at.exception
    assert "39,000원 환불했습니다" in [t.value for t in at.toast]
    assert "나중 결제는 전액 환불되었습니다." in [s.value for s in at.success]
    assert not any(b.key == f"inq_pair_refund_{doubled['later']}" for b in at.button)
    # A second click from a stale tab, then the sentinel's own tick: still one refund.
    with pytest.raises(ValidationFailed, match="이미 전액 환불"), session_scope(sqlite_engine) as session:
        inquiry_panel.refund_later(
            session, cs, doubled["inquiry"], original_id=doubled["first"], later_id=doubled["later"]
        )
    inquiry_jobs.double_charge_sentinel(sqlite_engine, NOW)
    with Session(sqlite_engine) as session:
        refunds = session.exec(select(Refund)).all()
        assert [(r.payment_id, r.amount, r.status, r.idempotency_key) for r in refunds] == [
            (doubled["later"], 39000, "succeeded", f"double_charge_refund:{doubled['later']}")
        ]
        assert session.get(Payment, doubled["first"]).refunded_amount == 0
        assert session.get(Payment, doubled["other"]).refunded_amount == 0
        kinds = session.exec(
            select(InquiryEvent.kind).where(InquiryEvent.inquiry_id == doubled["inquiry"]).order_by(InquiryEvent.id)
        ).all()
        assert kinds == ["created", "refund"]
        assert "inquiry.refund" in session.exec(select(AuditLog.action)).all()


def test_refund_later_refuses_what_is_not_a_look_alike(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor], doubled: dict[str, int]
) -> None:
    cs, staff = sqlite_actors["cs"], sqlite_actors["staff"]
    with Session(sqlite_engine) as session:
        stranger = make_customer(session, "남", "01099990000")
        other_inquiry = inquiries.create_inquiry(session, cs, customer_id=stranger.id, body="문의")
        session.commit()
        cases = [
            (cs, doubled["inquiry"], doubled["first"], doubled["other"], "중복으로 보이지 않습니다"),
            (cs, doubled["inquiry"], doubled["later"], doubled["later"], "같은 결제를 두 번"),
            (cs, other_inquiry.id, doubled["first"], doubled["later"], "이 고객의 결제가 아닙니다"),
            (staff, doubled["inquiry"], doubled["first"], doubled["later"], None),
        ]
    for actor, inquiry_id, original, later, error in cases:
        with session_scope(sqlite_engine) as session:
            if error is None:
                with pytest.raises(PermissionDenied):
                    inquiry_panel.refund_later(session, actor, inquiry_id, original_id=original, later_id=later)
            else:
                with pytest.raises(ValidationFailed, match=error):
                    inquiry_panel.refund_later(session, actor, inquiry_id, original_id=original, later_id=later)
    with Session(sqlite_engine) as session:
        assert session.exec(select(Refund)).all() == []
