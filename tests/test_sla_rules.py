"""The CS targets of the seed (결제 관련 고객 응대 가이드) at their boundaries, through the SLA states.

결제 오류 30분, 이중 결제 1시간, 환불 요청 24시간, 영수증 요청 즉시 (5 minutes here). Rules: the
customer's clock stops at the first answer the customer sees (a reply or a receipt sent); an answer
at exactly the deadline is on time; waiting on the customer pauses the clock only while the inquiry
is open; the time between resolve and reopen never counts.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import KST
from core.errors import ValidationFailed
from core.inquiries import sla
from core.inquiries.policy import SETTING_DEFAULTS as DEFAULTS
from core.inquiries.sla import SlaEvent, SlaState

BUSINESS = sla.business(DEFAULTS["business_hours"])  # Mon-Fri 09-12, 13-18 KST
M = timedelta(minutes=1)
S = timedelta(seconds=1)
H = timedelta(hours=1)
MONDAY_9 = datetime(2027, 3, 15, 9, 0, tzinfo=KST).astimezone(UTC)  # a Monday, no holiday
PAYMENT_ERROR = sla.DEFAULT_POLICIES["payment_error"]  # 30 min first response, 4 h resolution
RECEIPT = sla.DEFAULT_POLICIES["receipt_request"]  # 5 min first response, 10 min resolution


@pytest.fixture(autouse=True)
def cold_calendar_caches():
    """Each test computes the calendar it asserts: a day's open hours or a year's holidays remembered
    from an earlier test (the mutation tool forks every mutant from a process that ran them all)
    would hide a wrong rule."""
    sla._day_windows.cache_clear()
    sla.korean_holidays.cache_clear()


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


def test_an_answer_sent_while_waiting_on_the_customer_is_measured_against_the_pushed_deadline():
    """The wait stops at the answer: the deadline it reached is the one reported (met, 25 min to spare)."""
    first = _evaluate(
        PAYMENT_ERROR, _events((5 * M, "wait_customer"), (20 * M, "reply")), now=H
    ).first_response
    assert (first.state, first.stopped_at, first.used) == (SlaState.MET, MONDAY_9 + 20 * M, 5 * M)
    assert first.due_at == first.wall_clock_due_at == MONDAY_9 + 45 * M


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


# ------------------------------------------------------------------ business hours as the owner types them


@pytest.mark.parametrize(
    ("raw", "windows"),
    [
        ([["09:30", "12:00"]], ((570, 720),)),
        ([["13:00", "18:00"], ["09:00", "12:00"]], ((540, 720), (780, 1080))),  # sorted
        ([["00:00", "24:00"]], ((0, 1440),)),  # the whole day
        ([["09:00", "12:00"], ["12:00", "13:00"]], ((540, 720), (720, 780))),  # touching is not overlapping
        ([[" 9:05 ", "09:59"]], ((545, 599),)),
        ([], ()),
        (None, ()),
    ],
)
def test_business_hours_are_read_as_minutes_from_kst_midnight(raw, windows):
    assert sla.parse_windows(raw) == windows


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([["09:60", "10:00"]], "^시간이 범위를 벗어났습니다 \\(00:00~24:00\\): '09:60'$"),
        ([["24:01", "24:30"]], "시간이 범위를 벗어났습니다"),
        ([["-1:00", "09:00"]], "시간이 범위를 벗어났습니다"),
        ([["09:-1", "10:00"]], "시간이 범위를 벗어났습니다"),
        ([["09:00", "25:00"]], "시간이 범위를 벗어났습니다"),
        ([["9시", "10:00"]], "^시간 형식이 잘못되었습니다 \\(HH:MM\\): '9시'$"),
        ([["09:00:00", "10:00"]], "시간 형식이 잘못되었습니다"),
        ([["09:00"]], "^영업시간은 \\[시작, 끝\\] 쌍이어야 합니다"),
        ([["09:00", "10:00", "11:00"]], "쌍이어야"),
        ([["10:00", "10:00"]], "^영업시간의 끝이 시작보다 늦어야 합니다: 10:00~10:00$"),
        ([["09:00", "12:00"], ["11:59", "13:00"]], "^영업시간 구간이 서로 겹칩니다$"),
    ],
)
def test_business_hours_that_are_not_a_time_of_day_are_refused_in_korean(raw, reason):
    with pytest.raises(ValidationFailed, match=reason):
        sla.parse_windows(raw)


def test_a_calendar_has_seven_days():
    with pytest.raises(ValidationFailed, match="^영업시간은 요일 7개가 필요합니다$"):
        sla.Calendar(weekly=(((540, 1080),),) * 6)
    with pytest.raises(sla.NoOpenHours, match="영업시간이 하나도 없습니다"):
        sla.Calendar()
    assert sla.Calendar(always_open=True).is_closed_day(datetime(2027, 1, 1).date()) is False


def test_open_at_is_inside_a_window_and_not_at_its_end():
    assert BUSINESS.is_open_at(MONDAY_9) is True
    assert BUSINESS.is_open_at(MONDAY_9 - S) is False
    assert BUSINESS.is_open_at(MONDAY_9 + 3 * H - S) is True  # 11:59:59
    assert BUSINESS.is_open_at(MONDAY_9 + 3 * H) is False  # 12:00: lunch
    assert sla.next_open_at(BUSINESS, MONDAY_9 + 3 * H) == MONDAY_9 + 4 * H
    assert sla.next_open_at(BUSINESS, MONDAY_9) == MONDAY_9
    assert BUSINESS.is_open_at(datetime(2027, 3, 1, 10, 0, tzinfo=KST)) is False  # 삼일절
    assert sla.holiday_name(datetime(2027, 3, 1).date()) == "삼일절"
    assert sla.holiday_name(datetime(2027, 3, 2).date()) is None


def test_a_business_calendar_can_ignore_holidays_and_add_closed_days():
    hours = DEFAULTS["business_hours"]
    open_on_holidays = sla.business(hours, observe_public_holidays=False)
    assert open_on_holidays.is_open_at(datetime(2027, 3, 1, 10, 0, tzinfo=KST)) is True
    closed = sla.business(hours, closed_days=[datetime(2027, 3, 15).date()])
    assert closed.is_open_at(MONDAY_9) is False
    assert closed.is_closed_day(datetime(2027, 3, 16).date()) is False


# ------------------------------------------------------------------ pauses that overlap, touch or never end


def _counted(pauses, end=8 * H):
    return sla.counted(sla.TWENTY_FOUR_SEVEN, MONDAY_9, MONDAY_9 + end, pauses)


@pytest.mark.parametrize(
    ("pauses", "counted"),
    [
        ([(H, 2 * H)], 7 * H),
        ([(H, 2 * H), (H + 30 * M, 3 * H)], 6 * H),  # overlapping: counted once
        ([(H, 3 * H), (H + 30 * M, 2 * H)], 6 * H),  # one inside the other
        ([(H, 2 * H), (2 * H, 3 * H)], 6 * H),  # touching
        ([(2 * H, 3 * H), (H, 2 * H)], 6 * H),  # given out of order
        ([(H, H), (2 * H, 3 * H)], 7 * H),  # an empty pause changes nothing, nor hides the next one
        ([(H, H - M), (2 * H, 3 * H)], 7 * H),  # a pause ending before it starts: ignored
        ([(H, None)], H),  # still waiting: stopped at 10:00
        ([(H, None), (2 * H, 3 * H)], H),  # a later closed pause inside an open one
        ([(H, 3 * H), (2 * H, None)], H),  # an open pause inside a closed one: still open
        ([(H, None), (H, 2 * H)], H),  # an open and a closed pause from the same instant
        ([(H, 2 * H), (H, None)], H),
        ([(0 * H, H), (2 * H, 3 * H)], 6 * H),  # a pause from the first instant, then another one
        ([(-2 * H, -H), (H, 2 * H)], 7 * H),  # a pause over before the clock started changes nothing
    ],
)
def test_pauses_count_once_however_they_overlap(pauses, counted):
    absolute = [(MONDAY_9 + s, None if e is None else MONDAY_9 + e) for s, e in pauses]
    assert _counted(absolute) == counted
    due = sla.deadline(sla.TWENTY_FOUR_SEVEN, MONDAY_9, 30 * H, absolute)
    if any(e is None for _, e in pauses):
        assert due is None  # the clock is stopped: no deadline yet
    else:
        assert due == MONDAY_9 + 30 * H + (8 * H - counted)


def test_counted_time_of_an_empty_or_backwards_span_is_zero():
    assert sla.counted(BUSINESS, MONDAY_9, MONDAY_9) == timedelta(0)
    assert sla.counted(BUSINESS, MONDAY_9, MONDAY_9 - H) == timedelta(0)
    with pytest.raises(ValidationFailed, match="^목표 시간은 0보다 커야 합니다$"):
        sla.deadline(BUSINESS, MONDAY_9, timedelta(0))


# ------------------------------------------------------------------ the timeline


def test_the_clock_starts_at_creation_and_ignores_what_came_before():
    events = [
        SlaEvent(MONDAY_9 - H, "reply"),  # imported history before the inquiry was opened
        SlaEvent(MONDAY_9, "created"),
        SlaEvent(MONDAY_9 + 10 * M, "reply"),
    ]
    first = sla.evaluate(PAYMENT_ERROR, BUSINESS, events, MONDAY_9 + H).first_response
    assert (first.state, first.stopped_at, first.used) == (SlaState.MET, MONDAY_9 + 10 * M, 10 * M)


def test_without_a_created_event_the_clock_starts_at_the_first_event():
    events = [SlaEvent(MONDAY_9 + 10 * M, "reply"), SlaEvent(MONDAY_9, "customer_message")]
    first = sla.evaluate(PAYMENT_ERROR, BUSINESS, events, MONDAY_9 + H).first_response
    assert (first.stopped_at, first.used, first.due_at) == (MONDAY_9 + 10 * M, 10 * M, MONDAY_9 + 30 * M)
    with pytest.raises(ValidationFailed, match="^타임라인이 비어 있습니다$"):
        sla.evaluate(PAYMENT_ERROR, BUSINESS, [], MONDAY_9)


def test_a_resolve_closes_a_wait_and_a_second_resolve_changes_nothing():
    events = _events((5 * M, "reply"), (10 * M, "wait_customer"), (H, "resolve"), (2 * H, "resolve"))
    resolution = _evaluate(PAYMENT_ERROR, events, now=3 * H).resolution
    assert (resolution.state, resolution.stopped_at) == (SlaState.MET, MONDAY_9 + H)
    assert resolution.used == 10 * M  # the wait from 09:10 to the resolve at 10:00 did not count
    # the wait ends at the resolve: the deadline is the one an answer from the customer then would give
    assert resolution.due_at == MONDAY_9 + 5 * H + 50 * M  # 10 min, then 10:00-12:00, 13:00-14:50


def test_a_wait_that_ended_before_the_resolve_pauses_only_while_it_lasted():
    events = _events(
        (5 * M, "reply"), (10 * M, "wait_customer"), (20 * M, "customer_message"), (H, "resolve")
    )
    resolution = _evaluate(PAYMENT_ERROR, events, now=3 * H).resolution
    assert (resolution.state, resolution.used) == (SlaState.MET, 50 * M)  # 09:00-09:10 and 09:20-10:00


def test_a_second_wait_before_the_customer_writes_keeps_the_first_start():
    events = _events((10 * M, "wait_customer"), (20 * M, "wait_customer"), (H, "customer_message"))
    first = _evaluate(PAYMENT_ERROR, events, now=H + 5 * M).first_response
    assert first.used == 15 * M


def test_a_reopen_without_a_resolve_changes_nothing():
    events = _events((5 * M, "reply"), (H, "reopen"))
    resolution = _evaluate(PAYMENT_ERROR, events, now=2 * H).resolution
    assert resolution.used == 2 * H and resolution.state == SlaState.ON_TRACK


# ------------------------------------------------------------------ what staff read


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0초"),
        (59 * S, "59초"),
        (M, "1분 0초"),
        (3 * M + 20 * S, "3분 20초"),
        (H, "1시간 0분"),
        (H + 5 * M + 59 * S, "1시간 5분"),
        (timedelta(days=1), "1일 0시간"),
        (timedelta(days=2, hours=4, minutes=30), "2일 4시간"),
        (-(H + 5 * M), "1시간 5분"),  # late by: the sign is shown in words elsewhere
    ],
)
def test_durations_read_in_korean_units(value, text):
    assert sla.format_duration(value) == text


def test_a_status_as_json_has_its_state_deadline_and_lateness():
    late = _evaluate(PAYMENT_ERROR, _events(), now=H).first_response
    assert sla.as_jsonable(late) == {
        "state": "breached",
        "due_at": (MONDAY_9 + 30 * M).isoformat(),
        "late_seconds": 1800,
    }
    paused = _evaluate(PAYMENT_ERROR, _events((M, "wait_customer")), now=H).first_response
    assert sla.as_jsonable(paused) == {"state": "paused", "due_at": None, "late_seconds": 0}
    assert sla.SLA_STATE_LABELS[paused.state] == "고객 대기"


@pytest.mark.parametrize(
    ("first", "resolution", "calendar", "share", "reason"),
    [
        (0, 60, "business", 0.8, "^첫 응답·해결 목표 시간은 0보다 커야 합니다$"),
        (30, 0, "business", 0.8, "0보다 커야"),
        (30, 60, "weekdays", 0.8, "^달력은 '24/7' 또는 'business'여야 합니다: 'weekdays'$"),
        (30, 60, "business", 1.0, "^임박 비율은 0과 1 사이여야 합니다 \\(예: 0.8\\)$"),
        (30, 60, "business", 0.0, "임박 비율"),
    ],
)
def test_a_policy_needs_positive_targets_a_known_calendar_and_a_share_between_0_and_1(
    first, resolution, calendar, share, reason
):
    with pytest.raises(ValidationFailed, match=reason):
        sla.policy_minutes("payment_error", first, resolution, calendar, share)


def test_the_seed_targets_are_the_defaults():
    minutes = {k: (p.first_response, p.resolution) for k, p in sla.DEFAULT_POLICIES.items()}
    assert minutes["payment_error"][0] == 30 * M  # 결제 오류: 30분 이내
    assert minutes["double_charge"][0] == H  # 이중 결제: 1시간 이내
    assert minutes["refund_request"][1] == 24 * H  # 환불 요청: 24시간 이내
    assert minutes["receipt_request"][0] == 5 * M  # 영수증: 즉시
    policy = sla.policy_minutes("x", 1, 2, "24/7", 0.5)
    assert (policy.calendar, policy.at_risk_share) == ("24/7", 0.5)
    assert sla.calendar_for(policy, BUSINESS) is sla.TWENTY_FOUR_SEVEN
    assert sla.calendar_for(PAYMENT_ERROR, BUSINESS) is BUSINESS


def test_an_answer_at_the_creation_instant_counts():
    """An automatic receipt sent as the inquiry is created answers it at once."""
    first = _evaluate(RECEIPT, _events((timedelta(0), "receipt")), now=H).first_response
    assert (first.state, first.stopped_at, first.used) == (SlaState.MET, MONDAY_9, timedelta(0))


def test_the_wall_clock_deadline_keeps_the_same_pauses():
    events = _events((5 * M, "wait_customer"), (H, "customer_message"))
    first = _evaluate(PAYMENT_ERROR, events, now=H + 10 * M).first_response
    assert first.wall_clock_due_at == MONDAY_9 + H + 25 * M  # 30 minutes, 55 of them paused


# ------------------------------------------------------------------ the shop's clock, whatever the server's


@pytest.mark.parametrize("server_zone", ["America/Los_Angeles", "Pacific/Kiritimati", "UTC"])
def test_the_sla_clock_runs_on_korean_days_whatever_the_servers_time_zone(monkeypatch, server_zone):
    """Business hours and 24/7 days are KST days (the seed's targets are the shop's hours): a server
    set to another zone (behind Korea or ahead of it) counts the same."""
    monkeypatch.setenv("TZ", server_zone)
    _time.tzset()
    try:
        monday_0930 = MONDAY_9 + 30 * M  # Sunday 17:30 in Los Angeles
        monday_2000 = MONDAY_9 + 11 * H  # already Tuesday 01:00 on Kiritimati
        always = sla.twenty_four_seven()
        assert BUSINESS.is_open_at(monday_0930) is True
        assert always.is_open_at(monday_2000) is True
        assert sla.deadline(always, monday_2000, 30 * M) == monday_2000 + 30 * M
        assert sla.counted(always, monday_2000, monday_2000 + H) == H
        assert sla.deadline(BUSINESS, MONDAY_9 - 10 * H, 30 * M) == MONDAY_9 + 30 * M  # Sunday 23:00 KST
    finally:
        monkeypatch.undo()
        _time.tzset()


# ------------------------------------------------------------------ built in the test, not remembered from import


def test_each_target_reports_the_seeds_target_it_is_measured_against():
    result = _evaluate(PAYMENT_ERROR, _events((10 * M, "reply")), now=H)
    assert (result.first_response.target, result.resolution.target) == (30 * M, 4 * H)


def test_a_policy_in_minutes_is_counted_in_business_hours_unless_told_otherwise():
    policy = sla.policy_minutes("payment_error", 30, 240)
    assert (policy.inquiry_type, policy.first_response, policy.resolution, policy.calendar) == (
        "payment_error",
        30 * M,
        4 * H,
        "business",
    )
    assert sla.policy_minutes("payment_error", 30, 240, "24/7").calendar == "24/7"


def test_business_hours_observe_korean_public_holidays_unless_told_otherwise():
    """Built here (a calendar made at import would hide a mistake in how it is built)."""
    hours = sla.business(DEFAULTS["business_hours"])
    assert hours.always_open is False
    assert hours.is_open_at(MONDAY_9) is True
    assert hours.is_open_at(datetime(2027, 3, 1, 10, 0, tzinfo=KST)) is False  # 삼일절
    assert hours.is_open_at(datetime(2027, 3, 13, 10, 0, tzinfo=KST)) is False  # a Saturday
    ignoring = sla.business(DEFAULTS["business_hours"], observe_public_holidays=False)
    assert ignoring.is_open_at(datetime(2027, 3, 1, 10, 0, tzinfo=KST)) is True


def test_business_hours_that_are_never_open_or_run_backwards_are_refused_in_korean():
    with pytest.raises(
        sla.NoOpenHours, match="^영업시간이 하나도 없습니다: 최소 한 요일에 영업시간을 넣어 주세요$"
    ):
        sla.business({})
    with pytest.raises(ValidationFailed, match="^영업시간의 끝이 시작보다 늦어야 합니다: 18:00~09:00$"):
        sla.business({"1": [["18:00", "09:00"]]})


EVERY_DAY_9_TO_10 = {str(d): [["09:00", "10:00"]] for d in range(1, 8)}
MONDAY = MONDAY_9.astimezone(KST).date()


def _closed_for(*runs: int) -> list:
    """Closed days from MONDAY on: `runs` closed days, one open day between each run."""
    closed, day = [], MONDAY
    for run in runs:
        closed += [day + timedelta(days=i) for i in range(run)]
        day += timedelta(days=run + 1)
    return closed


@pytest.mark.parametrize(
    ("runs", "target", "due_days_later"),
    [
        ((sla.MAX_SCAN_DAYS,), H, sla.MAX_SCAN_DAYS),  # ten years closed, then open: still found
        ((sla.MAX_SCAN_DAYS + 1,), H, None),  # one day more: the calendar is broken
        ((sla.MAX_SCAN_DAYS, sla.MAX_SCAN_DAYS), 2 * H, 2 * sla.MAX_SCAN_DAYS + 1),  # the count restarts
    ],
)
def test_a_calendar_closed_for_more_than_ten_years_is_an_error_not_an_endless_walk(
    runs, target, due_days_later
):
    calendar = sla.business(EVERY_DAY_9_TO_10, observe_public_holidays=False, closed_days=_closed_for(*runs))
    if due_days_later is None:
        with pytest.raises(
            sla.NoOpenHours,
            match=f"^{sla.MAX_SCAN_DAYS}일 동안 영업시간이 없습니다: 영업시간과 휴무일 설정을 확인해 주세요$",
        ):
            sla.deadline(calendar, MONDAY_9, target)
    else:
        assert sla.deadline(calendar, MONDAY_9, target) == MONDAY_9 + timedelta(days=due_days_later) + H
