"""The CS targets of the seed (결제 관련 고객 응대 가이드) at their boundaries, through the SLA states.

결제 오류 30분, 이중 결제 1시간, 환불 요청 24시간, 영수증 요청 즉시 (5 minutes here). Rules: the
customer's clock stops at the first answer the customer sees (a reply or a receipt sent); an answer
at exactly the deadline is on time; waiting on the customer pauses the clock only while the inquiry
is open; the time between resolve and reopen never counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import sla
from core.clock import KST
from core.settings_store import DEFAULTS
from core.sla import SlaEvent, SlaState

BUSINESS = sla.business(DEFAULTS["business_hours"])  # Mon-Fri 09-12, 13-18 KST
M = timedelta(minutes=1)
S = timedelta(seconds=1)
H = timedelta(hours=1)
MONDAY_9 = datetime(2027, 3, 15, 9, 0, tzinfo=KST).astimezone(UTC)  # a Monday, no holiday
PAYMENT_ERROR = sla.DEFAULT_POLICIES["payment_error"]  # 30 min first response, 4 h resolution
RECEIPT = sla.DEFAULT_POLICIES["receipt_request"]  # 5 min first response, 10 min resolution


def _events(*pairs: tuple[timedelta, str]) -> list[SlaEvent]:
    return [SlaEvent(MONDAY_9, "created"), *(SlaEvent(MONDAY_9 + at, kind) for at, kind in pairs)]


def _evaluate(policy: sla.Policy, events: list[SlaEvent], now: timedelta) -> sla.InquirySla:
    return sla.evaluate(policy, BUSINESS, events, MONDAY_9 + now)


# ------------------------------------------------------------------ what stops the first-response clock


@pytest.mark.parametrize(
    ("kind", "stops"),
    [("reply", True), ("receipt", True), ("note", False), ("assign", False), ("customer_message", False)],
)
def test_a_receipt_sent_answers_the_customer_like_a_reply(kind, stops):
    """영수증 요청: sending the receipt is the answer; an internal note or an assignment is not."""
    result = _evaluate(RECEIPT, _events((3 * M, kind)), now=20 * M)
    first = result.first_response
    if stops:
        assert (first.state, first.stopped_at, first.used) == (SlaState.MET, MONDAY_9 + 3 * M, 3 * M)
        assert result.nearest is result.resolution
    else:
        assert (first.state, first.stopped_at) == (SlaState.BREACHED, None)
        assert first.late_by == 15 * M
        assert result.nearest is first


def test_a_resolve_without_an_answer_answers_the_customer():
    result = _evaluate(PAYMENT_ERROR, _events((10 * M, "resolve")), now=2 * H)
    assert (result.first_response.state, result.first_response.stopped_at) == (
        SlaState.MET,
        MONDAY_9 + 10 * M,
    )
    assert result.resolution.state == SlaState.MET


def test_only_the_first_answer_counts():
    result = _evaluate(PAYMENT_ERROR, _events((40 * M, "receipt"), (50 * M, "reply")), now=2 * H)
    assert result.first_response.state == SlaState.MISSED
    assert result.first_response.late_by == 10 * M


# ------------------------------------------------------------------ the answer at the deadline


@pytest.mark.parametrize(
    ("answer_at", "state"),
    [
        (29 * M, SlaState.MET),
        (30 * M - S, SlaState.MET),
        (30 * M, SlaState.MET),
        (30 * M + S, SlaState.MISSED),
    ],
)
def test_an_answer_at_exactly_the_deadline_is_on_time(answer_at, state):
    first = _evaluate(PAYMENT_ERROR, _events((answer_at, "reply")), now=H).first_response
    assert first.due_at == MONDAY_9 + 30 * M
    assert first.state == state
    assert first.late_by == (answer_at - 30 * M if state == SlaState.MISSED else None)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (24 * M - S, SlaState.ON_TRACK),
        (24 * M, SlaState.AT_RISK),  # 80% of 30 minutes used: warn before the breach
        (30 * M, SlaState.AT_RISK),  # the deadline itself is not yet late
        (30 * M + S, SlaState.BREACHED),
    ],
)
def test_an_open_inquiry_is_at_risk_from_80_percent_and_breached_only_after_the_deadline(now, state):
    first = _evaluate(PAYMENT_ERROR, _events(), now=now).first_response
    assert first.state == state
    assert first.at_risk_at == MONDAY_9 + 24 * M
    assert first.late_by == (now - 30 * M if state == SlaState.BREACHED else None)


# ------------------------------------------------------------------ waiting on the customer


@pytest.mark.parametrize("order", ["reply first", "wait first"])
def test_a_pause_starting_at_the_answer_does_not_move_the_answered_deadline(order):
    """The reply and "waiting on the customer" recorded at the same instant: the first response is
    answered then, so the pause that follows cannot stretch its deadline."""
    pairs = [(10 * M, "reply"), (10 * M, "wait_customer")]
    if order == "wait first":
        pairs.reverse()
    events = _events(*pairs, (70 * M, "customer_message"))
    first = _evaluate(PAYMENT_ERROR, events, now=2 * H).first_response
    assert (first.state, first.stopped_at, first.used) == (SlaState.MET, MONDAY_9 + 10 * M, 10 * M)
    assert first.due_at == MONDAY_9 + 30 * M
    assert first.wall_clock_due_at == MONDAY_9 + 30 * M


def test_waiting_on_the_customer_pauses_both_clocks_until_the_customer_writes():
    events = _events((5 * M, "wait_customer"))
    paused = _evaluate(PAYMENT_ERROR, events, now=3 * H)
    assert paused.first_response.state == SlaState.PAUSED and paused.first_response.due_at is None
    assert paused.resolution.state == SlaState.PAUSED and paused.resolution.used == 5 * M
    back = _evaluate(PAYMENT_ERROR, [*events, SlaEvent(MONDAY_9 + H, "customer_message")], now=H + 10 * M)
    assert back.first_response.used == 15 * M
    assert back.first_response.due_at == MONDAY_9 + H + 25 * M


def test_a_wait_recorded_while_resolved_does_not_pause_the_reopened_inquiry():
    """Waiting on the customer only means something on an open inquiry: after a reopen the
    resolution clock runs again (refund request, 24 business hours)."""
    events = _events((10 * M, "reply"), (H, "resolve"), (2 * H, "wait_customer"), (3 * H, "reopen"))
    status = _evaluate(sla.DEFAULT_POLICIES["refund_request"], events, now=4 * H + 30 * M).resolution
    assert status.state == SlaState.ON_TRACK
    assert status.stopped_at is None and status.due_at is not None
    assert status.used == H + 30 * M  # 09:00-10:00, then 12:00-12:30 (lunch 12:00-13:00 is closed: 0)


def test_the_time_between_resolve_and_reopen_never_counts():
    events = _events((10 * M, "reply"), (H, "resolve"), (3 * H, "reopen"))
    status = _evaluate(PAYMENT_ERROR, events, now=5 * H).resolution  # 14:00 KST
    # counted: 09:00-10:00 before the resolve, 13:00-14:00 after the reopen at 12:00 (lunch closed)
    assert status.used == 2 * H
    assert status.due_at == MONDAY_9 + 7 * H  # 4 business hours: 2 left from 14:00 -> 16:00


def test_a_target_missed_and_then_resolved_between_two_looks_is_still_a_miss():
    events = _events((5 * M, "reply"), (4 * H + 2 * H, "resolve"))  # 15:00: 5 business hours
    status = _evaluate(PAYMENT_ERROR, events, now=8 * H).resolution
    assert status.state == SlaState.MISSED
    assert status.due_at == MONDAY_9 + 5 * H  # 14:00 (lunch not counted)
    assert status.late_by == H
