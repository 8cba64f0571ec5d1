"""The pure review rules as tables: the link's 60 days, the 7-day edit window, stars, text, photos.

Rules (issue 20, seed 004): a link per order item, valid 60 days from the payment; a review editable
for 7 days, then read-only; 1-5 stars; 1-2 stars are negative (an inquiry opens); a photo is a JPEG,
PNG or WEBP by its bytes, at most 5 MB, never markup; a review of 100,000 characters is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ValidationFailed
from core.reviews import photos, rules
from core.reviews.rules import TokenState
from tests.reviews.helpers import image_bytes

PAID = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("submitted", "now", "state"),
    [
        (None, PAID, TokenState.WRITABLE),
        (None, PAID + timedelta(days=60), TokenState.WRITABLE),  # the 60th day still counts
        (None, PAID + timedelta(days=60) + SECOND, TokenState.EXPIRED),
        (PAID + timedelta(days=10), PAID + timedelta(days=17), TokenState.EDITABLE),  # exactly 7 days
        (PAID + timedelta(days=10), PAID + timedelta(days=17) + SECOND, TokenState.LOCKED),
        # a review written on day 59 stays editable its own 7 days, past the link's 60
        (PAID + timedelta(days=59), PAID + timedelta(days=65), TokenState.EDITABLE),
    ],
)
def test_link_state(submitted: datetime | None, now: datetime, state: TokenState) -> None:
    expires = rules.token_expires_at(PAID)
    assert expires == PAID + timedelta(days=60)
    assert rules.token_state(expires_at=expires, submitted_at=submitted, now=now) == state


def test_a_token_is_unguessable_and_only_its_shape_is_accepted() -> None:
    tokens = {rules.new_token() for _ in range(1000)}
    assert len(tokens) == 1000 and all(rules.token_shape_ok(t) for t in tokens)
    assert all(len(t) == 43 for t in tokens)  # 32 random bytes


@pytest.mark.parametrize(
    "token",
    [
        "",
        None,
        "abc",
        "x" * 42,
        "x" * 44,
        "a" * 42 + "=",
        "a" * 42 + "<",
        "' OR 1=1 --" + "a" * 32,
        "ａ" * 43,
        "a" * 42 + "\n",
    ],
)
def test_malformed_tokens(token: str | None) -> None:
    assert not rules.token_shape_ok(token)


@pytest.mark.parametrize(("raw", "stars"), [("1", 1), ("5", 5), (" 3 ", 3), (4, 4)])
def test_stars_accepted(raw: object, stars: int) -> None:
    assert rules.check_rating(raw) == stars


@pytest.mark.parametrize("raw", ["0", "6", "abc", "", None, "-1", "3.5", "１", "10", "٣", "5e0"])
def test_stars_refused_in_korean(raw: object) -> None:
    with pytest.raises(ValidationFailed, match="별점은 1점부터 5점"):
        rules.check_rating(raw)


@pytest.mark.parametrize(
    ("rating", "negative"), [(1, True), (2, True), (3, False), (4, False), (5, False), (None, False)]
)
def test_negative_is_one_or_two_stars(rating: int | None, negative: bool) -> None:
    assert rules.is_negative(rating) is negative


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("", True),
        ("좋아요", True),
        ("가" * 2000, True),
        ("가" * 2001, False),
        ("가" * 100_000, False),
        ("줄\n바꿈\t탭", True),
        ("널\x00문자", False),
        ("벨\x07", False),
        ("<script>alert(1)</script>", True),
    ],
)
def test_text_limit_and_characters(text: str, ok: bool) -> None:
    if ok:
        assert rules.check_text(text) == text.strip()
    else:
        with pytest.raises(ValidationFailed) as refused:
            rules.check_text(text)
        assert any("가" <= ch <= "힣" for ch in str(refused.value))


def test_the_100000_character_refusal_says_the_limit() -> None:
    with pytest.raises(ValidationFailed, match="2,000자 이내"):
        rules.check_text("가" * 100_000)


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
HTML = b"<!doctype html><html><script>alert(1)</script></html>"
JPEG_ON_HTML = b"\xff\xd8\xff\xe0" + b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (image_bytes("PNG"), "image/png"),
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("WEBP"), "image/webp"),
    ],
)
def test_real_images_pass_by_their_bytes(data: bytes, kind: str) -> None:
    assert rules.check_photo(data) == kind
    cleaned, cleaned_kind = photos.clean_photo(data)
    assert cleaned_kind == kind and rules.photo_type(cleaned) == kind


@pytest.mark.parametrize(
    "data",
    [
        SVG,
        HTML,
        JPEG_ON_HTML,
        b"GIF89a" + b"\x00" * 20,
        b"",
        b"\xff\xd8\xff" + b"\x00" * 100,  # header only
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
        b"RIFF\x00\x00\x00\x00WEBPVP8 junk",
    ],
)
def test_anything_else_is_refused_in_korean(data: bytes) -> None:
    with pytest.raises(ValidationFailed, match="JPG, PNG, WEBP"):
        photos.clean_photo(data)


def test_a_photo_over_5_mb_is_refused_before_decoding() -> None:
    with pytest.raises(ValidationFailed, match="5MB 이하"):
        rules.check_photo(b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024))


def test_the_published_photo_carries_no_location() -> None:
    """A phone photo's EXIF (here a GPS block) never reaches the public showcase."""
    from PIL import Image

    original = image_bytes(exif_gps=True)
    assert b"Exif" in original[:200]
    cleaned, _kind = photos.clean_photo(original)
    assert b"Exif" not in cleaned
    import io

    assert 0x8825 not in Image.open(io.BytesIO(cleaned)).getexif()


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 MP, a few KB
    with pytest.raises(ValidationFailed, match="JPG, PNG, WEBP"):
        photos.clean_photo(out.getvalue())


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("24", True),
        ("1", True),
        ("720", True),
        ("0", False),
        ("721", False),
        ("abc", False),
        ("", False),
        ("2.5", False),
    ],
)
def test_answer_target_hours(raw: str, ok: bool) -> None:
    if ok:
        assert rules.check_answer_hours(raw) == int(raw)
    else:
        with pytest.raises(ValidationFailed, match="리뷰 답변 목표"):
            rules.check_answer_hours(raw)
