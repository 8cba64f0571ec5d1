"""Korean mobile numbers: validate and normalise to 010-XXXX-XXXX before any message is sent."""

from __future__ import annotations

import re

from core.customers.identity import canonical_mobile, format_mobile


class InvalidPhone(ValueError):
    """The number cannot receive a KakaoTalk/SMS message; str(exc) is the reason shown to staff."""


def normalize_mobile(raw: str | None) -> str:
    """'+82 10-1234-5678', '01012345678', full-width '０１０…' -> '010-1234-5678' (ASCII digits
    only, by core.customers.identity's phonenumbers-based canonical form); anything that is not a
    Korean mobile number raises InvalidPhone: a landline, a short number, text, emoji."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("전화번호가 없습니다")
    mobile = canonical_mobile(str(raw))
    if mobile is None:
        shown = str(raw).strip()[:40]
        raise InvalidPhone(f"휴대전화 번호 아님 (한국 휴대전화 번호 형식이 아닙니다): {shown}")
    return format_mobile(mobile)


def digits_only(phone: str) -> str:
    """The form providers want on the wire (01012345678)."""
    return re.sub(r"\D", "", phone)


def mask_phone(phone: str) -> str:
    """'010-1234-5678' -> '010-****-5678': enough to tell two customers apart, not enough to call one."""
    digits = digits_only(phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}-****-{digits[-4:]}"
