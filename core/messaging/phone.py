"""Korean mobile numbers on the way out: the one check before any message is sent.

Thin wrappers over core.customers.identity (phonenumbers, NFKC, ASCII digits only), kept so the
sender and the SLA alert keep their names: '+82 10-1234-5678', '０１０１２３４５６７８' and
'01012345678' → '010-1234-5678'; a landline, a short number or text raises InvalidPhone.
"""

from __future__ import annotations

import re

from core.customers.identity import NOT_MOBILE, canonical_mobile, format_mobile


class InvalidPhone(ValueError):
    """The number cannot receive a KakaoTalk/SMS message; str(exc) is the reason shown to staff."""


_NOT_ASCII_DIGIT = re.compile(r"[^0-9]")


def normalize_mobile(raw: str | None) -> str:
    """'+82 10-1234-5678', '01012345678' -> '010-1234-5678'; anything else raises InvalidPhone."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("전화번호가 없습니다")
    mobile = canonical_mobile(raw)
    if mobile is None:
        raise InvalidPhone(f"{NOT_MOBILE}: 한국 휴대전화 번호 형식이 아닙니다 ({str(raw).strip()[:40]})")
    return format_mobile(mobile)


def digits_only(phone: str) -> str:
    """The form providers want on the wire (01012345678): ASCII digits only, never another script's."""
    mobile = canonical_mobile(phone)
    return mobile if mobile is not None else _NOT_ASCII_DIGIT.sub("", phone)


def mask_phone(phone: str) -> str:
    """'010-1234-5678' -> '010-****-5678': enough to tell two customers apart, not enough to call one."""
    mobile = canonical_mobile(phone)
    digits = mobile if mobile is not None else _NOT_ASCII_DIGIT.sub("", phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}-****-{digits[-4:]}"
