"""Guards on the 캠페인 screen where money or many customers are at stake: what to ask before acting.

Pure functions of values (the page passes `now`, the plan and the test results), so the rules are
tested by tables of cases:

- any send to more than one person is confirmed with the count and the cost;
- an advertising campaign scheduled inside the night ban (21:00-08:00 KST, 정보통신망법 제50조)
  warns that customers without night consent get it at 08:00;
- sending the winner before the test window ends, or with fewer clicks than a decision needs,
  asks first and states the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from core import clock
from core.messaging import compliance
from core.money import format_krw

# Below this many clicking customers across the variants a click-rate "winner" is mostly chance
# (with 10% test samples of a few hundred people, one click moves a rate by several points).
MIN_CLICKERS_FOR_WINNER = 10


def needs_confirmation(people: int) -> bool:
    """A send to more than one person is confirmed first (one test message to oneself is not)."""
    return people > 1


def confirmation_text(people: int, cost: int) -> str:
    return f"{people:,}명에게 보냅니다 · 예상 비용 {format_krw(cost)}"


def duration_text(span: timedelta) -> str:
    """timedelta(hours=23, minutes=59, seconds=55) -> "23시간 59분"; under a minute -> "1분 미만";
    days only from 3 days on (a test window is said "24시간", "48시간")."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "1분 미만"
    days, rest = divmod(minutes, 24 * 60) if minutes >= 72 * 60 else (0, minutes)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}일"] if days else []
    parts += [f"{hours}시간"] if hours else []
    parts += [f"{mins}분"] if mins else []
    return " ".join(parts)


def night_schedule_warning(at: datetime) -> str | None:
    """The warning for an ad scheduled at `at`, or None by day. Held, not dropped: 08:00 the next
    morning for everyone without night consent."""
    if not compliance.in_night_ban(at):
        return None
    release = compliance.next_day_start(at)
    return (
        f"{clock.format_kst(at)}은(는) 야간 광고 금지 시간(21:00~08:00)입니다. 야간 수신에 동의한 고객만"
        f" 그 시각에 받고, 나머지 고객에게는 {clock.format_kst(release)}에 발송됩니다."
    )


def winner_send_concerns(
    *, now: datetime, test_started: datetime, window: timedelta, clickers: Sequence[int]
) -> list[str]:
    """Why sending the winner now may be premature, each with its numbers (empty: nothing to ask).

    `clickers` is the number of clicking customers per variant.
    """
    concerns: list[str] = []
    ends = test_started + window
    if now < ends:
        concerns.append(
            f"테스트 시간 {duration_text(window)} 중 {duration_text(now - test_started)}만 지났습니다"
            f" (종료까지 {duration_text(ends - now)}, {clock.format_kst(ends)} 종료)."
        )
    total = sum(clickers)
    if total < MIN_CLICKERS_FOR_WINNER:
        per = " · ".join(f"{'ABCDE'[i]}안 {n:,}명" for i, n in enumerate(clickers))
        concerns.append(
            f"클릭한 고객이 {total:,}명({per})뿐이라 승자를 가리기 어렵습니다"
            f" (최소 {MIN_CLICKERS_FOR_WINNER}명 권장)."
        )
    return concerns
