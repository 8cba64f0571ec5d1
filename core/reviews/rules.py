"""Pure review rules (values in, answers out; no database): the token, its 60 days, the 7-day edit
window, stars, text and photo checks, what counts as negative, the answer's SLA target.

Why these numbers: seed 004 asks for a direct form a customer can use from the review request; a link
that lives 60 days from the payment covers delivery plus a month of use, and 7 days of editing lets a
customer fix a review without letting an old review be rewritten after the shop answered it.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from core.clock import as_utc
from core.errors import ValidationFailed

TOKEN_DAYS = 60
EDIT_DAYS = 7
MAX_TEXT = 2000
MAX_ANSWER = 2000
MAX_HIDE_REASON = 200
MAX_PHOTO_BYTES = 5 * 1024 * 1024
NEGATIVE_MAX = 2  # 1-2 stars open an inquiry
DEFAULT_ANSWER_HOURS = 24
ANSWER_TARGET_SETTING = "review_answer_sla_hours"  # settings_store key, set on 설정
MAX_ANSWER_HOURS = 24 * 30
STARS = (1, 2, 3, 4, 5)

# 32 random bytes, URL-safe base64 (43 characters): unguessable; nothing else is accepted as a token.
TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class TokenState(StrEnum):
    """What a review link can do now."""

    MALFORMED = "malformed"  # not the shape of a token at all
    UNKNOWN = "unknown"  # the shape, but no such link
    EXPIRED = "expired"  # 60 days after the payment, never reviewed
    WRITABLE = "writable"  # no review yet: the form
    EDITABLE = "editable"  # reviewed less than 7 days ago: the form, filled in
    LOCKED = "locked"  # reviewed more than 7 days ago: read-only


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_shape_ok(token: str | None) -> bool:
    return bool(token) and _TOKEN_SHAPE.fullmatch(token or "") is not None


def token_expires_at(paid_at: datetime) -> datetime:
    return as_utc(paid_at) + timedelta(days=TOKEN_DAYS)


def edit_until(submitted_at: datetime) -> datetime:
    return as_utc(submitted_at) + timedelta(days=EDIT_DAYS)


def edit_window_start(now: datetime) -> datetime:
    """A review submitted at or after this instant may still be edited at `now`."""
    return now - timedelta(days=EDIT_DAYS)


def token_state(*, expires_at: datetime | None, submitted_at: datetime | None, now: datetime) -> TokenState:
    """A submitted review follows the edit window (its own 7 days, even past the 60); an unused link expires."""
    if submitted_at is not None:
        return TokenState.EDITABLE if now <= edit_until(submitted_at) else TokenState.LOCKED
    if expires_at is None or now > as_utc(expires_at):
        return TokenState.EXPIRED
    return TokenState.WRITABLE


def check_rating(raw: object) -> int:
    """1-5 stars, from a form's text or a number; anything else is refused in Korean."""
    text = str(raw).strip() if raw is not None else ""
    if not text.isascii() or not text.isdigit() or int(text) not in STARS:
        raise ValidationFailed("별점은 1점부터 5점 중에서 골라 주세요.")
    return int(text)


def check_text(raw: str | None, *, limit: int = MAX_TEXT, what: str = "후기") -> str:
    """Trimmed text without control characters (line breaks and tabs kept), at most `limit` characters."""
    text = (raw or "").replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise ValidationFailed(f"{what}는 {limit:,}자 이내로 써 주세요 (지금 {len(text):,}자).")
    if any((ord(ch) < 32 and ch not in "\n\t") or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise ValidationFailed(f"{what}에 쓸 수 없는 문자가 있어요.")
    return text


def is_negative(rating: int | None) -> bool:
    return rating is not None and rating <= NEGATIVE_MAX


# -- photos ----------------------------------------------------------------------------------------
PHOTO_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
PHOTO_REFUSED = "사진은 JPG, PNG, WEBP 이미지만 올릴 수 있어요."
PHOTO_TOO_BIG = f"사진은 {MAX_PHOTO_BYTES // (1024 * 1024)}MB 이하만 올릴 수 있어요."


def photo_type(data: bytes) -> str | None:
    """The image type its magic bytes say (JPEG, PNG, WEBP), never what the name or browser claims."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


_MARKUP = re.compile(rb"<\s*(!doctype|html|head|body|script|svg|iframe|object|embed|\?xml)", re.IGNORECASE)


def check_photo(data: bytes) -> str:
    """The photo's content type, or a Korean refusal: over 5 MB, not a JPEG/PNG/WEBP by its magic
    bytes, or markup anywhere in the first 1 KB (a JPEG header glued onto an HTML page)."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationFailed(PHOTO_TOO_BIG)
    kind = photo_type(data)
    if kind is None or _MARKUP.search(data[:1024]):
        raise ValidationFailed(PHOTO_REFUSED)
    return kind


# -- the answer's SLA ------------------------------------------------------------------------------
def check_answer_hours(raw: object) -> int:
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ANSWER_HOURS:
        raise ValidationFailed(f"리뷰 답변 목표는 1시간부터 {MAX_ANSWER_HOURS}시간 사이로 정해 주세요.")
    return int(text)
