"""The refund rules that carry money: the tax-free split KakaoPay expects, the exact limits, and
payments this shop cannot refund through a gateway (imported from a CSV file).

The tax-free rule (KakaoPay's cancel_tax_free_amount): after refunds adding up to R of a payment
of T with F tax-free, F * R // T of the tax-free part has been refunded. Each refund sends the
difference from what was refunded (or is being refunded) before it, so the parts always add up to
F and the last refund takes what is left.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from core.accounts.actor import Actor
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import AuditLog, Payment, Refund, Role, SandboxPayment
from core.payments import refunds
from core.payments.order_import import import_orders
from core.payments.orders import check_amount
from core.payments.refunds import (
    order_refunded_amount,
    refund_payment,
    refund_tax_free_amount,
    refundable_amount,
    settle_pending_refund,
)
from tests.payments.helpers import paid_order, sandbox_router, stored_actors


@pytest.fixture
def actors(engine):
    return stored_actors(engine)  # who asks, without hashing three passwords per test


@pytest.fixture
def sqlite_actors(sqlite_engine):
    return stored_actors(sqlite_engine)


def _split(total: int, tax_free: int, amounts: list[int]) -> list[int]:
    parts: list[int] = []
    for amount in amounts:
        parts.append(refund_tax_free_amount(total, tax_free, sum(amounts[: len(parts)]), sum(parts), amount))
    return parts


# (total, tax_free, refunds, tax-free parts by the rule F * R // T, worked out by hand)
SPLITS = [
    (30_000, 1_001, [15_000, 15_000], [500, 501]),  # 500.5 -> 500, the last takes 501
    (30_000, 1_001, [10_000, 10_000, 10_000], [333, 334, 334]),  # 333.67, 667.33, 1001
    (30_000, 1_001, [30_000], [1_001]),  # one full refund: all of it
    (30_000, 3_000, [10_000, 20_000], [1_000, 2_000]),  # divides evenly
    (30_000, 0, [10_000, 20_000], [0, 0]),  # nothing tax-free
    (30_000, 30_000, [1, 29_999], [1, 29_999]),  # all tax-free: every won is tax-free
    (30_000, 1_001, [1, 29_999], [0, 1_001]),  # a 1원 refund has no tax-free part yet
    (30_000, 1_001, [29_999, 1], [1_000, 1]),  # the last 1원 carries the rounding
    (10, 3, [1] * 10, [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]),  # 0.3 per refund, carried until whole
    (39_000, 13_000, [13_000, 13_000, 13_000], [4_333, 4_333, 4_334]),
]


@pytest.mark.parametrize(("total", "tax_free", "refunds", "parts"), SPLITS)
def test_partial_refunds_split_tax_free_by_what_was_refunded_before(total, tax_free, refunds, parts):
    assert _split(total, tax_free, refunds) == parts


@given(
    total=st.integers(1, 10_000_000),
    share=st.floats(0, 1),
    cuts=st.lists(st.floats(0, 1), max_size=6),
)
def test_any_full_split_refunds_exactly_the_tax_free_part(total, share, cuts):
    """Whatever the split, a fully refunded payment refunds exactly its tax-free part, and no refund's
    tax-free part is negative or larger than the refund."""
    tax_free = int(total * share)
    points = sorted({0, total, *(int(total * c) for c in cuts)})
    refunds = [b - a for a, b in zip(points, points[1:], strict=False)]
    parts = _split(total, tax_free, refunds)
    assert sum(parts) == tax_free
    assert all(0 <= part <= amount for part, amount in zip(parts, refunds, strict=True))


def _refund(session, actor, router, payment, amount, key, reason="부분 환불"):
    return refund_payment(
        session,
        actor,
        payment_id=payment.id,
        amount=amount,
        reason=reason,
        idempotency_key=key,
        router=router,
    )


@pytest.mark.parametrize(
    ("tax_free", "refunds", "parts"),
    [
        (1_001, [15_000, 15_000], [500, 501]),
        (1_001, [10_000, 10_000, 10_000], [333, 334, 334]),
        (30_000, [10_000, 20_000], [10_000, 20_000]),  # all tax-free (books, fresh food): every won
    ],
)
def test_gateway_receives_the_tax_free_split_of_partial_refunds(engine, actors, tax_free, refunds, parts):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000, tax_free=tax_free)
    with Session(engine, expire_on_commit=False) as session:
        done = [_refund(session, actors["cs"], router, payment, a, f"r{i}") for i, a in enumerate(refunds)]
        assert [r.tax_free_amount for r in done] == parts
        assert all(r.status == "succeeded" for r in done)
        row = session.get(SandboxPayment, payment.gateway_tid)
        assert (row.status, row.canceled_amount, row.canceled_tax_free_amount) == (
            "CANCEL_PAYMENT",
            30_000,
            tax_free,
        )


def test_the_tax_free_split_counts_only_the_refunds_of_the_same_payment(engine, actors):
    """Another payment's refunds are not this payment's history: its first half refund is 500, not 501."""
    sandbox, router = sandbox_router(engine)
    first = paid_order(engine, sandbox, amount=30_000, tax_free=1_001, number="T-1")
    second = paid_order(engine, sandbox, amount=30_000, tax_free=1_001, number="T-2", phone="01099998888")
    with Session(engine, expire_on_commit=False) as session:
        assert _refund(session, actors["cs"], router, first, 15_000, "a").tax_free_amount == 500
        assert _refund(session, actors["cs"], router, second, 15_000, "b").tax_free_amount == 500


def test_a_refund_the_gateway_is_too_busy_for_stays_requested_and_is_sent_once_later(engine, actors):
    """Busy on every try: nothing happened, so the refund waits (REQUESTED, the money reserved) and the
    reconciliation sends it once it is free, after a lookup; never a second refund."""
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000)
    sandbox.inject("cancel", "busy", times=router.max_attempts)
    with Session(engine, expire_on_commit=False) as session:
        pending = _refund(session, actors["cs"], router, payment, 10_000, "busy")
        session.expire_all()
        stored = session.get(Refund, pending.id)
        assert (pending.status, stored.status) == ("requested", "requested")
        assert session.get(Payment, payment.id).refunded_amount == 10_000  # reserved, not refundable twice
        settled = settle_pending_refund(session, pending.id, router=router)
        assert settled.status == "succeeded"
        assert sandbox.calls.count("cancel") == router.max_attempts + 1
        assert session.get(SandboxPayment, payment.gateway_tid).canceled_amount == 10_000


def test_tax_free_of_a_refund_still_in_flight_counts_as_refunded(engine, actors):
    """A refund whose answer is lost still holds its tax-free part: the next one must not take it too."""
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000, tax_free=1_001)
    sandbox.inject("cancel", "timeout")  # the cancel happens, the answer is lost
    sandbox.inject("lookup", "busy", times=3)  # and the lookup cannot tell yet: stays UNKNOWN
    with Session(engine, expire_on_commit=False) as session:
        first = _refund(session, actors["cs"], router, payment, 15_000, "a")
        assert (first.status, first.tax_free_amount) == ("unknown", 500)
        second = _refund(session, actors["cs"], router, payment, 15_000, "b")
        assert (second.status, second.tax_free_amount) == ("succeeded", 501)
        settled = settle_pending_refund(session, first.id, router=router)
        assert settled.status == "succeeded"
        assert sandbox.calls.count("cancel") == 2  # one per refund, none sent twice
        row = session.get(SandboxPayment, payment.gateway_tid)
        assert (row.canceled_amount, row.canceled_tax_free_amount) == (30_000, 1_001)


def test_a_failed_refund_gives_its_tax_free_part_back(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=30_000, tax_free=1_001)
    sandbox.inject("cancel", "decline")
    with Session(engine, expire_on_commit=False) as session:
        with pytest.raises(ValidationFailed, match="거절"):
            _refund(session, actors["cs"], router, payment, 10_000, "declined")
        parts = [
            _refund(session, actors["cs"], router, payment, a, k).tax_free_amount
            for a, k in [(10_000, "a"), (20_000, "b")]
        ]
        assert parts == [333, 668]  # as if the declined refund never happened
        row = session.get(SandboxPayment, payment.gateway_tid)
        assert (row.canceled_amount, row.canceled_tax_free_amount) == (30_000, 1_001)


@pytest.mark.parametrize(
    ("refunded_first", "second", "allowed"),
    [
        (0, 30_000, True),  # the whole payment at once
        (10_000, 20_000, True),  # exactly what is left
        (10_000, 20_001, False),  # 1원 more than what is left
        (0, 30_001, False),
    ],
)
def test_a_refund_may_take_exactly_what_is_left_and_not_one_won_more(
    sqlite_engine, sqlite_actors, refunded_first, second, allowed
):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=30_000)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        if refunded_first:
            _refund(session, sqlite_actors["cs"], router, payment, refunded_first, "first")
        if allowed:
            refund = _refund(session, sqlite_actors["cs"], router, payment, second, "second")
            assert refund.status == "succeeded"
            paid = session.get(Payment, payment.id)
            assert (paid.status, paid.refunded_amount) == ("refunded", 30_000)
        else:
            with pytest.raises(Conflict, match="20,000원|30,000원"):
                _refund(session, sqlite_actors["cs"], router, payment, second, "second")
            session.expire_all()
            assert session.get(Payment, payment.id).refunded_amount == refunded_first
            assert session.exec(select(Refund).where(Refund.idempotency_key == "second")).first() is None


@pytest.mark.parametrize(("length", "allowed"), [(1, True), (500, True), (501, False)])
def test_refund_reason_is_at_most_500_characters(sqlite_engine, sqlite_actors, length, allowed):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox)
    reason = ("고객 변심 😢 " * 100)[:length]  # Korean and emoji, as staff type it
    with Session(sqlite_engine, expire_on_commit=False) as session:
        if allowed:
            refund = _refund(session, sqlite_actors["cs"], router, payment, 1_000, "k", reason=reason)
            assert refund.reason == reason.strip()
        else:
            with pytest.raises(ValidationFailed, match="500자"):
                _refund(session, sqlite_actors["cs"], router, payment, 1_000, "k", reason=reason)
            assert session.exec(select(Refund)).first() is None
            assert "cancel" not in sandbox.calls


IMPORTED = (
    "주문번호,주문일시,고객명,연락처,상품명,수량,단가,면세금액\n"
    "20261101-0001,2026-11-01 14:30,김민지,010-1234-5678,수분크림 50ml,1,32000,0\n"
)


def test_an_imported_payment_is_refused_in_korean_and_nothing_is_reserved(sqlite_engine, sqlite_actors):
    """A payment imported from a CSV file has no gateway transaction: refunding it here cannot work,
    so it is refused before any money is reserved (never left REQUESTED with the money locked)."""
    sandbox, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        import_orders(session, sqlite_actors["owner"], IMPORTED.encode())
        session.commit()
        payment = session.exec(select(Payment)).one()
        assert (payment.gateway_tid, payment.status) == (None, "approved")
        with pytest.raises(ValidationFailed) as refused:
            _refund(session, sqlite_actors["cs"], router, payment, 32_000, "imported")
        message = str(refused.value)
        assert "거래번호" in message and "환불" in message
        assert not any("a" <= ch.lower() <= "z" for ch in message)  # no code names, no English
        session.expire_all()
        assert session.get(Payment, payment.id).refunded_amount == 0
        assert session.exec(select(Refund)).first() is None
        assert session.exec(select(AuditLog).where(AuditLog.action == "refund.request")).first() is None
        assert "cancel" not in sandbox.calls


@pytest.mark.parametrize("status", ["refunded", "failed", "ready", "unknown"])
def test_a_payment_not_paid_or_already_refunded_is_refused_in_korean(sqlite_engine, sqlite_actors, status):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        row = session.get(Payment, payment.id)
        row.status = status
        session.add(row)
        session.commit()
        with pytest.raises(ValidationFailed, match="환불할 수 없는 결제 상태") as refused:
            _refund(session, sqlite_actors["cs"], router, payment, 1_000, "k")
        assert not any("a" <= ch.lower() <= "z" for ch in str(refused.value))
        assert session.exec(select(Refund)).first() is None
        assert "cancel" not in sandbox.calls


# (total, tax-free, refunded before, tax-free refunded before, amount, tax-free part)
CLAMPS = [
    (30_000, 1_001, 15_000, 1_001, 5_000, 0),  # history from before the fix sent too much: never negative
    (30_000, 1_001, 20_000, 667, 20_000, 334),  # more than is left (a caller's bug): never past the rest
    (30_000, 1_001, 0, 0, 30_000, 1_001),
    (30_000, 0, 0, 0, 30_000, 0),
]


@pytest.mark.parametrize(("total", "tax_free", "before", "tax_free_before", "amount", "part"), CLAMPS)
def test_a_tax_free_part_is_never_negative_nor_more_than_what_is_left(
    total, tax_free, before, tax_free_before, amount, part
):
    assert refund_tax_free_amount(total, tax_free, before, tax_free_before, amount) == part


def test_a_refund_request_records_who_what_and_why(sqlite_engine, sqlite_actors):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=30_000, tax_free=1_001)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        refund = _refund(
            session, sqlite_actors["cs"], router, payment, 15_000, "k", reason="  파손 교환 불가  "
        )
        assert (refund.payment_id, refund.order_id, refund.amount) == (payment.id, payment.order_id, 15_000)
        assert (refund.reason, refund.requested_by, refund.idempotency_key) == (
            "파손 교환 불가",
            sqlite_actors["cs"].id,
            "k",
        )
        row = session.exec(select(AuditLog).where(AuditLog.action == "refund.request")).one()
        assert (row.actor_id, row.entity_type, row.entity_id) == (
            sqlite_actors["cs"].id,
            "refund",
            str(refund.id),
        )
        assert row.detail == {"payment_id": payment.id, "amount": 15_000, "reason": "파손 교환 불가"}


class ReachedTheStore(Exception):
    """Raised by a session that must not be touched: the request passed every check before the store."""


class Untouchable:
    """A session for the checks a refund request passes before anything is read or written."""

    def __getattr__(self, name: str):
        raise ReachedTheStore(name)


def _check(actor_role: Role = Role.CS, amount=1_000, reason="고객 변심", key="k"):
    refund_payment(
        Untouchable(),
        Actor(id=1, name="담당", role=actor_role),
        payment_id=1,
        amount=amount,
        reason=reason,
        idempotency_key=key,
    )


@pytest.mark.parametrize("role", [Role.OWNER, Role.CS])
def test_the_owner_and_cs_may_refund(role):
    with pytest.raises(ReachedTheStore):
        _check(role)


def test_operations_staff_may_not_refund_and_nothing_is_read():
    with pytest.raises(PermissionDenied, match="^권한이 없습니다 \\(운영 스태프 → 사장님, CS 담당 필요\\)$"):
        _check(Role.STAFF)


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (0, "^환불 금액은\\(는\\) 0보다 커야 합니다: 0$"),
        (-1, "^환불 금액은\\(는\\) 0보다 커야 합니다: -1$"),
        (1.5, "^환불 금액은\\(는\\) 원 단위 정수여야 합니다: 1.5$"),
        ("1000", "^환불 금액은\\(는\\) 원 단위 정수여야"),
        (True, "^환불 금액은\\(는\\) 원 단위 정수여야"),
        (100_000_001, "^환불 금액이\\(가\\) 너무 큽니다"),
    ],
)
def test_a_refund_amount_is_whole_won_above_0_and_refused_in_korean_before_the_store(amount, error):
    with pytest.raises(ValidationFailed, match=error):
        _check(amount=amount)


@pytest.mark.parametrize("amount", [1, 100_000_000])
def test_a_refund_of_1_won_up_to_100_million_passes_the_amount_check(amount):
    with pytest.raises(ReachedTheStore):
        _check(amount=amount)


# (reason, request key, the Korean refusal or None when the request passes every check)
REASONS_AND_KEYS = [
    ("", "k", "^환불 사유를 입력하세요$"),
    ("   ", "k", "^환불 사유를 입력하세요$"),
    (None, "k", "^환불 사유를 입력하세요$"),
    ("x", "k", None),
    ("가" * 500, "k", None),  # exactly 500 characters
    (" " + "가" * 500 + " ", "k", None),  # counted after trimming
    ("가" * 501, "k", "^환불 사유는 500자 이내로 입력하세요$"),
    ("x", "", "^환불 요청 키가 올바르지 않습니다 \\(1~120자\\)$"),
    ("x", "   ", "^환불 요청 키가 올바르지 않습니다 \\(1~120자\\)$"),
    ("x", None, "^환불 요청 키가 올바르지 않습니다 \\(1~120자\\)$"),
    ("x", "k" * 120, None),
    ("x", f" {'k' * 120} ", None),  # trimmed before it is counted
    ("x", "k" * 121, "^환불 요청 키가 올바르지 않습니다 \\(1~120자\\)$"),
    ("가" * 501, "", "^환불 사유는 500자"),  # the reason is checked first
]


@pytest.mark.parametrize(("reason", "key", "error"), REASONS_AND_KEYS)
def test_a_refund_needs_a_reason_of_at_most_500_characters_and_a_request_key_of_1_to_120(reason, key, error):
    """Bad input is refused in Korean before anything is read or written (nothing reserved)."""
    if error is None:
        with pytest.raises(ReachedTheStore):
            _check(reason=reason, key=key)
    else:
        with pytest.raises(ValidationFailed, match=error):
            _check(reason=reason, key=key)


@pytest.mark.parametrize(
    ("amount", "refunded", "left"), [(30_000, 0, 30_000), (30_000, 10_000, 20_000), (30_000, 30_000, 0)]
)
def test_what_is_left_to_refund_is_what_was_paid_less_what_was_refunded(amount, refunded, left):
    assert refundable_amount(Payment(amount=amount, refunded_amount=refunded)) == left


# (order total, what its payments collected, what refunds gave back, what the customer got back)
ORDER_REFUNDS = [
    (30_000, 30_000, 0, 0),
    (30_000, 30_000, 10_000, 10_000),
    (30_000, 30_000, 30_000, 30_000),
    (30_000, 60_000, 30_000, 0),  # a double charge given back: the order is still paid
    (30_000, 60_000, 40_000, 10_000),
    (30_000, 60_000, 60_000, 30_000),
    (30_000, 20_000, 0, 10_000),  # paid short (a part collected elsewhere): never below 0 nor above
    (30_000, 0, 0, 30_000),
    (30_000, 90_000, 0, 0),
]


@pytest.mark.parametrize(("total", "collected", "given_back", "refunded"), ORDER_REFUNDS)
def test_an_order_counts_as_refunded_only_what_went_back_beyond_an_extra_charge(
    total, collected, given_back, refunded
):
    assert order_refunded_amount(total, collected, given_back) == refunded


def test_a_request_key_of_120_characters_is_accepted_and_trimmed(sqlite_engine, sqlite_actors):
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        refund = _refund(session, sqlite_actors["cs"], router, payment, 1_000, f" {'k' * 120} ")
        assert refund.idempotency_key == "k" * 120 and refund.status == "succeeded"


def test_the_same_key_for_another_payment_is_refused(sqlite_engine, sqlite_actors):
    sandbox, router = sandbox_router(sqlite_engine)
    first = paid_order(sqlite_engine, sandbox, number="T-1")
    second = paid_order(sqlite_engine, sandbox, number="T-2", phone="01099998888")
    with Session(sqlite_engine, expire_on_commit=False) as session:
        _refund(session, sqlite_actors["cs"], router, first, 1_000, "same")
        with pytest.raises(ValidationFailed, match="^같은 요청 키로 다른 환불을 요청했습니다$"):
            _refund(session, sqlite_actors["cs"], router, second, 1_000, "same")
        assert session.get(Payment, second.id).refunded_amount == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (30_000, 30_000), (30_000.0, 30_000), (100_000_000, 100_000_000)],
)
def test_an_amount_is_whole_won_up_to_100_million(value, expected):
    assert check_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, "^금액은\\(는\\) 0보다 커야 합니다: 0$"),
        (-1, "^금액은\\(는\\) 0보다 커야 합니다: -1$"),
        (1.5, "^금액은\\(는\\) 원 단위 정수여야 합니다: 1.5$"),
        ("1000", "원 단위 정수여야"),
        (True, "원 단위 정수여야"),
        (None, "원 단위 정수여야"),
        (100_000_001, "^금액이\\(가\\) 너무 큽니다: 100,000,001원 \\(최대 100,000,000원\\)$"),
    ],
)
def test_an_amount_that_is_not_whole_won_or_is_absurd_is_refused(value, error):
    with pytest.raises(ValidationFailed, match=error):
        check_amount(value)


def test_zero_is_an_amount_only_where_allowed():
    assert check_amount(0, "면세 금액", allow_zero=True) == 0
    with pytest.raises(ValidationFailed, match="^면세 금액은\\(는\\) 0 이상이어야 합니다: -1$"):
        check_amount(-1, "면세 금액", allow_zero=True)


def test_the_same_key_reserved_by_a_concurrent_click_returns_that_refund_and_reserves_nothing_more(
    sqlite_engine, sqlite_actors, monkeypatch
):
    """Two clicks of one refund: the one whose reservation loses the race on the unique request key
    returns the winner's refund; the money is reserved and sent once."""
    sandbox, router = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=30_000)
    real_reserve = refunds._reserve_refund
    winner: list[Refund] = []

    def other_click_first(session, *args):
        monkeypatch.setattr(refunds, "_reserve_refund", real_reserve)  # the other click runs unhindered
        session.rollback()  # nothing written yet; the other click's session may write now
        with Session(sqlite_engine, expire_on_commit=False) as other:
            winner.append(_refund(other, sqlite_actors["owner"], router, payment, 10_000, "same"))
        return real_reserve(session, *args)

    with Session(sqlite_engine, expire_on_commit=False) as session:
        _refund(session, sqlite_actors["cs"], router, payment, 5_000, "earlier")  # another refund's row
        monkeypatch.setattr(refunds, "_reserve_refund", other_click_first)
        returned = _refund(session, sqlite_actors["cs"], router, payment, 10_000, "same")
        assert (returned.id, returned.status) == (winner[0].id, "succeeded")
        session.expire_all()
        assert session.get(Payment, payment.id).refunded_amount == 15_000
        assert sandbox.calls.count("cancel") == 2  # the earlier refund and the winner, nothing twice


def test_without_a_router_the_refund_goes_through_the_configured_gateway(sqlite_engine, sqlite_actors):
    """The 주문 page passes no router: the configured gateway (the sandbox here, kept in the same store)."""
    sandbox, _ = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=30_000)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        refund = refund_payment(
            session,
            sqlite_actors["cs"],
            payment_id=payment.id,
            amount=30_000,
            reason="변심",
            idempotency_key="k",
        )
        assert refund.status == "succeeded"
        assert session.get(SandboxPayment, payment.gateway_tid).canceled_amount == 30_000
