"""The advertising law at its boundaries (정보통신망법 제50조, 시행령 제61조, 민법 제157조·제160조).

Each table is written from the law, not from the code: equal timestamps, month ends, the last
minute of the last day, the exact night-ban edges and the exact daily limit.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from core import clock
from core.messaging import compliance
from core.messaging.compliance import Action, Recipient, Shop
from core.models import MessageKind

SHOP = Shop(name="테스트샵", opt_out_number="080-123-4567", phone="02-111-2222")
AT = datetime(2027, 3, 15, 3, 0, tzinfo=UTC)  # 12:00 KST, outside the night ban


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=clock.KST).astimezone(UTC)


def _ad(recipient: Recipient, now: datetime = AT, text: str = "봄 신상품 소식", **kw) -> compliance.Decision:
    return compliance.check(
        kind=MessageKind.ADVERTISING, text=text, recipient=recipient, shop=SHOP, now=now, **kw
    )


# ------------------------------------------------------------------ opt-out against consent


@pytest.mark.parametrize(
    ("consent", "opt_out", "opted_out"),
    [
        (None, None, False),
        (AT - timedelta(days=9), None, False),
        (None, AT - timedelta(days=9), True),
        (AT - timedelta(days=9), AT - timedelta(days=3), True),  # opted out after consenting
        (AT - timedelta(days=3), AT - timedelta(days=9), False),  # consented again after opting out
        (AT - timedelta(days=3), AT - timedelta(days=3), True),  # the same instant: the opt-out wins
        (AT - timedelta(days=3), AT - timedelta(days=3) + timedelta(microseconds=1), True),
        (AT - timedelta(days=3) + timedelta(microseconds=1), AT - timedelta(days=3), False),
    ],
)
def test_opt_out_at_or_after_consent_stops_advertising(consent, opt_out, opted_out):
    """제50조⑤: an opt-out stops ads at once; only a consent given after it counts again. Recorded at
    the same instant, the order cannot be told, so the customer's "no" wins."""
    recipient = Recipient(ad_consent_at=consent, ad_opt_out_at=opt_out)
    assert compliance.has_opted_out(recipient) is opted_out
    decision = _ad(recipient)
    if opted_out:
        assert (decision.action, decision.reason) == (Action.SKIP, "광고 수신거부 고객")
        assert decision.text == "봄 신상품 소식"  # kept as written, for the message log
    else:
        assert decision.reason != "광고 수신거부 고객"


# ------------------------------------------------------------------ "(광고)" must come first


@pytest.mark.parametrize(
    "body",
    [
        "봄 신상품 소식",
        "봄 신상품 (광고) 소식",  # "(광고)" inside the body is not the required first line
        "봄 신상품 소식\n(광고)",
        " 봄 신상품 소식 ",
        "광고 봄 신상품",  # without the brackets it is not the marker
    ],
)
def test_ad_text_starts_with_the_ad_marker_and_shop_name(body):
    """시행령 제61조: "(광고)" and the sender's name at the start of the message, the free opt-out
    line last. Staff who write "(광고)" somewhere else still get the header first."""
    text = _ad(Recipient(ad_consent_at=AT - timedelta(days=1)), text=body).text
    first_line, *_, last_line = text.split("\n")
    assert first_line == "(광고) 테스트샵"
    assert last_line == "무료수신거부 080-123-4567"
    assert "문의 02-111-2222" in text
    assert body.strip() in text


def test_a_body_already_starting_with_the_marker_gets_no_second_one():
    body = "(광고) 테스트샵\n봄 신상품 소식\n문의 02-111-2222\n무료수신거부 080-123-4567"
    assert compliance.advertising_text(body, SHOP) == body
    assert compliance.advertising_text(f"  {body}\n", SHOP) == body


# Staff typed their own frame, in every spelling seen in real campaigns: the code strips it and builds
# the lawful one, so the sender's name is never missing (issue 15: 50 ads went out without it).
TYPED_FRAMES = [
    "(광고) 봄 신상품",
    "(광고)봄 신상품",
    "( 광고 ) 봄 신상품",
    "(광 고) 봄 신상품",
    "[광고] 봄 신상품",
    "［광고］ 봄 신상품",  # full-width brackets
    "（광고） 봄 신상품",  # full-width parentheses (a common Korean IME mode)
    "【광고】 봄 신상품",
    "<광고> 봄 신상품",
    "〈광고〉 봄 신상품",
    "{광고} 봄 신상품",
    "(광고): 봄 신상품",
    "  (광고)\n봄 신상품",
    "(광고) 테스트샵\n봄 신상품",  # with the right shop name
    "(광고) 테스트샵 봄 신상품",
    "(광고) 다른상호\n봄 신상품",  # a wrong name stays as body text; the right one is added first
    "(광고) (광고) 봄 신상품",
    "(광고)\n(광고) 테스트샵\n봄 신상품",
    "봄 신상품\n무료수신거부 080-000-0000",  # a wrong opt-out number typed at the end
    "봄 신상품\n수신거부: 080-000-0000",
    "봄 신상품\n무료 수신 거부 080-999-9999\n",
    "(광고) 봄 신상품\n문의 02-111-2222\n무료수신거부 080-123-4567",
    "(광고) 테스트샵\n봄 신상품\n문의 02-111-2222\n무료수신거부 080-123-4567",
]


@pytest.mark.parametrize("typed", TYPED_FRAMES)
def test_a_typed_frame_is_stripped_and_the_lawful_one_rebuilt(typed):
    """정보통신망법 제50조④, 시행령 제61조③: "(광고)" then the sender's name at the very start,
    the sender's contact, and the free opt-out line at the end; exactly one of each."""
    text = _ad(Recipient(ad_consent_at=AT - timedelta(days=1)), text=typed).text
    lines = text.split("\n")
    assert lines[0] == "(광고) 테스트샵"
    assert lines[-1] == "무료수신거부 080-123-4567"
    assert lines[-2] == "문의 02-111-2222"
    body = "\n".join(lines[1:-2])
    assert "봄 신상품" in body
    assert "광고" not in body.replace("다른상호", "") or "다른상호" in typed
    assert text.count("수신") == 1 and text.count("080-") == 1 and text.count("(광고)") == 1
    assert compliance.advertising_text(text, SHOP) == text  # idempotent: held and resent ads stay the same


def test_the_campaign_frame_is_the_one_the_sender_builds():
    """The preview (prefix + body + suffix of campaigns.content) is exactly what the gate sends."""
    from core.campaigns.content import ad_frame

    for typed in TYPED_FRAMES + ["봄 신상품 (문의 02-111-2222)", "(광고)"]:
        prefix, suffix = ad_frame(typed, SHOP)
        body = compliance.strip_ad_frame(typed, SHOP)
        assert prefix + body + suffix == compliance.advertising_text(typed, SHOP), typed


def test_contact_is_added_once_and_opt_out_is_last():
    text = compliance.advertising_text("봄 신상품 (문의 02-111-2222)", SHOP)
    assert text.count("02-111-2222") == 1 and text.endswith("\n무료수신거부 080-123-4567")
    no_phone = compliance.advertising_text("봄 신상품", Shop(name="테스트샵", opt_out_number="080-1"))
    assert no_phone == "(광고) 테스트샵\n봄 신상품\n무료수신거부 080-1"


# ------------------------------------------------------------------ the 6-month purchase exception


@pytest.mark.parametrize(
    ("purchase_day", "last_day"),
    [
        # counted from the next day; ends the day before the same day 6 months on
        (date(2026, 3, 28), date(2026, 9, 28)),
        (date(2026, 3, 29), date(2026, 9, 29)),  # start 3/30: September has a 30th -> 9/29
        (date(2026, 3, 30), date(2026, 9, 30)),  # start 3/31: September has no 31st -> its last day
        (date(2026, 3, 31), date(2026, 9, 30)),  # start 4/1 -> the day before 10/1
        (date(2026, 8, 27), date(2027, 2, 27)),  # start 8/28: February has a 28th -> 2/27
        (date(2026, 8, 28), date(2027, 2, 28)),  # start 8/29: no 29th in February 2027 -> 2/28
        (date(2026, 8, 30), date(2027, 2, 28)),  # start 8/31: -> February's last day
        (date(2027, 8, 28), date(2028, 2, 28)),  # start 8/29: 2028 is a leap year -> 2/28
        (date(2027, 8, 29), date(2028, 2, 29)),  # start 8/30: no 30th -> 2/29
        (date(2026, 6, 30), date(2026, 12, 31)),  # start 7/1 -> the day before 1/1
        (date(2026, 7, 30), date(2027, 1, 30)),  # start 7/31: January has a 31st -> 1/30
        (date(2026, 12, 31), date(2027, 6, 30)),  # start 1/1 -> the day before 7/1
        (date(2026, 4, 29), date(2026, 10, 29)),  # start 4/30: October has a 30th -> 10/29
    ],
)
def test_purchase_exception_lasts_six_months_by_the_civil_code(purchase_day, last_day):
    assert compliance.purchase_exception_last_day(purchase_day) == last_day
    bought = datetime.combine(purchase_day, datetime.min.time(), tzinfo=clock.KST).replace(hour=23, minute=50)
    last_minute = datetime.combine(last_day, datetime.min.time(), tzinfo=clock.KST).replace(
        hour=23, minute=59
    )
    next_morning = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=clock.KST)
    assert compliance.purchase_exception_applies(bought, last_minute) is True
    assert compliance.purchase_exception_applies(bought, next_morning) is False
    # without consent, the ad goes through the last day and is skipped from the next one
    buyer = Recipient(last_same_kind_purchase_at=bought)
    assert _ad(buyer, now=last_minute.replace(hour=12)).action == Action.SEND
    skipped = _ad(buyer, now=next_morning.replace(hour=12))
    assert (skipped.action, skipped.reason) == (
        Action.SKIP,
        "광고 수신 동의 없음 (6개월 내 동종 구매도 없음)",
    )
    assert skipped.text == "봄 신상품 소식"  # kept as written, for the message log


def test_a_purchase_in_the_future_or_missing_is_no_exception():
    assert compliance.purchase_exception_applies(None, AT) is False
    assert compliance.purchase_exception_applies(AT + timedelta(seconds=1), AT) is False
    assert compliance.purchase_exception_applies(AT, AT) is True


@pytest.mark.parametrize(
    "today",
    [date(2026, 9, 30), date(2027, 2, 28), date(2028, 2, 29), date(2027, 1, 1)]
    + [date(2027, 8, 1) + timedelta(days=n) for n in range(35)],  # every distance from the search start
)
def test_earliest_excepting_purchase_is_the_first_day_still_in_the_window(today):
    now = kst(f"{today.isoformat()}T12:00")
    bound = compliance.earliest_excepting_purchase(now)
    assert clock.to_kst(bound).time() == datetime.min.time()
    first = clock.to_kst(bound).date()
    assert compliance.purchase_exception_last_day(first) >= today
    assert compliance.purchase_exception_last_day(first - timedelta(days=1)) < today


# ------------------------------------------------------------------ night ban and daily limit


@pytest.mark.parametrize(
    ("local", "banned"),
    [
        ("20:59:59", False),
        ("21:00:00", True),
        ("23:59:59", True),
        ("00:00:00", True),
        ("07:59:59", True),
        ("08:00:00", False),
        ("12:00:00", False),
    ],
)
def test_night_ban_runs_from_21_to_08_kst(local, banned):
    """제50조③: ads between 21:00 and 08:00 need a separate night consent."""
    now = kst(f"2027-03-15T{local}")
    assert compliance.in_night_ban(now) is banned
    decision = _ad(Recipient(ad_consent_at=AT - timedelta(days=9)), now=now)
    assert decision.action == (Action.HOLD if banned else Action.SEND)
    if banned:  # held, not dropped: the text waits unchanged and is framed when it goes
        assert decision.text == "봄 신상품 소식"
        assert decision.reason == "야간 광고 금지 (21:00~08:00): 08:00까지 보류"
        assert clock.to_kst(decision.hold_until).time().hour == 8
        assert decision.hold_until > now
    night = _ad(
        Recipient(ad_consent_at=AT - timedelta(days=9), night_ad_consent_at=AT - timedelta(days=9)), now=now
    )
    assert night.action == Action.SEND


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2027-03-15T21:00", "2027-03-16T08:00"),
        ("2027-03-16T07:59", "2027-03-16T08:00"),
        ("2027-03-16T00:00", "2027-03-16T08:00"),
        ("2027-03-16T08:00", "2027-03-17T08:00"),  # at 08:00 itself the next end is tomorrow's
    ],
)
def test_next_day_start_is_the_next_eight_oclock(now, until):
    assert compliance.next_day_start(kst(now)) == kst(until)


@pytest.mark.parametrize(
    ("ads_today", "limit", "action"),
    [(0, 1, Action.SEND), (1, 1, Action.HOLD), (1, 2, Action.SEND), (2, 2, Action.HOLD)],
)
def test_daily_ad_limit_holds_the_ad_over_the_limit_to_the_next_day(ads_today, limit, action):
    recipient = Recipient(ad_consent_at=AT - timedelta(days=9), ads_today=ads_today)
    decision = _ad(recipient, daily_ad_limit=limit)
    assert decision.action == action
    if action == Action.HOLD:
        assert decision.hold_until == kst("2027-03-16T08:00")
        assert f"하루 {limit}건" in decision.reason and "발송 예정" in decision.reason
        assert decision.text == "봄 신상품 소식"
        night = Recipient(ad_consent_at=AT, night_ad_consent_at=AT, ads_today=ads_today)
        assert _ad(night, daily_ad_limit=limit).hold_until == kst("2027-03-16T00:00")


def test_informational_messages_pass_untouched_and_unknown_kinds_are_skipped():
    opted_out = Recipient(ad_opt_out_at=AT - timedelta(days=1))
    night = kst("2027-03-15T23:00")
    info = compliance.check(
        kind=MessageKind.INFORMATIONAL, text="주문 확인", recipient=opted_out, shop=SHOP, now=night
    )
    assert (info.action, info.text) == (Action.SEND, "주문 확인")
    other = compliance.check(kind="survey", text="x", recipient=opted_out, shop=SHOP, now=AT)
    assert (other.action, other.text, other.reason) == (Action.SKIP, "x", "알 수 없는 메시지 종류: survey")


def test_hold_and_window_instants_are_utc_even_on_a_server_set_to_korean_time(monkeypatch):
    """core keeps instants in UTC whatever the server's time zone (they are stored and compared)."""
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        night = kst("2027-03-15T23:00")
        for instant in (
            compliance.next_day_start(night),
            compliance.next_ad_day_start(night, night_consent=False),
            compliance.next_ad_day_start(night, night_consent=True),
            compliance.earliest_excepting_purchase(night),
        ):
            assert instant.utcoffset() == timedelta(0), instant
    finally:
        monkeypatch.undo()
        time.tzset()


# ------------------------------------------------------------------ what staff read on an ad held for the limit

LIMIT_REASON = "발송 예정: 하루 광고 한도 (광고 빈도 제한, 고객당 하루 {limit}건)"


@pytest.mark.parametrize(
    ("now", "until", "when"),
    [
        ("2027-03-15T12:00", "2027-03-15T20:00", "오늘 20:00"),
        ("2027-03-15T12:00", "2027-03-16T08:00", "내일 08:00"),
        ("2027-03-15T23:30", "2027-03-16T00:00", "내일 00:00"),  # days counted in KST, not UTC
        ("2027-03-15T00:10", "2027-03-16T08:00", "내일 08:00"),  # 15:10 UTC the day before
        ("2027-03-15T12:00", "2027-03-17T08:00", "모레 08:00"),
        ("2027-03-15T12:00", "2027-03-18T08:00", "3월 18일 08:00"),
        ("2027-03-31T12:00", "2027-04-03T08:00", "4월 3일 08:00"),
    ],
)
def test_an_ad_held_for_the_daily_limit_tells_staff_when_it_goes_in_korean(now, until, when):
    """The 메시지 page reads when a held ad goes ("내일 08:00") and why, in the shop's time (KST)."""
    assert compliance.pressure_reason(1, kst(until), kst(now)) == f"{when} {LIMIT_REASON.format(limit=1)}"


def test_without_a_reference_instant_the_held_ad_names_its_full_kst_date():
    assert (
        compliance.pressure_reason(2, kst("2027-03-16T08:00"))
        == f"2027-03-16 08:00 {LIMIT_REASON.format(limit=2)}"
    )


@pytest.mark.parametrize(
    ("now", "night_consent", "until", "reason"),
    [
        ("2027-03-15T12:00", False, "2027-03-16T08:00", "내일 08:00"),
        ("2027-03-15T12:00", True, "2027-03-16T00:00", "내일 00:00"),
        ("2027-03-15T08:00", False, "2027-03-16T08:00", "내일 08:00"),
        ("2027-03-15T22:00", True, "2027-03-16T00:00", "내일 00:00"),  # at night, with night consent
    ],
)
def test_an_ad_over_the_daily_limit_is_held_for_the_limit_not_for_the_night(
    now, night_consent, until, reason
):
    """Held for the daily limit (the sender moves it to the next free day), unlike a night-ban hold."""
    consent = kst(now) - timedelta(days=9)
    recipient = Recipient(
        ad_consent_at=consent, night_ad_consent_at=consent if night_consent else None, ads_today=1
    )
    decision = _ad(recipient, now=kst(now))
    assert (decision.action, decision.hold_until, decision.pressure) == (Action.HOLD, kst(until), True)
    assert decision.reason == f"{reason} {LIMIT_REASON.format(limit=1)}"


def test_a_night_ban_hold_and_a_sent_ad_are_not_limit_holds():
    night = _ad(Recipient(ad_consent_at=AT - timedelta(days=9), ads_today=5), now=kst("2027-03-15T22:00"))
    assert (night.action, night.pressure) == (Action.HOLD, False)
    assert night.reason == "야간 광고 금지 (21:00~08:00): 08:00까지 보류"
    sent = _ad(Recipient(ad_consent_at=AT - timedelta(days=9)))
    assert (sent.action, sent.pressure) == (Action.SEND, False)


# ------------------------------------------------------------------ only the frame is stripped, all of it


@pytest.mark.parametrize(
    ("typed", "body"),
    [
        ("봄 신상품\n문의 02-111-2222\n무료수신거부 080-123-4567", "봄 신상품"),
        ("봄 신상품\n무료수신거부 080-123-4567\n문의 02-111-2222", "봄 신상품"),  # in either order
        ("봄 신상품\n문의 02-111-2222\n\n무료수신거부 080-123-4567\n\n", "봄 신상품"),
        ("봄 신상품\n문의 02-111-2222", "봄 신상품"),  # the shop's own contact line
        ("봄 신상품\n문의 02-999-9999", "봄 신상품\n문의 02-999-9999"),  # another number is body text
        ("봄 신상품\n문의 02-111-2222\n이번 주말까지", "봄 신상품\n문의 02-111-2222\n이번 주말까지"),
        ("(광고) 테스트샵 봄 신상품 (광고) 안내", "봄 신상품 (광고) 안내"),  # only the leading marker
    ],
)
def test_only_the_ad_frame_at_the_start_and_the_end_is_stripped(typed, body):
    assert compliance.strip_ad_frame(typed, SHOP) == body
