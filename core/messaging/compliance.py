"""The compliance gate every customer message passes (정보통신망법 제50조), as one pure function.

Informational messages pass untouched. Advertising needs prior ad consent (or a purchase of the same
kind of goods in the last 6 months), stops at once on opt-out, is held (not dropped) during the
night ban without night consent, respects a per-customer pressure limit per KST day (an ad over the
limit is held to the next day, not dropped), and gets the required text:
"(광고)" + shop name first, the contact number, and the free opt-out line last.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from core import clock
from core.models import MessageKind

NIGHT_START = time(21, 0)
NIGHT_END = time(8, 0)
PURCHASE_EXCEPTION_MONTHS = 6  # 시행령 제61조: 6 months from the day the transaction ended
AD_PREFIX = "(광고)"


class Action(StrEnum):
    SEND = "send"
    HOLD = "hold"
    SKIP = "skip"


@dataclass(frozen=True)
class Recipient:
    """What the gate needs to know about the customer (facts, not rows: the gate stays pure)."""

    ad_consent_at: datetime | None = None
    night_ad_consent_at: datetime | None = None
    ad_opt_out_at: datetime | None = None
    last_same_kind_purchase_at: datetime | None = None
    ads_today: int = 0  # advertising messages already counted for this customer on this KST day


@dataclass(frozen=True)
class Shop:
    name: str
    opt_out_number: str
    phone: str | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    text: str
    reason: str | None = None
    hold_until: datetime | None = None
    pressure: bool = False  # held for the daily limit: the sender moves it to the next free day


def has_opted_out(recipient: Recipient) -> bool:
    """An opt-out counts unless the customer consented again after it."""
    if recipient.ad_opt_out_at is None:
        return False
    return recipient.ad_consent_at is None or recipient.ad_opt_out_at >= recipient.ad_consent_at


def next_day_start(at: datetime) -> datetime:
    """The next 08:00 KST at or after `at` (the end of the night ban)."""
    local = clock.to_kst(at)
    candidate = datetime.combine(local.date(), NIGHT_END, tzinfo=clock.KST)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(clock.UTC)


def next_ad_day_start(at: datetime, *, night_consent: bool) -> datetime:
    """The first instant of the next KST day an ad may go: midnight with night consent, else 08:00."""
    tomorrow = clock.to_kst(at).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time() if night_consent else NIGHT_END, tzinfo=clock.KST).astimezone(
        clock.UTC
    )


def pressure_reason(daily_ad_limit: int, until: datetime, now: datetime | None = None) -> str:
    """What staff and the 메시지 page read on an ad held for the daily limit: when it goes, and why
    ("내일 08:00 발송 예정: 하루 광고 한도 (고객당 1건)")."""
    local = clock.to_kst(until)
    days = (local.date() - clock.today_kst(now)).days if now is not None else None
    day = (
        {0: "오늘", 1: "내일", 2: "모레"}.get(days, f"{local.month}월 {local.day}일")
        if days is not None
        else None
    )
    when = f"{day} {local:%H:%M}" if day else clock.format_kst(until)
    return f"{when} 발송 예정: 하루 광고 한도 (광고 빈도 제한, 고객당 하루 {daily_ad_limit}건)"


def purchase_exception_last_day(purchase_day: date) -> date:
    """The last KST day a purchase on `purchase_day` allows ads of the same kind without consent.

    정보통신망법 제50조①1 and 시행령 제61조: 6 months from the day the transaction ended, counted
    as 민법 제157조/제160조 count months: the period starts the next day and ends the day before the
    corresponding day 6 months later (the month's last day when that month has no such day).
    """
    start = purchase_day + timedelta(days=1)
    month_index = start.month - 1 + PURCHASE_EXCEPTION_MONTHS
    year, month = start.year + month_index // 12, month_index % 12 + 1
    last_of_month = calendar.monthrange(year, month)[1]
    if start.day > last_of_month:
        return date(year, month, last_of_month)
    return date(year, month, start.day) - timedelta(days=1)


def purchase_exception_applies(purchased_at: datetime | None, now: datetime) -> bool:
    """True while a purchase still stands in for ad consent (through the whole last KST day)."""
    if purchased_at is None or purchased_at > now:
        return False
    last_day = purchase_exception_last_day(clock.to_kst(purchased_at).date())
    return clock.to_kst(now).date() <= last_day


def earliest_excepting_purchase(now: datetime) -> datetime:
    """The earliest instant a purchase must be at or after to still stand in for consent at `now`
    (a KST midnight; the last days are monotonic in the purchase day, so one bound fits all)."""
    today = clock.to_kst(now).date()
    day = today - timedelta(days=200)  # pragma: no mutate (equivalent: 185+ days back find the same day)
    while purchase_exception_last_day(day) < today:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=clock.KST).astimezone(clock.UTC)


def in_night_ban(at: datetime) -> bool:
    local = clock.to_kst(at).time()
    return local >= NIGHT_START or local < NIGHT_END


# An ad marker staff may type themselves, in any bracket and spacing: "(광고)", "( 광고 )", "[광고]",
# "【광고】", "<광고>", full-width "（광고）" (NFKC makes that "(광고)"), "(광 고)"...
_MARKER = re.compile(r"^\s*[(\[{<〈《【〔「『]\s*광\s*고\s*[)\]}>〉》】〕」』]\s*[:：\-·]?\s*")
_OPT_OUT_LINE = re.compile(r"(수\s*신\s*거\s*부|수\s*신\s*차\s*단|무\s*료\s*거\s*부)")


def strip_ad_frame(text: str, shop: Shop) -> str:
    """The body without any ad frame typed or added before: a leading ad marker (in any spelling)
    and the shop name after it, and trailing opt-out and shop-contact lines. The frame is then
    rebuilt by code (advertising_text), never trusted from the text."""
    lines = text.strip().splitlines()
    while lines:
        first = unicodedata.normalize("NFKC", lines[0])
        if not _MARKER.match(first):
            break
        rest = _MARKER.sub("", first, count=1).strip()
        for name in (shop.name, unicodedata.normalize("NFKC", shop.name)):
            if name and rest.startswith(name):
                rest = rest[len(name) :].strip()
        lines = ([rest] if rest else []) + lines[1:]
    contact = f"문의 {shop.phone}" if shop.phone else None
    while lines:
        last = unicodedata.normalize("NFKC", lines[-1]).strip()
        if not last or _OPT_OUT_LINE.search(last) or (contact is not None and last == contact):
            lines.pop()
            continue
        break
    return "\n".join(lines).strip()


def advertising_text(text: str, shop: Shop) -> str:
    """The lawful frame (정보통신망법 제50조④, 시행령 제61조), built by code around the body:
    "(광고) shop" as the first line, the shop's contact, and the free opt-out line last. Whatever
    frame the text carried is stripped first, so a typed "(광고)" never hides the sender's name;
    applying it twice gives the same text."""
    body = strip_ad_frame(text, shop)
    contact = f"\n문의 {shop.phone}" if shop.phone and shop.phone not in body else ""
    return f"{AD_PREFIX} {shop.name}\n{body}{contact}\n무료수신거부 {shop.opt_out_number}"


def check(
    *, kind: str, text: str, recipient: Recipient, shop: Shop, now: datetime, daily_ad_limit: int = 1
) -> Decision:
    """Decide send / hold / skip for one message as of `now`, with the text to send."""
    if kind == MessageKind.INFORMATIONAL:
        return Decision(Action.SEND, text)
    if kind != MessageKind.ADVERTISING:
        return Decision(Action.SKIP, text, reason=f"알 수 없는 메시지 종류: {kind}")
    if has_opted_out(recipient):
        return Decision(Action.SKIP, text, reason="광고 수신거부 고객")
    recent_purchase = purchase_exception_applies(recipient.last_same_kind_purchase_at, now)
    if recipient.ad_consent_at is None and not recent_purchase:
        return Decision(Action.SKIP, text, reason="광고 수신 동의 없음 (6개월 내 동종 구매도 없음)")
    if in_night_ban(now) and recipient.night_ad_consent_at is None:
        return Decision(
            Action.HOLD,
            text,
            reason="야간 광고 금지 (21:00~08:00): 08:00까지 보류",
            hold_until=next_day_start(now),
        )
    if recipient.ads_today >= daily_ad_limit:
        until = next_ad_day_start(now, night_consent=recipient.night_ad_consent_at is not None)
        return Decision(
            Action.HOLD,
            text,
            reason=pressure_reason(daily_ad_limit, until, now),
            hold_until=until,
            pressure=True,
        )
    return Decision(Action.SEND, advertising_text(text, shop))
