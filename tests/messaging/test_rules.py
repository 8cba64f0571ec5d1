"""Pure rules: phone numbers, templates, and the compliance gate rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.messaging import compliance, templates
from core.messaging.compliance import Action, Recipient, Shop
from core.messaging.phone import InvalidPhone, digits_only, normalize_mobile
from core.models import Template
from tests.messaging.helpers import NOON

KST_2130 = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)  # 21:30 KST
KST_0759 = datetime(2026, 12, 1, 22, 59, tzinfo=UTC)  # 07:59 KST on 12-02
SHOP = Shop(name="테스트샵", opt_out_number="080-123-4567", phone="02-111-2222")
CONSENTED = Recipient(ad_consent_at=NOON - timedelta(days=30))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-1234-5678", "010-1234-5678"),
        ("01012345678", "010-1234-5678"),
        ("+82 10 1234 5678", "010-1234-5678"),
        ("+82-10-1234-5678", "010-1234-5678"),
        ("8201012345678", "010-1234-5678"),
        ("010.1234.5678", "010-1234-5678"),
        ("011-123-4567", "011-123-4567"),
        ("016-1234-5678", "016-1234-5678"),
    ],
)
def test_phone_normalises_korean_mobiles(raw: str, expected: str) -> None:
    assert normalize_mobile(raw) == expected
    assert digits_only(expected).isdigit()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "없습니다"),
        ("", "없습니다"),
        ("02-123-4567", "휴대전화"),
        ("010-123-456", "휴대전화"),
        ("+1 415 555 0100", "휴대전화"),
        ("010-1234-567a", "형식"),
        ("070-1234-5678", "휴대전화"),
    ],
)
def test_phone_refuses_what_is_not_a_korean_mobile(raw: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhone, match=reason):
        normalize_mobile(raw)


def test_render_fills_every_slot() -> None:
    text = templates.render(
        "#{고객명}님 주문 #{주문번호} 감사합니다", {"고객명": "홍길동", "주문번호": "A-1"}
    )
    assert text == "홍길동님 주문 A-1 감사합니다"
    assert templates.variable_names("#{a} #{b} #{a}") == ["a", "b"]
    assert templates.wire_variables("#{a}", {"a": 1, "b": 2}) == {"#{a}": "1"}


@pytest.mark.parametrize(
    ("body", "variables", "reason"),
    [
        ("#{고객명} #{쿠폰}", {"고객명": "a"}, "#{쿠폰}의 값이 없습니다"),
        ("#{고객명}", {"고객명": "가" * 501}, "너무 깁니다"),
        ("x" * 1001, {}, "1,000자"),
        (" ".join(f"#{{v{i}}}" for i in range(41)), {f"v{i}": "1" for i in range(41)}, "40개"),
        ("#{a}" + "x" * 990, {"a": "y" * 20}, "완성된 메시지"),
        ("   ", {}, "비어"),
    ],
)
def test_render_refuses_with_a_clear_reason(body: str, variables: dict, reason: str) -> None:
    with pytest.raises(templates.TemplateError, match=reason):
        templates.render(body, variables)


def _template(**kw: object) -> Template:
    values = dict(
        key="t",
        name="t",
        kind="informational",
        body="#{고객명}님",
        approved_body="#{고객명}님",
        alimtalk_template_id="KA01TP1",
    )
    values.update(kw)
    return Template(**values)


@pytest.mark.parametrize(
    ("template", "kwargs", "reason"),
    [
        (None, {}, "템플릿이 없습니다"),
        (_template(is_active=False), {}, "사용 중지"),
        (_template(body="#{고객명}님 안녕"), {}, "승인된 내용과 다릅니다"),
        (_template(approved_body=None), {}, "승인된 템플릿 본문이 없습니다"),
        (_template(alimtalk_template_id=None), {"require_alimtalk_id": True}, "템플릿 ID"),
    ],
)
def test_preflight_refuses_drifted_or_unapproved_templates(template, kwargs, reason) -> None:
    with pytest.raises(templates.TemplateError, match=reason):
        templates.preflight(template, {"고객명": "홍길동"}, **kwargs)


def test_preflight_passes_the_approved_text() -> None:
    assert templates.preflight(_template(), {"고객명": "홍길동"}, require_alimtalk_id=True) == "홍길동님"
    # Advertising is not AlimTalk: no approved body needed.
    assert templates.preflight(_template(kind="advertising", approved_body=None), {"고객명": "a"}) == "a님"


def _check(kind: str = "advertising", recipient: Recipient = CONSENTED, now: datetime = NOON, **kw):
    return compliance.check(kind=kind, text="신상품 소식", recipient=recipient, shop=SHOP, now=now, **kw)


def test_informational_passes_untouched_even_at_night_and_after_opt_out() -> None:
    opted_out = Recipient(ad_opt_out_at=NOON)
    decision = _check("informational", opted_out, KST_2130)
    assert decision == compliance.Decision(Action.SEND, "신상품 소식")


def test_advertising_with_consent_gets_prefix_contact_and_free_opt_out() -> None:
    decision = _check()
    assert decision.action == Action.SEND
    assert decision.text.startswith("(광고) 테스트샵\n신상품 소식")
    assert "문의 02-111-2222" in decision.text
    assert decision.text.endswith("무료수신거부 080-123-4567")
    # Idempotent: passing the gate twice (a held message) does not double the wording.
    assert compliance.advertising_text(decision.text, SHOP) == decision.text


def test_advertising_without_consent_is_skipped() -> None:
    decision = _check(recipient=Recipient())
    assert decision.action == Action.SKIP and "동의 없음" in decision.reason


@pytest.mark.parametrize(("days_ago", "action"), [(30, Action.SEND), (180, Action.SEND), (200, Action.SKIP)])
def test_same_kind_purchase_within_six_months_is_the_exception(days_ago: int, action: Action) -> None:
    recipient = Recipient(last_same_kind_purchase_at=NOON - timedelta(days=days_ago))
    assert _check(recipient=recipient).action == action


def test_opt_out_stops_advertising_even_with_consent_or_purchase() -> None:
    recipient = Recipient(
        ad_consent_at=NOON - timedelta(days=10),
        ad_opt_out_at=NOON - timedelta(days=1),
        last_same_kind_purchase_at=NOON - timedelta(days=2),
    )
    decision = _check(recipient=recipient)
    assert decision.action == Action.SKIP and "수신거부" in decision.reason
    # Consenting again after the opt-out counts.
    again = Recipient(ad_consent_at=NOON - timedelta(hours=1), ad_opt_out_at=NOON - timedelta(days=1))
    assert _check(recipient=again).action == Action.SEND


@pytest.mark.parametrize(
    ("now", "hold_until"),
    [
        (KST_2130, datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),  # 21:30 -> 08:00 next day
        (KST_0759, datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),  # 07:59 -> 08:00 same day
        (datetime(2026, 12, 1, 12, 0, tzinfo=UTC), datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),  # 21:00 sharp
    ],
)
def test_night_ban_holds_until_eight_not_dropped(now: datetime, hold_until: datetime) -> None:
    decision = _check(now=now)
    assert decision.action == Action.HOLD
    assert decision.hold_until == hold_until
    assert "08:00" in decision.reason


def test_night_consent_allows_night_advertising_and_daytime_edges_pass() -> None:
    night_ok = Recipient(ad_consent_at=NOON - timedelta(days=3), night_ad_consent_at=NOON)
    assert _check(recipient=night_ok, now=KST_2130).action == Action.SEND
    assert _check(now=datetime(2026, 12, 1, 23, 0, tzinfo=UTC)).action == Action.SEND  # 08:00 sharp
    assert _check(now=datetime(2026, 12, 1, 11, 59, tzinfo=UTC)).action == Action.SEND  # 20:59


def test_pressure_limit_counts_advertising_only_and_holds_to_the_next_day() -> None:
    busy = Recipient(ad_consent_at=NOON - timedelta(days=3), ads_today=1)
    decision = _check(recipient=busy)
    assert decision.action == Action.HOLD and "빈도" in decision.reason
    assert decision.hold_until == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 08:00 KST on 12-02
    assert decision.reason.startswith("내일 08:00 발송 예정: 하루 광고 한도")
    assert _check(recipient=busy, daily_ad_limit=2).action == Action.SEND
    assert _check("informational", busy).action == Action.SEND


@pytest.mark.parametrize(
    ("now", "night_consent", "expected"),
    [
        (NOON, False, datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),  # 12:00 -> 08:00 next day
        (NOON, True, datetime(2026, 12, 1, 15, 0, tzinfo=UTC)),  # 12:00 -> midnight
        (datetime(2026, 12, 1, 14, 59, tzinfo=UTC), True, datetime(2026, 12, 1, 15, 0, tzinfo=UTC)),  # 23:59
        (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), False, datetime(2026, 12, 2, 23, 0, tzinfo=UTC)),  # 00:00
        (
            datetime(2026, 12, 31, 14, 0, tzinfo=UTC),
            False,
            datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
        ),  # year end
    ],
)
def test_next_ad_day_start_is_the_next_kst_day(
    now: datetime, night_consent: bool, expected: datetime
) -> None:
    assert compliance.next_ad_day_start(now, night_consent=night_consent) == expected


def test_unknown_kind_is_skipped() -> None:
    assert _check("spam").action == Action.SKIP
