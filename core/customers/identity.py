"""One person, one customer: the canonical form of a phone number, the key customers are found by.

Numbers arrive in every shape: "010-1234-5678", "01012345678", "+82 10 1234 5678", "82-10-…",
full-width digits from a Korean IME ("０１０…"), other scripts' digits, spaces and dots. Each path in
(forms, /pay, CSV import, campaigns, seeding, the chatbot) calls `identify` so the same number always
lands on one row. Only a Korean mobile number (what phonenumbers calls MOBILE) gets a canonical form;
anything else is kept as given and is never a message recipient.

Parsing is phonenumbers' (Google's libphonenumber metadata), not hand-written rules: it knows which
prefixes are mobile, converts every Unicode decimal digit, and is kept current with numbering plans.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

MAX_RAW_LENGTH = 200  # what we keep of a number we could not read ("stored as given", bounded)
NOT_MOBILE = "휴대전화 번호 아님"
# A person's mobile: phonenumbers also calls 012 (machine-to-machine, IoT) and 013/015 ranges MOBILE,
# but nobody reads KakaoTalk or an SMS on a meter, so those are never a customer's number.
PERSONAL_PREFIXES = frozenset({"010", "011", "016", "017", "018", "019"})
_NATIONAL_MOBILE = re.compile(r"01[0-9]{8,9}")
_SEPARATORS = re.compile(r"[\s\-.()/·‐-―−]+")


@dataclass(frozen=True, slots=True)
class PhoneIdentity:
    """What a typed phone number is: `mobile` is the canonical 010XXXXXXXX, or None when it is not one."""

    raw: str | None
    mobile: str | None

    @property
    def is_mobile(self) -> bool:
        return self.mobile is not None

    @property
    def display(self) -> str:
        """010-1234-5678 for a mobile; the text as given otherwise ("" when nothing was given)."""
        if self.mobile is not None:
            return format_mobile(self.mobile)
        return self.raw or ""


def _clean(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    return _SEPARATORS.sub("", text)


def canonical_mobile(raw: str | None) -> str | None:
    """'+82 10-1234-5678', '０１０１２３４５６７８', '82-10-1234-5678' → '01012345678'; not a Korean mobile → None.

    Idempotent: canonical_mobile(canonical_mobile(x)) == canonical_mobile(x) for every mobile x.
    Cached: an import or a merge meets the same number many times.
    """
    if raw is None:
        return None
    return _canonical(str(raw)[: MAX_RAW_LENGTH * 4])


@lru_cache(maxsize=65_536)
def _canonical(raw: str) -> str | None:
    text = _clean(raw)
    if not text or len(text) > 24:
        return None
    digits = "".join(str(unicodedata.digit(ch)) if ch.isdecimal() else ch for ch in text)
    if digits.startswith("+"):
        candidate = digits
    elif digits.startswith("82") and len(digits) in (11, 12, 13):
        candidate = "+" + digits  # "82-10-…" and "82-010-…" are both written for +82
    else:
        candidate = digits
    if candidate.startswith("+820"):
        candidate = "+82" + candidate[4:]  # the trunk 0 kept after the country code
    bare = candidate.lstrip("+")
    if not (bare.isascii() and bare.isdigit()):
        return None
    if candidate.startswith("+821") and _NATIONAL_MOBILE.fullmatch("0" + candidate[3:]):
        candidate = "0" + candidate[3:]  # +82 10… is 010…: the shapes of one number share one check
    if _NATIONAL_MOBILE.fullmatch(candidate):
        return _national_mobile(candidate)
    try:
        number = phonenumbers.parse(candidate, "KR")
    except NumberParseException:
        return None
    return _mobile_of(number)


@lru_cache(maxsize=262_144)
def _national_mobile(national: str) -> str | None:
    """The common shape (01X…, written nationally): what parse(national, "KR") gives, without its
    slow general path (tests/customers/test_identity.py checks both agree). Cached by the national
    digits, so the shapes of one number ("+82 10…", full-width, hyphens) are checked once."""
    return _mobile_of(phonenumbers.PhoneNumber(country_code=82, national_number=int(national[1:])))


def _mobile_of(number: phonenumbers.PhoneNumber) -> str | None:
    # number_type is UNKNOWN for an invalid number, so MOBILE implies valid (one check, not two: the
    # merge and the import run this for every row). A Korean national number drops the trunk 0.
    if number.country_code != 82 or phonenumbers.number_type(number) != PhoneNumberType.MOBILE:
        return None
    mobile = "0" + str(number.national_number)
    return mobile if mobile[:3] in PERSONAL_PREFIXES and len(mobile) in (10, 11) else None


def identify(raw: str | None) -> PhoneIdentity:
    """The number as kept on the customer row: canonical when mobile, else the given text, bounded."""
    if raw is None or not str(raw).strip():
        return PhoneIdentity(raw=None, mobile=None)
    given = str(raw).strip()[:MAX_RAW_LENGTH]
    return PhoneIdentity(raw=given, mobile=canonical_mobile(given))


def format_mobile(mobile: str) -> str:
    """'01012345678' → '010-1234-5678' (how staff read it)."""
    if len(mobile) == 11:
        return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if len(mobile) == 10:
        return f"{mobile[:3]}-{mobile[3:6]}-{mobile[6:]}"
    return mobile


def search_digits(text: str | None) -> str:
    """The digits a staff search means, in ASCII: the canonical mobile when the text is one
    ('+82 10 1234 5678' → '01012345678'), else its decimal digits of any script ('５６７８' → '5678')."""
    if not text:
        return ""
    mobile = canonical_mobile(text)
    if mobile is not None:
        return mobile
    return "".join(str(unicodedata.digit(ch)) for ch in unicodedata.normalize("NFKC", text)[:100] if ch.isdecimal())
