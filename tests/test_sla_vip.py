"""A VIP customer's inquiry gets the shorter VIP answer targets (설정 → VIP 고객), never a longer one,
kept for the inquiry's life; everyone else keeps the type's targets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.customers import vip
from core.errors import PermissionDenied, ValidationFailed
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.payments.orders import record_paid_order
from tests.inquiry_helpers import make_customer

MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("first", "resolution", "vip_first", "vip_resolution", "expected"),
    [
        (240, 4320, None, None, (240, 4320)),  # no VIP targets: the type's
        (240, 4320, 30, None, (30, 4320)),  # only first response set
        (240, 4320, None, 600, (240, 600)),
        (240, 4320, 30, 600, (30, 600)),
        (5, 10, 30, 600, (5, 10)),  # a receipt's 5 minutes is never lengthened to the VIP's 30
        (30, 240, 30, 240, (30, 240)),  # equal: the same
        (30, 240, 29, 239, (29, 239)),  # one minute shorter: the VIP's
    ],
)
def test_vip_targets_only_ever_shorten(first, resolution, vip_first, vip_resolution, expected) -> None:  # type: ignore[no-untyped-def]
    policy = sla.policy_minutes("other", first, resolution)
    chosen = sla.vip_policy(
        policy,
        vip_first * MIN if vip_first is not None else None,
        vip_resolution * MIN if vip_resolution is not None else None,
    )
    assert (chosen.first_response / MIN, chosen.resolution / MIN) == expected
    assert chosen.calendar == policy.calendar and chosen.at_risk_share == policy.at_risk_share


def _spend(session: Session, customer_id: int, amount: int) -> None:
    now = clock.now()
    record_paid_order(
        session,
        order_number=f"SLA-{customer_id}-{amount}",
        customer_id=customer_id,
        product_id=None,
        item_name="원두",
        amount=amount,
        tax_free_amount=0,
        source="link",
        ordered_at=now,
        paid_at=now,
    )


def test_a_vip_customers_inquiry_is_due_at_the_vip_target(session: Session, actors: dict[str, Actor]) -> None:
    owner = actors["owner"]
    vip.save(session, owner, {"min_spend": 500_000})
    inquiries.save_vip_sla(session, owner, first_response_minutes=15, resolution_minutes=None)
    policy = inquiries.policy.load(session)
    regular, star = make_customer(session, "일반"), make_customer(session, "단골")
    _spend(session, regular.id, 499_999)  # one 원 under the bar
    _spend(session, star.id, 500_000)  # at the bar
    other = inquiries.create_inquiry(
        session, actors["cs"], customer_id=regular.id, body="배송 문의", inquiry_type="other"
    )
    mine = inquiries.create_inquiry(
        session, actors["cs"], customer_id=star.id, body="배송 문의", inquiry_type="other"
    )
    assert (other.vip, mine.vip) == (False, True)
    calendar = policy.business_calendar
    start = clock.now()
    assert mine.first_response_due_at == sla.deadline(calendar, start, 15 * MIN)
    assert other.first_response_due_at == sla.deadline(calendar, start, policy.policy("other").first_response)
    # Resolution had no VIP target: the type's, for both.
    assert mine.resolution_due_at == other.resolution_due_at


def test_the_vip_target_stays_with_the_inquiry_and_a_change_re_times_open_ones(
    session: Session, actors: dict[str, Actor]
) -> None:
    owner = actors["owner"]
    vip.save(session, owner, {"min_spend": 100_000})
    star = make_customer(session, "단골")
    _spend(session, star.id, 100_000)
    inquiry = inquiries.create_inquiry(
        session, actors["cs"], customer_id=star.id, body="문의", inquiry_type="other"
    )
    before = inquiry.first_response_due_at
    inquiries.save_vip_sla(session, owner, first_response_minutes=10, resolution_minutes=None)
    session.flush()  # recompute_open re-timed the open inquiries in this session
    assert inquiry.first_response_due_at is not None and inquiry.first_response_due_at < before
    # The bar rises: the customer is no VIP any more, the open inquiry keeps the target it was given.
    vip.save(session, owner, {"min_spend": 900_000})
    inquiries.recompute(session, inquiry)
    assert inquiry.vip and not vip.is_vip_customer(session, star.id)


@pytest.mark.parametrize("minutes", [0, -5, True, 10**9, "15"])
def test_a_bad_vip_target_is_refused_in_korean(session: Session, actors: dict[str, Actor], minutes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed, match="VIP 첫 응답"):
        inquiries.save_vip_sla(
            session, actors["owner"], first_response_minutes=minutes, resolution_minutes=None
        )


def test_only_the_owner_sets_vip_targets(session: Session, actors: dict[str, Actor]) -> None:
    with pytest.raises(PermissionDenied):
        inquiries.save_vip_sla(session, actors["cs"], first_response_minutes=10, resolution_minutes=None)
