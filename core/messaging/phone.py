"""Korean mobile numbers: validate and normalise to 010-XXXX-XXXX before any message is sent."""

from __future__ import annotations

import re


class InvalidPhone(ValueError):
    """The number cannot receive a KakaoTalk/SMS message; str(exc) is the reason shown to staff."""


_SEPARATORS = re.compile(r"[\s\-.()]")


def normalize_mobile(raw: str | None) -> str:
    """'+82 10-1234-5678', '01012345678' -> '010-1234-5678'; anything else raises InvalidPhone."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("전화번호가 없습니다")
    digits = _SEPARATORS.sub("", str(raw).strip())
    if digits.startswith("+"):
        if not digits.startswith("+82"):
            raise InvalidPhone(f"한국 휴대전화 번호가 아닙니다: {raw}")
        digits = digits[3:]
        digits = digits if digits.startswith("0") else "0" + digits
    elif digits.startswith("82") and len(digits) in (12, 13):
        digits = digits[2:] if digits[2] == "0" else "0" + digits[2:]
    if not digits.isdigit():
        raise InvalidPhone(f"전화번호 형식이 아닙니다: {raw}")
    if digits.startswith("010") and len(digits) == 11:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if digits[:3] in ("011", "016", "017", "018", "019") and len(digits) in (10, 11):
        middle = len(digits) - 7
        return f"{digits[:3]}-{digits[3 : 3 + middle]}-{digits[3 + middle :]}"
    raise InvalidPhone(f"한국 휴대전화 번호가 아닙니다: {raw}")


def digits_only(phone: str) -> str:
    """The form providers want on the wire (01012345678)."""
    return re.sub(r"\D", "", phone)


def mask_phone(phone: str) -> str:
    """'010-1234-5678' -> '010-****-5678': enough to tell two customers apart, not enough to call one."""
    digits = digits_only(phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}-****-{digits[-4:]}"
