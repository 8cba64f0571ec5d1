"""Pure SLA math: business calendars, pauses, deadlines and states (no database, no streamlit).

Semantics (the rules every caller and test relies on):

- Counted time runs only while the calendar is open AND the inquiry is not paused. A calendar is
  either 24/7 or business hours: several windows per weekday in KST (lunch breaks are the gap
  between two windows), minus Korean public holidays (lunar and substitute holidays included, from
  the `holidays` library) when observed, minus one-off closed days.
- The deadline is the instant the counted time reaches the target. A window that ends exactly
  when the target is reached gives that window's end, not the next opening.
- An answer (or resolution) at exactly the deadline is on time: breached means `now > due_at`,
  missed means `stopped_at > due_at`.
- A start outside open hours begins counting at the next opening.
- Waiting on the customer pauses both clocks from the `wait_customer` event until the next
  `customer_message`. The time between `resolve` and `reopen` never counts for resolution.
- The first-response clock stops at the first `reply` or `receipt` sent (or at a `resolve` with no
  answer before it, because the resolution itself answers the customer).
- States come from the event timeline, never from when a job happened to look, so a target missed
  and then resolved between two worker ticks is still a miss.
- At risk: the counted time has reached `at_risk_share` of the target (default 0.8).
- `due_at` is the business-calendar deadline; `wall_clock_due_at` is the same target on a 24/7
  calendar (with the same pauses). While paused before the deadline, both are None (the clock is
  stopped, there is no deadline yet).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import holidays

from core.clock import KST
from core.errors import ValidationFailed

MAX_SCAN_DAYS = 3660  # ten years without a single open minute means the calendar is broken
DEFAULT_AT_RISK_SHARE = 0.8
MINUTES_PER_DAY = 24 * 60


class NoOpenHours(ValidationFailed):
    """The calendar has no open time at all (or none for years): a deadline can never be reached."""


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    MISSED = "missed"
    PAUSED = "paused"  # waiting on the customer before the deadline: the clock is stopped


SLA_STATE_LABELS = {
    SlaState.ON_TRACK: "여유",
    SlaState.AT_RISK: "임박",
    SlaState.BREACHED: "초과",
    SlaState.MET: "준수",
    SlaState.MISSED: "미준수",
    SlaState.PAUSED: "고객 대기",
}


# --------------------------------------------------------------------------- calendars


Window = tuple[int, int]  # minutes from KST midnight, [start, end), end may be 1440


@dataclass(frozen=True)
class Calendar:
    """When the SLA clock may run. Build with `twenty_four_seven()` or `business(...)`."""

    always_open: bool = False
    weekly: tuple[tuple[Window, ...], ...] = ((),) * 7  # index 0 = Monday
    observe_public_holidays: bool = True
    closed_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValidationFailed("영업시간은 요일 7개가 필요합니다")
        if not self.always_open and not any(self.weekly):
            raise NoOpenHours("영업시간이 하나도 없습니다: 최소 한 요일에 영업시간을 넣어 주세요")

    def is_closed_day(self, day: date) -> bool:
        if self.always_open:
            return False
        if day in self.closed_days:
            return True
        return self.observe_public_holidays and day in korean_holidays(day.year)

    def windows_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Open intervals of a KST day as aware UTC instants (cached per calendar and day)."""
        return _day_windows(self, day)

    def is_open_at(self, instant: datetime) -> bool:
        day = instant.astimezone(KST).date()
        return any(start <= instant < end for start, end in self.windows_on(day))


TWENTY_FOUR_SEVEN = Calendar(always_open=True)


def twenty_four_seven() -> Calendar:
    return TWENTY_FOUR_SEVEN


def _parse_hhmm(text: str) -> int:
    try:
        hours, minutes = str(text).strip().split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise ValidationFailed(f"시간 형식이 잘못되었습니다 (HH:MM): {text!r}") from None
    if not 0 <= int(minutes) < 60 or not 0 <= value <= MINUTES_PER_DAY:
        raise ValidationFailed(f"시간이 범위를 벗어났습니다 (00:00~24:00): {text!r}")
    return value


def parse_windows(raw: Sequence[Sequence[str]]) -> tuple[Window, ...]:
    """[["09:00","12:00"], ["13:00","18:00"]] -> sorted, validated, non-overlapping windows."""
    windows = []
    for pair in raw or ():
        if len(pair) != 2:
            raise ValidationFailed(f"영업시간은 [시작, 끝] 쌍이어야 합니다: {pair!r}")
        start, end = _parse_hhmm(pair[0]), _parse_hhmm(pair[1])
        if end <= start:
            raise ValidationFailed(f"영업시간의 끝이 시작보다 늦어야 합니다: {pair[0]}~{pair[1]}")
        windows.append((start, end))
    windows.sort()
    for (_, end_a), (start_b, _) in zip(windows, windows[1:], strict=False):
        if start_b < end_a:
            raise ValidationFailed("영업시간 구간이 서로 겹칩니다")
    return tuple(windows)


def business(
    business_hours: Mapping[str, Sequence[Sequence[str]]],
    *,
    observe_public_holidays: bool = True,
    closed_days: Sequence[date] = (),
) -> Calendar:
    """A business calendar from the "business_hours" setting ({"1": [[..]], ...}; see policy.SETTING_DEFAULTS)."""
    weekly = tuple(parse_windows(business_hours.get(str(iso), ())) for iso in range(1, 8))
    return Calendar(
        always_open=False,
        weekly=weekly,
        observe_public_holidays=observe_public_holidays,
        closed_days=frozenset(closed_days),
    )


@functools.lru_cache(maxsize=64)
def korean_holidays(year: int) -> frozenset[date]:
    """Korean public holidays of a year, lunar and substitute holidays included (cached per year)."""
    return frozenset(holidays.country_holidays("KR", years=year).keys())


def holiday_name(day: date) -> str | None:
    return holidays.country_holidays("KR", years=day.year, language="ko").get(day)


@functools.lru_cache(maxsize=200_000)
def _day_windows(calendar: Calendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    midnight = datetime.combine(day, time(0), tzinfo=KST).astimezone(UTC)
    if calendar.always_open:
        return ((midnight, midnight + timedelta(days=1)),)
    if calendar.is_closed_day(day):
        return ()
    return tuple(
        (midnight + timedelta(minutes=start), midnight + timedelta(minutes=end))
        for start, end in calendar.weekly[day.isoweekday() - 1]
    )


# --------------------------------------------------------------------------- counting


Pause = tuple[datetime, datetime | None]  # end None: still paused


def _merge_pauses(pauses: Sequence[Pause]) -> list[tuple[datetime, datetime | None]]:
    merged: list[tuple[datetime, datetime | None]] = []
    for start, end in sorted(pauses, key=lambda p: p[0]):
        if end is not None and end <= start:
            continue
        if merged and (merged[-1][1] is None or start <= merged[-1][1]):
            last_start, last_end = merged[-1]
            new_end = None if (last_end is None or end is None) else max(last_end, end)
            merged[-1] = (last_start, new_end)
        else:
            merged.append((start, end))
    return merged


def running_intervals(
    calendar: Calendar, start: datetime, pauses: Sequence[Pause] = ()
) -> Iterator[tuple[datetime, datetime]]:
    """The intervals from `start` on during which the clock runs, in order.

    Ends when an open-ended pause begins (the clock is stopped until the customer writes);
    otherwise endless. Raises NoOpenHours after MAX_SCAN_DAYS days without any open time.
    """
    merged = _merge_pauses(pauses)
    pause_starts = [p[0] for p in merged]
    day = start.astimezone(KST).date()
    empty_days = 0
    while True:
        windows = _day_windows(calendar, day)
        if not windows:
            empty_days += 1
            if empty_days > MAX_SCAN_DAYS:
                raise NoOpenHours(
                    f"{MAX_SCAN_DAYS}일 동안 영업시간이 없습니다: 영업시간과 휴무일 설정을 확인해 주세요"
                )
        else:
            empty_days = 0
        for window_start, window_end in windows:
            if window_end <= start:
                continue
            cursor = max(window_start, start)
            # Subtract pauses overlapping [cursor, window_end).
            index = max(0, bisect.bisect_right(pause_starts, cursor) - 1)
            while cursor < window_end:
                if index < len(merged):
                    p_start, p_end = merged[index]
                    if p_end is not None and p_end <= cursor:
                        index += 1
                        continue
                    if p_start <= cursor:
                        if p_end is None:
                            return
                        cursor = p_end
                        index += 1
                        continue
                    segment_end = min(window_end, p_start)
                else:
                    segment_end = window_end
                if segment_end > cursor:
                    yield cursor, segment_end
                cursor = segment_end
        day += timedelta(days=1)


def deadline(
    calendar: Calendar, start: datetime, target: timedelta, pauses: Sequence[Pause] = ()
) -> datetime | None:
    """The instant counted time from `start` reaches `target`; None if an open pause stops it first."""
    if target <= timedelta(0):
        raise ValidationFailed("목표 시간은 0보다 커야 합니다")
    remaining = target
    for segment_start, segment_end in running_intervals(calendar, start, pauses):
        length = segment_end - segment_start
        if remaining <= length:
            return segment_start + remaining
        remaining -= length
    return None


def counted(calendar: Calendar, start: datetime, end: datetime, pauses: Sequence[Pause] = ()) -> timedelta:
    """Counted (open, unpaused) time in [start, end)."""
    total = timedelta(0)
    if end <= start:
        return total
    for segment_start, segment_end in running_intervals(calendar, start, pauses):
        if segment_start >= end:
            break
        total += min(segment_end, end) - segment_start
    return total


def next_open_at(calendar: Calendar, instant: datetime) -> datetime:
    """The first instant at or after `instant` when the calendar is open."""
    for segment_start, _ in running_intervals(calendar, instant):
        return segment_start
    raise NoOpenHours("영업시간이 없습니다")  # pragma: no cover - running_intervals raises first


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """Targets for one inquiry type; `calendar` is "24/7" or "business"."""

    inquiry_type: str
    first_response: timedelta
    resolution: timedelta
    calendar: str = "business"
    at_risk_share: float = DEFAULT_AT_RISK_SHARE

    def __post_init__(self) -> None:
        validate_policy(self.first_response, self.resolution, self.calendar, self.at_risk_share)


def validate_policy(first_response: timedelta, resolution: timedelta, calendar: str, share: float) -> None:
    if first_response <= timedelta(0) or resolution <= timedelta(0):
        raise ValidationFailed("첫 응답·해결 목표 시간은 0보다 커야 합니다")
    if calendar not in ("24/7", "business"):
        raise ValidationFailed(f"달력은 '24/7' 또는 'business'여야 합니다: {calendar!r}")
    if not 0 < share < 1:
        raise ValidationFailed("임박 비율은 0과 1 사이여야 합니다 (예: 0.8)")


def policy_minutes(
    inquiry_type: str,
    first_response: int,
    resolution: int,
    calendar: str = "business",
    at_risk_share: float = DEFAULT_AT_RISK_SHARE,
) -> Policy:
    return Policy(
        inquiry_type,
        timedelta(minutes=first_response),
        timedelta(minutes=resolution),
        calendar,
        at_risk_share,
    )


# Defaults from the seed article (결제 관련 고객 응대 가이드); the owner edits them on 설정.
DEFAULT_POLICIES: dict[str, Policy] = {
    "payment_error": policy_minutes("payment_error", 30, 240),
    "double_charge": policy_minutes("double_charge", 60, 60),
    "refund_request": policy_minutes("refund_request", 60, 24 * 60),
    "receipt_request": policy_minutes("receipt_request", 5, 10),
    "other": policy_minutes("other", 240, 3 * 24 * 60),
}


def vip_policy(policy: Policy, first_response: timedelta | None, resolution: timedelta | None) -> Policy:
    """A VIP inquiry's targets: each VIP target that is set and shorter than the type's replaces it
    (a VIP never waits longer than anyone else: a 5-minute receipt target stays 5 minutes)."""
    return Policy(
        policy.inquiry_type,
        min(policy.first_response, first_response) if first_response is not None else policy.first_response,
        min(policy.resolution, resolution) if resolution is not None else policy.resolution,
        policy.calendar,
        policy.at_risk_share,
    )


def calendar_for(policy: Policy, business_calendar: Calendar) -> Calendar:
    return TWENTY_FOUR_SEVEN if policy.calendar == "24/7" else business_calendar


# --------------------------------------------------------------------------- timeline and states


RESPONSE_KINDS = frozenset({"reply", "receipt"})  # what the customer sees as an answer


@dataclass(frozen=True)
class SlaEvent:
    """One timeline entry the clocks care about (kinds as in InquiryEvent.kind)."""

    at: datetime
    kind: str  # created, reply, wait_customer, customer_message, resolve, reopen (others ignored)


@dataclass(frozen=True)
class TargetStatus:
    state: SlaState
    target: timedelta
    used: timedelta  # counted time until the stop or now
    due_at: datetime | None
    wall_clock_due_at: datetime | None
    at_risk_at: datetime | None
    stopped_at: datetime | None
    late_by: timedelta | None  # breached: now - due_at; missed: stopped_at - due_at (wall time)

    @property
    def active(self) -> bool:
        return self.state in (SlaState.ON_TRACK, SlaState.AT_RISK, SlaState.BREACHED, SlaState.PAUSED)


@dataclass(frozen=True)
class InquirySla:
    first_response: TargetStatus
    resolution: TargetStatus

    @property
    def nearest(self) -> TargetStatus:
        """The target that matters now: first response until answered, then resolution."""
        if self.first_response.active:
            return self.first_response
        return self.resolution


@dataclass
class _Timeline:
    start: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None  # set only while currently resolved
    wait_pauses: list[Pause] = field(default_factory=list)
    closed_pauses: list[Pause] = field(default_factory=list)


def _read_timeline(events: Sequence[SlaEvent]) -> _Timeline:
    ordered = sorted(events, key=lambda e: e.at)
    if not ordered:
        raise ValidationFailed("타임라인이 비어 있습니다")
    created = next((e for e in ordered if e.kind == "created"), ordered[0])
    line = _Timeline(start=created.at)
    waiting_since: datetime | None = None
    for event in ordered:
        if event.at < line.start:
            continue
        if event.kind in RESPONSE_KINDS and line.first_response_at is None:
            line.first_response_at = event.at
        elif event.kind == "wait_customer" and waiting_since is None and line.resolved_at is None:
            waiting_since = event.at
        elif event.kind == "customer_message" and waiting_since is not None:
            line.wait_pauses.append((waiting_since, event.at))
            waiting_since = None
        elif event.kind == "resolve" and line.resolved_at is None:
            if waiting_since is not None:
                line.wait_pauses.append((waiting_since, event.at))
                waiting_since = None
            if line.first_response_at is None:
                line.first_response_at = event.at
            line.resolved_at = event.at
        elif event.kind == "reopen" and line.resolved_at is not None:
            line.closed_pauses.append((line.resolved_at, event.at))
            line.resolved_at = None
    if waiting_since is not None:
        line.wait_pauses.append((waiting_since, None))
    return line


def _target_status(
    calendar: Calendar,
    start: datetime,
    target: timedelta,
    share: float,
    pauses: Sequence[Pause],
    stopped_at: datetime | None,
    now: datetime,
) -> TargetStatus:
    # A stop ends the clock: pauses that began after it are irrelevant.
    if stopped_at is not None:
        pauses = [(s, e if e is not None else stopped_at) for s, e in pauses if s < stopped_at]
    due_at = deadline(calendar, start, target, pauses)
    wall_due_at = deadline(TWENTY_FOUR_SEVEN, start, target, pauses)
    at_risk_at = deadline(calendar, start, target * share, pauses)
    until = stopped_at if stopped_at is not None else now
    used = counted(calendar, start, until, pauses)
    late_by: timedelta | None = None
    if stopped_at is not None:
        if due_at is not None and stopped_at > due_at:
            state, late_by = SlaState.MISSED, stopped_at - due_at
        else:
            state = SlaState.MET
    elif due_at is not None and now > due_at:
        state, late_by = SlaState.BREACHED, now - due_at
    elif due_at is None:
        state = SlaState.PAUSED
    elif at_risk_at is not None and now >= at_risk_at:
        state = SlaState.AT_RISK
    else:
        state = SlaState.ON_TRACK
    return TargetStatus(state, target, used, due_at, wall_due_at, at_risk_at, stopped_at, late_by)


def evaluate(policy: Policy, calendar: Calendar, events: Sequence[SlaEvent], now: datetime) -> InquirySla:
    """Both targets of one inquiry as of `now`, from its timeline alone."""
    calendar = calendar_for(policy, calendar)
    line = _read_timeline(events)
    first = _target_status(
        calendar,
        line.start,
        policy.first_response,
        policy.at_risk_share,
        line.wait_pauses,
        line.first_response_at,
        now,
    )
    resolution = _target_status(
        calendar,
        line.start,
        policy.resolution,
        policy.at_risk_share,
        [*line.wait_pauses, *line.closed_pauses],
        line.resolved_at,
        now,
    )
    return InquirySla(first, resolution)


def format_duration(value: timedelta) -> str:
    """'1시간 5분', '3분 20초', '2일 4시간' for countdowns and reports (sign dropped)."""
    seconds = int(abs(value).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}일 {hours}시간"
    if hours:
        return f"{hours}시간 {minutes}분"
    if minutes:
        return f"{minutes}분 {secs}초"
    return f"{secs}초"


def as_jsonable(status: TargetStatus) -> dict[str, Any]:
    return {
        "state": status.state.value,
        "due_at": status.due_at.isoformat() if status.due_at else None,
        "late_seconds": int(status.late_by.total_seconds()) if status.late_by else 0,
    }
