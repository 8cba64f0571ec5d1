"""Worker jobs of the CS desk: SLA watch notifications and the double-charge sentinel."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock
from core.accounts.actor import Actor
from core.errors import PermissionDenied, ValidationFailed
from core.inquiries import jobs as inquiry_jobs
from core.inquiries import policy as sla_policy
from core.inquiries import sentinel
from core.inquiries import service as inquiries
from core.models import (
    AuditLog,
    Inquiry,
    Message,
    MessageKind,
    Payment,
    PaymentStatus,
    Refund,
    StaffNotification,
)
from tests.inquiry_helpers import k, make_customer, make_order, make_payment, make_product


def _open(
    engine: Engine, actor: Actor, at: str, body: str = "결제 오류가 났어요", claim: bool = False
) -> int:
    with clock.frozen(k(at)), Session(engine) as session:
        customer = make_customer(session)
        inquiry = inquiries.create_inquiry(session, actor, customer_id=customer.id, body=body)
        if claim:
            inquiries.claim(session, actor, inquiry.id)
        session.commit()
        return inquiry.id


def _notes(engine: Engine) -> list[tuple[int | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(StaffNotification).order_by(StaffNotification.id)).all()
        return [(r.staff_id, r.kind, r.dedupe_key) for r in rows]


def test_sla_watch_at_risk_then_breach_once_each(engine: Engine, actors: dict[str, Actor]) -> None:
    cs = actors["cs"]
    mine = _open(engine, cs, "2026-11-23 09:00", claim=True)  # first response due 09:30, at risk 09:24
    nobody = _open(engine, cs, "2026-11-23 09:00")
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:23"))["due"] == 0
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:24"))["at_risk"] == 2
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:24:30"))["due"] == 0  # once per threshold
    assert (
        inquiry_jobs.sla_watch(engine, k("2026-11-23 09:30"))["breached"] == 0
    )  # exactly at deadline: on time
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:30:30"))["breached"] == 2
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:31"))["due"] == 0
    assert _notes(engine) == [
        (cs.id, "sla_at_risk", f"sla:{mine}:first_response:at_risk"),
        (None, "sla_at_risk", f"sla:{nobody}:first_response:at_risk"),
        (cs.id, "sla_breached", f"sla:{mine}:first_response:breached"),
        (None, "sla_breached", f"sla:{nobody}:first_response:breached"),
    ]
    # A re-timing (the answer) moves the watch on to the resolution target.
    with clock.frozen(k("2026-11-23 09:40")), Session(engine) as session:
        inquiries.reply(session, cs, mine, "확인 중입니다")
        session.commit()
    # payment_error resolution 4h: due 14:00 (lunch skipped), at risk at 80% = 192 min -> 13:12.
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 13:12"))["at_risk"] == 1
    assert _notes(engine)[-1] == (cs.id, "sla_at_risk", f"sla:{mine}:resolution:at_risk")


def test_sla_watch_catches_up_after_downtime_with_breach_only(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    inquiry_id = _open(engine, actors["cs"], "2026-11-23 09:00")
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 10:00"))["breached"] == 1
    assert _notes(engine) == [(None, "sla_breached", f"sla:{inquiry_id}:first_response:breached")]


def test_sla_watch_never_outside_working_hours(engine: Engine, actors: dict[str, Actor]) -> None:
    # Opened 17:50: 10 minutes count today, the at-risk point (24 min) is tomorrow 09:14.
    _open(engine, actors["cs"], "2026-11-23 17:50")
    with Session(engine) as session:
        session.exec(select(Inquiry)).one().sla_next_alert_at = k("2026-11-23 18:00")  # force a due row
        session.commit()
    counts = inquiry_jobs.sla_watch(engine, k("2026-11-23 22:00"))
    assert counts["deferred"] == 1 and _notes(engine) == []


def test_sla_watch_ignores_waiting_and_resolved(engine: Engine, actors: dict[str, Actor]) -> None:
    cs = actors["cs"]
    waiting = _open(engine, cs, "2026-11-23 09:00")
    done = _open(engine, cs, "2026-11-23 09:00")
    with clock.frozen(k("2026-11-23 09:05")), Session(engine) as session:
        inquiries.wait_on_customer(session, cs, waiting)
        inquiries.resolve(session, cs, done)
        session.commit()
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 12:00"))["due"] == 0


def test_sla_watch_notification_text_matches_the_python_format(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    """The notification text is built in SQL (set-based tick): same wording and KST time as format_kst."""
    inquiry_id = _open(engine, actors["cs"], "2026-11-23 09:00", body="결제가 안 돼요 <b>")
    inquiry_jobs.sla_watch(engine, k("2026-11-23 09:24"))
    with Session(engine) as session:
        inquiry = session.get(Inquiry, inquiry_id)
        (note,) = session.exec(select(StaffNotification)).all()
        expected = (
            f"[결제 오류] {inquiry_id}번 첫 응답 기한 임박 "
            f"(기한 {clock.format_kst(inquiry.sla_due_at)}) · {inquiry.subject}"
        )
    assert clock.format_kst(inquiry.sla_due_at) == "2026-11-23 09:30"
    assert note.text == expected[:500] and note.created_at == k("2026-11-23 09:24")


def test_sla_watch_two_workers_at_once_notify_exactly_once(engine: Engine, actors: dict[str, Actor]) -> None:
    for _ in range(20):
        _open(engine, actors["cs"], "2026-11-23 09:00")
    _alerts_by_message(engine, actors["owner"], ["at_risk", "breached"])
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def tick() -> None:
        barrier.wait()
        results.append(inquiry_jobs.sla_watch(engine, k("2026-11-23 09:40")))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["breached"] for r in results) == 20 and sum(r["messages"] for r in results) == 20
    assert len(_notes(engine)) == 20 and len(_messages(engine)) == 20


# --------------------------------------------------------------------------- SLA alerts by message


def _alerts_by_message(engine: Engine, owner: Actor, thresholds: list[str], phone: str = "010-9876-5432") -> None:
    with Session(engine) as session:
        sla_policy.save_alert_message(session, owner, enabled=True, phone=phone, thresholds=thresholds)
        session.commit()


def _messages(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).order_by(Message.id)).all())


def test_sla_alerts_by_message_once_per_threshold_when_configured(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    cs = actors["cs"]
    first = _open(engine, cs, "2026-11-23 09:00", claim=True)
    second = _open(engine, cs, "2026-11-23 09:00")
    inquiry_jobs.sla_watch(engine, k("2026-11-23 09:24"))  # not configured yet: in the app only
    assert len(_notes(engine)) == 2 and _messages(engine) == []
    _alerts_by_message(engine, actors["owner"], ["at_risk", "breached"], phone="+82 10 9876 5432")
    counts = inquiry_jobs.sla_watch(engine, k("2026-11-23 09:31"))
    assert counts["breached"] == 2 and counts["messages"] == 2
    for _ in range(3):  # later ticks, a restart, a second worker: nothing again
        with Session(engine) as session:  # even a row forced due again does not repeat the alert
            session.get(Inquiry, first).sla_next_alert_at = k("2026-11-23 09:31")
            session.commit()
        assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:32"))["messages"] == 0
    messages = _messages(engine)
    assert [m.idempotency_key for m in messages] == [
        f"sla_alert:sla:{first}:first_response:breached",
        f"sla_alert:sla:{second}:first_response:breached",
    ]
    for message in messages:
        assert message.customer_id is None and message.to_phone == "010-9876-5432"
        assert message.kind == MessageKind.INFORMATIONAL and message.template_key == "sla_alert"
        assert message.status == "queued" and "기한 초과" in message.text


def test_sla_alerts_by_message_only_for_the_chosen_thresholds(engine: Engine, actors: dict[str, Actor]) -> None:
    _alerts_by_message(engine, actors["owner"], ["breached"])
    inquiry_id = _open(engine, actors["cs"], "2026-11-23 09:00")
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:24"))["messages"] == 0
    assert inquiry_jobs.sla_watch(engine, k("2026-11-23 09:31"))["messages"] == 1
    assert [m.idempotency_key for m in _messages(engine)] == [f"sla_alert:sla:{inquiry_id}:first_response:breached"]


def test_sla_alert_message_goes_out_through_the_sender(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> None:
    from core.messaging import sender
    from core.messaging.providers import OutboxProvider

    _alerts_by_message(sqlite_engine, sqlite_actors["owner"], ["at_risk"])
    inquiry_id = _open(sqlite_engine, sqlite_actors["cs"], "2026-11-23 09:00")
    inquiry_jobs.sla_watch(sqlite_engine, k("2026-11-23 09:24"))
    with clock.frozen(k("2026-11-23 09:24:01")):
        sender.run(sqlite_engine, k("2026-11-23 09:24:01"), provider=OutboxProvider())
    (message,) = _messages(sqlite_engine)
    assert message.status == "delivered", message.reason
    assert message.text.startswith("[CS 기한 알림]\n[결제 오류] ") and f"{inquiry_id}번 첫 응답 기한 임박" in message.text
    assert "(광고)" not in message.text


@pytest.mark.parametrize(
    ("role", "enabled", "phone", "thresholds", "error"),
    [
        ("owner", True, "", ["breached"], "번호를 입력"),
        ("owner", True, "02-123-4567", ["breached"], "번호가 잘못"),
        ("owner", True, "010-1234-5678", [], "하나 이상"),
        ("owner", False, "010-1234-5678", ["soon"], "알 수 없는"),
        ("cs", True, "010-1234-5678", ["breached"], None),
    ],
)
def test_alert_message_setting_refuses_bad_input(
    sqlite_engine: Engine,
    sqlite_actors: dict[str, Actor],
    role: str,
    enabled: bool,
    phone: str,
    thresholds: list[str],
    error: str | None,
) -> None:
    with Session(sqlite_engine) as session:
        if error is None:
            with pytest.raises(PermissionDenied):
                sla_policy.save_alert_message(
                    session, sqlite_actors[role], enabled=enabled, phone=phone, thresholds=thresholds
                )
        else:
            with pytest.raises(ValidationFailed, match=error):
                sla_policy.save_alert_message(
                    session, sqlite_actors[role], enabled=enabled, phone=phone, thresholds=thresholds
                )
        assert sla_policy.alert_message(session) == sla_policy.AlertMessage(enabled=False, phone="")


def test_alert_message_setting_is_audited(sqlite_engine: Engine, sqlite_actors: dict[str, Actor]) -> None:
    with Session(sqlite_engine) as session:
        saved = sla_policy.save_alert_message(
            session, sqlite_actors["owner"], enabled=True, phone="01098765432", thresholds=["breached", "at_risk"]
        )
        session.commit()
        assert saved == sla_policy.alert_message(session)
        assert saved.phone == "010-9876-5432" and saved.wants("at_risk") and saved.wants("breached")
        (entry,) = session.exec(select(AuditLog).where(AuditLog.action == "setting.change")).all()
        assert entry.entity_id == "sla_alert_message"


# --------------------------------------------------------------------------- sentinel


class FakeGateway:
    """Stands in for core.payments.refunds.refund_payment: idempotent by key, never over-refunds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self,
        session: Session,
        actor: Actor,
        *,
        payment_id: int,
        amount: int,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        existing = session.exec(select(Refund).where(Refund.idempotency_key == idempotency_key)).first()
        if existing is not None:
            return existing
        payment = session.get(Payment, payment_id)
        if amount > payment.amount - payment.refunded_amount:
            raise ValidationFailed("환불 가능 금액 초과")
        self.calls += 1
        payment.refunded_amount += amount
        payment.status = (
            PaymentStatus.REFUNDED if payment.refunded_amount == payment.amount else "partially_refunded"
        )
        refund = Refund(
            payment_id=payment_id,
            order_id=payment.order_id,
            amount=amount,
            reason=reason,
            status="succeeded",
            idempotency_key=idempotency_key,
        )
        session.add_all([payment, refund])
        session.flush()
        return refund


def _two_payments_same_order(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        customer = make_customer(session)
        order = make_order(session, customer, make_product(session), number="ORD-1")
        first = make_payment(session, customer, order, 39000, k("2026-11-23 10:00"), "pay-1")
        later = make_payment(session, customer, order, 39000, k("2026-11-23 10:00:05"), "pay-2")
        session.commit()
        return first.id, later.id


def test_sentinel_refunds_later_payment_exactly_once(engine: Engine, actors: dict[str, Actor]) -> None:
    first_id, later_id = _two_payments_same_order(engine)
    gateway = FakeGateway()
    counts = inquiry_jobs.double_charge_sentinel(engine, k("2026-11-23 10:01"), refund_fn=gateway)
    assert counts == {"found": 1, "opened": 1, "refunded": 1, "resolved": 1, "failed": 0}
    for tick in range(3):  # further ticks and a "restart" change nothing
        again = inquiry_jobs.double_charge_sentinel(
            engine, k("2026-11-23 10:02") + timedelta(minutes=tick), refund_fn=gateway
        )
        assert again["refunded"] == 0 and again["opened"] == 0
    assert gateway.calls == 1
    with Session(engine) as session:
        inquiry = session.exec(select(Inquiry)).one()
        assert (inquiry.type, inquiry.status, inquiry.payment_id, inquiry.source) == (
            "double_charge",
            "resolved",
            later_id,
            "worker",
        )
        assert inquiry.resolved_at <= inquiry.resolution_due_at  # well inside the 1-hour target
        assert session.get(Payment, first_id).refunded_amount == 0
        assert session.get(Payment, later_id).refunded_amount == 39000
        created = inquiries.events_of(session, inquiry.id)[0]
        assert created.detail["original_payment_id"] == first_id
        kinds = [e.kind for e in inquiries.events_of(session, inquiry.id)]
        assert kinds == ["created", "refund", "reply", "resolve"]
        messages = session.exec(select(Message).where(Message.customer_id == inquiry.customer_id)).all()
        assert len(messages) == 1 and "자동으로 취소" in messages[0].text


def test_sentinel_finishes_after_a_crash_between_steps(engine: Engine, actors: dict[str, Actor]) -> None:
    _two_payments_same_order(engine)

    def broken(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("gateway down")

    counts = inquiry_jobs.double_charge_sentinel(engine, k("2026-11-23 10:01"), refund_fn=broken)
    assert counts["opened"] == 1 and counts["failed"] == 1
    gateway = FakeGateway()
    counts = inquiry_jobs.double_charge_sentinel(engine, k("2026-11-23 10:02"), refund_fn=gateway)
    assert counts["opened"] == 0 and counts["refunded"] == 1 and gateway.calls == 1
    with Session(engine) as session:
        assert len(session.exec(select(Inquiry)).all()) == 1


def test_sentinel_same_customer_amount_product_within_window(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    with Session(engine) as session:
        customer = make_customer(session)
        product = make_product(session)
        other = make_product(session, "드립백", 39000)
        orders = [
            make_order(session, customer, p, number=f"ORD-{i}")
            for i, p in enumerate([product, product, other, product])
        ]
        make_payment(session, customer, orders[0], 39000, k("2026-11-23 10:00"), "a")
        dup = make_payment(session, customer, orders[1], 39000, k("2026-11-23 10:03"), "b")
        make_payment(session, customer, orders[2], 39000, k("2026-11-23 10:04"), "c")  # other product
        make_payment(session, customer, orders[3], 39000, k("2026-11-23 10:30"), "d")  # outside window
        dup_id = dup.id
        session.commit()
    gateway = FakeGateway()
    counts = inquiry_jobs.double_charge_sentinel(
        engine, k("2026-11-23 10:31"), refund_fn=gateway, window=timedelta(minutes=10)
    )
    assert counts["refunded"] == 1
    with Session(engine) as session:
        assert session.exec(select(Inquiry.payment_id)).all() == [dup_id]


def test_find_duplicates_is_pure_and_keeps_the_earliest() -> None:
    at = k("2026-11-23 10:00")
    facts = [
        sentinel.PaymentFact(3, 1, 7, 100, at + timedelta(seconds=2), ("p1",)),
        sentinel.PaymentFact(1, 1, 7, 100, at, ("p1",)),
        sentinel.PaymentFact(2, 1, 7, 100, at + timedelta(seconds=1), ("p1",)),
        sentinel.PaymentFact(4, 2, None, 100, at, ()),
        sentinel.PaymentFact(5, 2, None, 100, at, ()),  # no order, no products: not judged
    ]
    pairs = sentinel.find_duplicates(facts, timedelta(minutes=10))
    assert sorted((p.original.id, p.duplicate.id, p.rule) for p in pairs) == [
        (1, 2, "same_order"),
        (1, 3, "same_order"),
    ]


@pytest.mark.parametrize("amount", [39001, 10**9])
def test_refund_larger_than_refundable_rejected(
    engine: Engine, actors: dict[str, Actor], amount: int
) -> None:
    _, later_id = _two_payments_same_order(engine)
    with clock.frozen(k("2026-11-23 10:05")), Session(engine) as session:
        payment = session.get(Payment, later_id)
        inquiry = inquiries.create_inquiry(
            session, actors["cs"], customer_id=payment.customer_id, body="환불"
        )
        with pytest.raises(ValidationFailed, match="환불 가능 금액"):
            inquiries.refund(
                session,
                actors["cs"],
                inquiry.id,
                payment_id=later_id,
                amount=amount,
                reason="x",
                refund_fn=FakeGateway(),
            )


def test_sentinel_with_real_refund_service_and_sandbox_gateway(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    """End to end: two approved sandbox payments for one order; core.payments.refunds.refund_payment cancels the later."""
    import functools

    from core.models import Order, OrderItem, SandboxPayment
    from core.payments.gateways.base import ApproveRequest, ReadyRequest
    from core.payments.refunds import refund_payment
    from tests.payments.helpers import sandbox_router

    sandbox, router = sandbox_router(engine)
    with Session(engine, expire_on_commit=False) as session:
        customer = make_customer(session)
        session.commit()
        tids = []
        for attempt in range(2):  # the same order paid twice (a double tap on 결제하기)
            ready = sandbox.ready(ReadyRequest(
                partner_order_id=f"DC-1-{attempt}",
                partner_user_id=customer.public_id,
                item_name="원두",
                quantity=1,
                total_amount=39000,
                tax_free_amount=0,
                approval_url="a",
                cancel_url="c",
                fail_url="f",
            ))
            token = sandbox.select_method(ready.tid, "CARD")
            approved = sandbox.approve(ApproveRequest(
                tid=ready.tid,
                partner_order_id=f"DC-1-{attempt}",
                partner_user_id=customer.public_id,
                pg_token=token,
            ))
            tids.append(approved.tid)
        order = Order(order_number="DC-1", customer_id=customer.id, total_amount=39000, status="paid")
        session.add(order)
        session.flush()
        session.add(
            OrderItem(order_id=order.id, product_name="원두", quantity=1, unit_price=39000, amount=39000)
        )
        for attempt, tid in enumerate(tids):
            session.add(
                Payment(
                    order_id=order.id,
                    customer_id=customer.id,
                    gateway="sandbox",
                    gateway_tid=tid,
                    method="CARD",
                    amount=39000,
                    status="approved",
                    idempotency_key=f"dc-{attempt}",
                    approved_at=k("2026-11-23 10:00") + timedelta(seconds=attempt),
                )
            )
        session.commit()
    refund = functools.partial(refund_payment, router=router)
    for minute in (1, 2, 3):
        inquiry_jobs.double_charge_sentinel(
            engine, k("2026-11-23 10:00") + timedelta(minutes=minute), refund_fn=refund
        )
    with Session(engine) as session:
        first, later = session.exec(select(Payment).order_by(Payment.id)).all()
        assert (first.refunded_amount, later.refunded_amount, later.status) == (0, 39000, "refunded")
        assert session.get(SandboxPayment, tids[1]).canceled_amount == 39000
        assert session.get(SandboxPayment, tids[0]).canceled_amount == 0
        assert len(session.exec(select(Refund)).all()) == 1
        inquiry = session.exec(select(Inquiry)).one()
        assert inquiry.status == "resolved" and inquiry.payment_id == later.id
