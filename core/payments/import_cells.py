"""One cell of an imported export read as a value: whole won, a KST time, a phone, a choice from a
table of Korean and English words, a product name as compared. Each raises ValueError with a
Korean message naming the column, which core.payments.import_rows turns into a row error.
The values each column may take are listed in docs/order-import.md.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from core import clock
from core.customers.identity import MAX_RAW_LENGTH

# The words of one meaning stay on one line.
# fmt: off
METHODS = {
    "": None, "CARD": "CARD", "카드": "CARD", "신용카드": "CARD", "체크카드": "CARD",
    "MONEY": "MONEY", "카카오머니": "MONEY", "머니": "MONEY", "카카오페이": "MONEY",
}


PAID, REFUNDED, PARTIAL, CANCELED = "paid", "refunded", "partially_refunded", "canceled"


STATUSES = {
    "": "",
    "paid": PAID, "결제 완료": PAID, "결제완료": PAID, "구매확정": PAID, "구매 확정": PAID, "배송완료": PAID,
    "배송중": PAID, "배송준비": PAID, "발송대기": PAID, "발송완료": PAID, "배송 완료": PAID,
    "refunded": REFUNDED, "환불 완료": REFUNDED, "환불완료": REFUNDED, "반품완료": REFUNDED, "반품 완료": REFUNDED,
    "partially_refunded": PARTIAL, "partially refunded": PARTIAL, "부분 환불": PARTIAL, "부분환불": PARTIAL,
    "canceled": CANCELED, "cancelled": CANCELED, "취소": CANCELED, "취소완료": CANCELED, "취소 완료": CANCELED,
}
# fmt: on


DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y. %m. %d %H:%M",
    "%Y. %m. %d",
)


INT_NOISE = str.maketrans("", "", ",원₩ ")


_SPACES = re.compile(r"\s+")


def whole_number(text: str, label: str, *, low: int, high: int) -> int:
    """Whole won or a count in low..high: '39,000원', '３９０００' and a spreadsheet's '39000.0' too."""
    if text.isascii() and text.isdigit() and len(text) < 16:  # the common case, at 300,000 calls a file
        value = int(text)
        if low <= value <= high:
            return value
    cleaned = unicodedata.normalize("NFKC", text).translate(INT_NOISE)
    if cleaned.endswith(".0"):  # a spreadsheet's whole number
        cleaned = cleaned[:-2]
    if not re.fullmatch(r"-?\d{1,15}", cleaned):
        raise ValueError(f"{label}은(는) 정수여야 합니다: {text[:40]!r}")
    value = int(cleaned)
    if not low <= value <= high:
        raise ValueError(f"{label}은(는) {low:,}~{high:,} 사이여야 합니다: {value:,}")
    return value


def instant(text: str, cache: dict[str, datetime] | None = None) -> datetime:
    """An order time; spreadsheets repeat the same stamps a lot, so parsed values are memoised."""
    if cache is not None and text in cache:
        return cache[text]
    value = parse_instant(text)
    if cache is not None:
        cache[text] = value
    return value


def parse_instant(text: str, label: str = "주문일시") -> datetime:
    """ISO-8601, or one of DATE_FORMATS read as KST; returned in UTC."""
    text = text.strip()
    try:  # fast path: 2026-11-01, 2026-11-01 14:30[:00], ISO-8601 with or without offset
        return clock.parse_instant(text)
    except ValueError:
        pass
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=clock.KST).astimezone(clock.UTC)
        except ValueError:
            continue
    raise ValueError(f"{label} 형식이 올바르지 않습니다: {text[:40]!r} (예: 2026-11-01 14:30)")


def phone_cell(text: str) -> str | None:
    """As given (bounded): core.customers.identity finds the person; a non-mobile is kept, never sent to."""
    return text.strip()[:MAX_RAW_LENGTH] or None


def choice(text: str, choices: dict[str, Any]) -> tuple[bool, Any]:
    """(known, value) of a word in a table (METHODS, STATUSES), as typed or in either case."""
    if text in choices:
        return True, choices[text]
    for key in (text, text.upper(), text.lower()):
        if key in choices:
            return True, choices[key]
    return False, None


def same_name(name: str) -> str:
    """How two product names are compared: NFKC, spaces collapsed (memoised: names repeat)."""
    found = _NAMES.get(name)
    if found is None:
        found = _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip()
        if len(_NAMES) < 100_000:
            _NAMES[name] = found
    return found


_NAMES: dict[str, str] = {}
