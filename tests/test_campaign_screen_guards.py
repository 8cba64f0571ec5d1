"""캠페인 screen (issue 18, part 2): selection follows the campaign just made, states read right,
and sends to many people, night-time ads and early winners ask first with their numbers."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import clock
from core.models import Campaign, CampaignStatus
from tests.test_campaigns_page import _customers
from tests.ui_helpers import open_app
from ui import campaign_guards
from ui.labels import campaign_state

KST = clock.KST


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=KST)


@pytest.mark.parametrize(
    ("local", "night"),
    [((20, 59), False), ((21, 0), True), ((22, 0), True), ((0, 0), True), ((7, 59), True), ((8, 0), False),
     ((12, 0), False)],
)
def test_night_warning_covers_exactly_21_to_08(local: tuple[int, int], night: bool) -> None:
    warning = campaign_guards.night_schedule_warning(_at(*local))
    assert (warning is not None) == night
    if warning:
        release = "2026-12-08 08:00" if local[0] >= 21 else "2026-12-07 08:00"
        assert release in warning and "야간 광고 금지" in warning


@pytest.mark.parametrize(
    ("elapsed", "clickers", "expected"),
    [
        (timedelta(seconds=5), [0, 0], ["남았", "0명"]),  # the case: 5 s into 24 h, no clicks
        (timedelta(hours=25), [0, 3], ["3명"]),  # window over, too few clicks
        (timedelta(hours=2), [12, 9], ["남았"]),  # enough clicks, window still open
        (timedelta(hours=24), [5, 5], []),  # window over, 10 clickers: a decision is possible
    ],
)
def test_winner_concerns_state_their_numbers(elapsed: timedelta, clickers: list[int], expected: list[str]) -> None:
    started = _at(12)
    concerns = campaign_guards.winner_send_concerns(
        now=started + elapsed, test_started=started, window=timedelta(hours=24), clickers=clickers
    )
    assert len(concerns) == len(expected)
    for concern, word in zip(concerns, expected, strict=True):
        assert word.replace("남았", "지났습니다") in concern or word in concern
    if elapsed == timedelta(seconds=5):
        assert concerns[0].startswith("테스트 시간 24시간 중 1분 미만만 지났습니다 (종료까지 23시간 59분")
        assert "A안 0명 · B안 0명" in concerns[1]


@pytest.mark.parametrize(("people", "ask"), [(0, False), (1, False), (2, True), (68, True)])
def test_any_send_over_one_person_is_confirmed(people: int, ask: bool) -> None:
    assert campaign_guards.needs_confirmation(people) is ask


def test_campaign_states_read_in_korean() -> None:
    assert [campaign_state(s) for s in ("draft", "testing", "scheduled", "sent")] == [
        "작성 중", "테스트 중", "예약", "발송 완료"]
    assert campaign_state("sending", "B") == "승자 발송 (B안)"


def _compose(at: AppTest, name: str, bodies: int = 1) -> None:
    at.text_input(key="cmp_name").input(name)
    if bodies > 1:
        at.number_input(key="cmp_n").set_value(bodies).run()
    for i in range(bodies):
        at.text_area(key=f"cmp_body_{i}").input(f"#{{이름}}님, {name} {'ABCDE'[i]}안 #{{링크}}")
    at.text_input(key="cmp_link").input("https://shop.example/x").run()
    at.button(key="cmp_create").click().run()
    assert not at.exception, at.exception


def _staff_with_segment(engine: Engine, actors) -> AppTest:  # type: ignore[no-untyped-def]
    _customers(engine)
    at = open_app(engine, actors["staff"], "pages/campaigns.py")
    at.selectbox(key="cmp_rule_type").set_value("channel_friend").run()
    at.button(key="cmp_add_include").click().run()
    return at


def _picked(at: AppTest) -> str:
    return at.selectbox(key="cmp_send_pick").format_func(at.selectbox(key="cmp_send_pick").value)


def test_send_tab_opens_the_campaign_just_created_and_states_follow(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _staff_with_segment(sqlite_engine, sqlite_actors)
    _compose(at, "첫 캠페인")
    assert _picked(at) == "첫 캠페인 · 작성 중"
    _compose(at, "두번째 캠페인", bodies=2)
    assert _picked(at) == "두번째 캠페인 · 작성 중"  # not the older one the picker held before
    assert "두번째 캠페인" in [t.value for t in at.toast][0]

    # The test send: the picker, the list and the results now read 테스트 중.
    at.checkbox(key="cmp_confirm").check().run()
    at.button(key="cmp_send_now").click().run()
    assert not at.exception, at.exception
    assert _picked(at) == "두번째 캠페인 · 테스트 중"
    listed = next(d for d in at.dataframe if "캠페인" in d.value.columns).value
    assert dict(zip(listed["캠페인"], listed["상태"], strict=True)) == {
        "두번째 캠페인": "테스트 중", "첫 캠페인": "작성 중"}
    assert at.selectbox(key="cmp_result_pick").value == at.selectbox(key="cmp_send_pick").value

    # Opening the first one on 발송 makes it the selection; sending the winner is guarded.
    at.selectbox(key="cmp_send_pick").select(at.selectbox(key="cmp_send_pick").options[1]).run()
    assert _picked(at) == "첫 캠페인 · 작성 중"


def test_winner_early_with_no_clicks_asks_first_with_the_numbers(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _staff_with_segment(sqlite_engine, sqlite_actors)
    _compose(at, "AB 테스트", bodies=2)
    at.checkbox(key="cmp_confirm").check().run()
    at.button(key="cmp_send_now").click().run()
    warnings = [w.value for w in at.warning]
    assert any("테스트 시간 24시간 중" in w and "종료까지" in w for w in warnings), warnings
    assert any("클릭한 고객이 0명" in w for w in warnings), warnings
    assert at.button(key="cmp_send_winner").disabled
    confirm = at.checkbox(key="cmp_winner_confirm")
    assert "명에게 보냅니다 · 예상 비용" in confirm.label and "원" in confirm.label
    at.checkbox(key="cmp_winner_early_ok").check().run()
    assert at.button(key="cmp_send_winner").disabled  # the count and cost are still to confirm
    at.checkbox(key="cmp_winner_confirm").check().run()
    at.button(key="cmp_send_winner").click().run()
    assert not at.exception, at.exception
    assert any("나머지" in t.value for t in at.toast)
    with Session(sqlite_engine) as session:
        campaign = session.exec(select(Campaign)).one()
        assert campaign.status == CampaignStatus.SENDING and campaign.winner_variant


def test_night_schedule_warns_and_asks_then_says_when(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _staff_with_segment(sqlite_engine, sqlite_actors)
    _compose(at, "야간 예약")
    day = clock.today_kst() + timedelta(days=1)
    at.selectbox(key="cmp_sched_day").set_value(day)
    at.time_input(key="cmp_sched_time").set_value(time(22, 0)).run()
    assert any("야간 광고 금지 시간" in w.value and "08:00" in w.value for w in at.warning)
    assert at.button(key="cmp_schedule").disabled
    at.checkbox(key="cmp_sched_night_ok").check()
    at.checkbox(key="cmp_sched_confirm").check().run()
    at.button(key="cmp_schedule").click().run()
    assert not at.exception, at.exception
    toast = at.toast[0].value
    assert f"{day.isoformat()} 22:00에 발송하도록 예약했습니다." in toast and "08:00에 받습니다" in toast
    assert _picked(at) == "야간 예약 · 예약"


def test_day_schedule_has_no_night_warning(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = _staff_with_segment(sqlite_engine, sqlite_actors)
    _compose(at, "낮 예약")
    at.selectbox(key="cmp_sched_day").set_value(clock.today_kst() + timedelta(days=1))
    at.time_input(key="cmp_sched_time").set_value(time(14, 0)).run()
    assert not any("야간" in w.value for w in at.warning)
    assert not [c for c in at.checkbox if c.key == "cmp_sched_night_ok"]
