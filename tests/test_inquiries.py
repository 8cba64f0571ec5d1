"""Inquiry services: timeline, audit, cached deadlines, outbox, queue, report, bad input."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core import clock
from core.accounts.actor import Actor
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.inquiries import queue as inquiry_queue
from core.inquiries import report as sla_report
from core.inquiries import service as inquiries
from core.models import AuditLog, Inquiry, InquiryEvent, Message
from tests.inquiry_helpers import k, make_customer, make_order, make_payment

MONDAY_9 = k("2026-11-23 09:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("어제 결제가 두 번 됐어요", "double_charge"),
        ("카드에서 이중으로 빠져나갔어요 환불해주세요", "double_charge"),
        ("중복 결제 확인 부탁드려요", "double_charge"),
        ("환불 받고 싶어요", "refund_request"),
        ("주문 취소해 주세요", "refund_request"),
        ("현금영수증 발급 부탁드려요", "receipt_request"),
        ("지출 증빙용 영수증 주세요", "receipt_request"),
        ("결제 오류가 났어요", "payment_error"),
        ("카카오페이 결제가 안 돼요", "payment_error"),
        ("결제 실패라고 떠요", "payment_error"),
        ("배송 언제 오나요?", "other"),
        ("", "other"),
    ],
)
def test_suggest_type(text: str, expected: str) -> None:
    assert inquiries.suggest_type(text) == expected


def _new(session: Session, actor: Actor, body: str = "결제 오류가 났어요", **kw) -> Inquiry:
    customer = make_customer(session)
    return inquiries.create_inquiry(session, actor, customer_id=customer.id, body=body, **kw)


def test_create_times_and_audits(session: Session, actors: dict[str, Actor]) -> None:
    with clock.frozen(MONDAY_9):
        inquiry = _new(session, actors["cs"])
        session.commit()
    assert inquiry.type == "payment_error"
    assert inquiry.first_response_due_at == k("2026-11-23 09:30")
    assert inquiry.resolution_due_at == k("2026-11-23 14:00")  # 4h with the lunch hour skipped
    assert inquiry.sla_due_at == inquiry.first_response_due_at
    assert inquiry.sla_at_risk_at == k("2026-11-23 09:24")
    assert inquiry.sla_next_alert_at == inquiry.sla_at_risk_at
    actions = session.exec(select(AuditLog.action)).all()
    assert "inquiry.create" in actions


def test_staff_role_cannot_touch_inquiries(session: Session, actors: dict[str, Actor]) -> None:
    with pytest.raises(PermissionDenied):
        _new(session, actors["staff"])


def test_full_lifecycle(session: Session, actors: dict[str, Actor]) -> None:
    cs = actors["cs"]
    with clock.frozen(MONDAY_9):
        inquiry = _new(session, cs)
    with clock.frozen(k("2026-11-23 09:05")):
        inquiries.claim(session, cs, inquiry.id)
        assert inquiry.assignee_id == cs.id
    with clock.frozen(k("2026-11-23 09:10")):
        event = inquiries.reply(session, cs, inquiry.id, "확인해 보겠습니다")
    assert inquiry.first_response_at == k("2026-11-23 09:10")
    message = session.exec(
        select(Message).where(Message.idempotency_key == f"inquiry_reply:{event.id}")
    ).one()
    assert message.text == "확인해 보겠습니다"
    # Now the resolution target is the nearest one.
    assert inquiry.sla_due_at == k("2026-11-23 14:00")
    with clock.frozen(k("2026-11-23 09:20")):
        inquiries.wait_on_customer(session, cs, inquiry.id)
    assert inquiry.status == "waiting_customer" and inquiry.sla_due_at is None
    with clock.frozen(k("2026-11-23 10:20")):
        inquiries.customer_message(session, cs, inquiry.id, "다시 해봐도 안 돼요")
    assert inquiry.status == "open"
    assert inquiry.sla_due_at == k("2026-11-23 15:00")  # one hour of waiting added
    with clock.frozen(k("2026-11-23 10:30")):
        inquiries.add_note(session, cs, inquiry.id, "PG사 확인 중")
        inquiries.resolve(session, cs, inquiry.id)
    assert inquiry.status == "resolved" and inquiry.sla_due_at is None
    with clock.frozen(k("2026-11-23 11:00")):
        inquiries.reopen(session, cs, inquiry.id, "고객 재문의")
    assert inquiry.status == "open"
    assert inquiry.sla_due_at == k("2026-11-23 15:30")  # 30 closed minutes never count
    session.commit()
    kinds = [e.kind for e in inquiries.events_of(session, inquiry.id)]
    assert kinds == [
        "created",
        "assign",
        "reply",
        "wait_customer",
        "customer_message",
        "note",
        "resolve",
        "reopen",
    ]
    audit_count = len(session.exec(select(AuditLog).where(AuditLog.entity_type == "inquiry")).all())
    assert audit_count == 8


def test_receipt_queues_message_once_and_counts_as_response(
    session: Session, actors: dict[str, Actor]
) -> None:
    cs = actors["cs"]
    with clock.frozen(MONDAY_9):
        customer = make_customer(session)
        payment = make_payment(session, customer, None, 39000, MONDAY_9, "p1")
        inquiry = inquiries.create_inquiry(
            session, cs, customer_id=customer.id, body="영수증 주세요", payment_id=payment.id
        )
        assert inquiry.type == "receipt_request"
        inquiries.send_receipt(session, cs, inquiry.id)
        inquiries.send_receipt(session, cs, inquiry.id)
    assert inquiry.first_response_at == MONDAY_9
    keys = session.exec(select(Message.idempotency_key).where(Message.template_key == "receipt")).all()
    assert keys == [f"inquiry_receipt:{inquiry.id}:{payment.id}"]


def test_refund_checks_refundable_and_calls_refund_service(
    session: Session, actors: dict[str, Actor]
) -> None:
    calls: list[dict] = []

    def fake_refund(session, actor, **kw):  # noqa: ANN001, ANN202
        calls.append(kw)
        return None

    cs = actors["cs"]
    with clock.frozen(MONDAY_9):
        customer = make_customer(session)
        payment = make_payment(session, customer, make_order(session, customer), 39000, MONDAY_9, "p2")
        inquiry = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="환불해 주세요")
        with pytest.raises(ValidationFailed, match="환불 가능 금액"):
            inquiries.refund(
                session,
                cs,
                inquiry.id,
                payment_id=payment.id,
                amount=39001,
                reason="x",
                refund_fn=fake_refund,
            )
        for bad in (0, -1):
            with pytest.raises(ValidationFailed):
                inquiries.refund(
                    session,
                    cs,
                    inquiry.id,
                    payment_id=payment.id,
                    amount=bad,
                    reason="x",
                    refund_fn=fake_refund,
                )
        inquiries.refund(
            session,
            cs,
            inquiry.id,
            payment_id=payment.id,
            amount=10000,
            reason="부분 환불",
            refund_fn=fake_refund,
        )
    assert calls == [
        {
            "payment_id": payment.id,
            "amount": 10000,
            "reason": "부분 환불",
            "idempotency_key": f"inquiry_refund:{inquiry.id}:{payment.id}:10000:0",
        }
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "가" * 10_000,
        "결제가 두 번 됐어요 😡🙏👍🏻",
        "<script>alert('x')</script><b>굵게</b> & \"따옴표\"",
        "  앞뒤 공백  \n\n둘째 줄\t",
    ],
    ids=["empty", "10k", "emoji", "html", "whitespace"],
)
def test_customer_text_stored_and_returned_verbatim(
    session: Session, actors: dict[str, Actor], text: str
) -> None:
    with clock.frozen(MONDAY_9):
        inquiry = _new(session, actors["cs"], body=text)
        inquiries.customer_message(session, actors["cs"], inquiry.id, text)
        session.commit()
    session.expire_all()
    bodies = session.exec(
        select(InquiryEvent.body).where(InquiryEvent.inquiry_id == inquiry.id).order_by(InquiryEvent.id)
    ).all()
    assert bodies == [text, text]


def test_too_long_text_rejected_and_nothing_written(session: Session, actors: dict[str, Actor]) -> None:
    customer = make_customer(session)
    session.commit()
    with pytest.raises(ValidationFailed, match="너무 깁니다"):
        inquiries.create_inquiry(session, actors["cs"], customer_id=customer.id, body="가" * 10_001)
    assert session.exec(select(Inquiry)).all() == []


def test_bad_references_rejected(session: Session, actors: dict[str, Actor]) -> None:
    with pytest.raises(ValidationFailed):
        inquiries.create_inquiry(session, actors["cs"], customer_id=999, body="x")
    with pytest.raises(NotFound):
        inquiries.reply(session, actors["cs"], 999, "x")
    inquiry = _new(session, actors["cs"])
    with pytest.raises(ValidationFailed):
        inquiries.reply(session, actors["cs"], inquiry.id, "   ")
    with pytest.raises(ValidationFailed):
        inquiries.change_type(session, actors["cs"], inquiry.id, "nonsense")
    with pytest.raises(ValidationFailed):
        inquiries.assign(session, actors["cs"], inquiry.id, actors["staff"].id)


def test_dedupe_key_returns_first(session: Session, actors: dict[str, Actor]) -> None:
    first = _new(session, actors["cs"], dedupe_key="double_charge:1")
    again = inquiries.create_inquiry(
        session, actors["cs"], customer_id=first.customer_id, body="x", dedupe_key="double_charge:1"
    )
    assert again.id == first.id


def test_queue_order_and_filters(session: Session, actors: dict[str, Actor]) -> None:
    cs = actors["cs"]
    with clock.frozen(MONDAY_9):
        late = _new(session, cs, body="결제 오류")  # due 09:30
    with clock.frozen(k("2026-11-23 09:20")):
        soon = _new(session, cs, body="이중 결제")  # due 10:20
        waiting = _new(session, cs, body="환불")
        inquiries.wait_on_customer(session, cs, waiting.id)
        later = _new(session, cs, body="배송 문의")  # other: 4h
        inquiries.claim(session, cs, later.id)
        done = _new(session, cs, body="영수증")
        inquiries.resolve(session, cs, done.id)
    session.commit()
    now = k("2026-11-23 10:10")
    rows, total = inquiry_queue.queue(session, now)
    assert [r.id for r in rows] == [late.id, soon.id, later.id, waiting.id] and total == 4
    assert [r.state(now) for r in rows] == ["breached", "at_risk", "on_track", "paused"]
    assert [r.id for r in inquiry_queue.queue(session, now, states=["breached"])[0]] == [late.id]
    assert [r.id for r in inquiry_queue.queue(session, now, states=["at_risk", "paused"])[0]] == [
        soon.id,
        waiting.id,
    ]
    assert [r.id for r in inquiry_queue.queue(session, now, types=["other"])[0]] == [later.id]
    assert [r.id for r in inquiry_queue.queue(session, now, assignee_id=cs.id)[0]] == [later.id]
    assert len(inquiry_queue.queue(session, now, unassigned=True)[0]) == 3
    assert rows[0].seconds_left(now) == -40 * 60


def test_policy_change_retimes_open_inquiries(session: Session, actors: dict[str, Actor]) -> None:
    with clock.frozen(MONDAY_9):
        inquiry = _new(session, actors["cs"])
        with pytest.raises(PermissionDenied):
            inquiries.save_policy(
                session,
                actors["cs"],
                inquiry_type="payment_error",
                first_response_minutes=60,
                resolution_minutes=120,
            )
        for first, resolution in ((0, 10), (10, -5)):
            with pytest.raises(ValidationFailed):
                inquiries.save_policy(
                    session,
                    actors["owner"],
                    inquiry_type="payment_error",
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                )
        inquiries.save_policy(
            session,
            actors["owner"],
            inquiry_type="payment_error",
            first_response_minutes=60,
            resolution_minutes=120,
            calendar="24/7",
        )
    assert inquiry.first_response_due_at == k("2026-11-23 10:00")
    assert inquiry.resolution_due_at == k("2026-11-23 11:00")


def test_business_hours_and_closed_days(session: Session, actors: dict[str, Actor]) -> None:
    owner = actors["owner"]
    with pytest.raises(ValidationFailed, match="영업시간"):
        inquiries.save_business_hours(session, owner, {str(d): [] for d in range(1, 8)}, True)
    with clock.frozen(k("2026-11-23 17:50")):
        inquiry = _new(session, actors["cs"])
        assert inquiry.first_response_due_at == k("2026-11-24 09:20")
        inquiries.add_closed_day(
            session, owner, k("2026-11-24 12:00").astimezone(clock.KST).date(), "워크숍"
        )
        assert inquiry.first_response_due_at == k("2026-11-25 09:20")
        with pytest.raises(ValidationFailed):
            inquiries.add_closed_day(session, owner, k("2026-11-24 12:00").astimezone(clock.KST).date())
        inquiries.save_business_hours(
            session, owner, {str(d): [["00:00", "24:00"]] for d in range(1, 8)}, False
        )
        assert inquiry.first_response_due_at == k("2026-11-23 18:20") + timedelta(days=0)


def test_report_and_csv(session: Session, actors: dict[str, Actor]) -> None:
    cs = actors["cs"]
    with clock.frozen(MONDAY_9):
        on_time = _new(session, cs)
        late = _new(session, cs, body="환불")
        inquiries.claim(session, cs, late.id)
    with clock.frozen(k("2026-11-23 09:10")):
        inquiries.reply(session, cs, on_time.id, "네")
        inquiries.resolve(session, cs, on_time.id)
    with clock.frozen(k("2026-11-23 10:30")):  # refund_request: first response due 10:00
        inquiries.reply(session, cs, late.id, "확인했습니다")
    session.commit()
    data = sla_report.report(session, k("2026-11-23 00:00"), k("2026-11-30 00:00"), now=k("2026-11-23 11:00"))
    assert data.overall.total == 2 and data.overall.within == 1
    assert data.by_type["payment_error"].share_within == 1.0
    assert data.by_type["refund_request"].share_within == 0.0
    assert data.by_staff["cs 담당"].total == 1
    assert data.by_week["2026-W48"].total == 2
    assert data.overall.median_first_response == 50 * 60  # median of 10 and 90 minutes
    assert [(m.inquiry_id, m.target, m.late_seconds) for m in data.misses] == [
        (late.id, "first_response", 1800)
    ]
    rows = list(csv.reader(io.StringIO(sla_report.report_csv(data))))
    assert rows[0][0] == "구분" and ["전체", "전체", "2", "1", "50.0", "50.0", "10.0"] in rows
    assert rows[-1][0] == str(late.id) and rows[-1][-1] == "30.0"


def test_live_payment_status_from_gateway(engine, actors: dict[str, Actor]) -> None:  # type: ignore[no-untyped-def]
    from tests.payments.helpers import paid_order, sandbox_router

    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000)
    with Session(engine) as session:
        live = inquiry_queue.live_payment_status(session, payment.id, router=router)
        assert live == {"status": "결제 완료", "total": 30_000, "canceled": 0, "cancel_available": 30_000}
        with pytest.raises(ValidationFailed):
            inquiry_queue.live_payment_status(session, 9999, router=router)
