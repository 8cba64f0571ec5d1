"""Customer identity: one canonical form of a Korean mobile number, from every shape people type it in;
anything else kept as given, marked "휴대전화 번호 아님", never a recipient, never a crash.

Tables of real input, then hypothesis over generated Unicode digit strings: canonicalisation is
idempotent, and two renderings of one number always land on one customer (through the service, on
a real store).
"""

from __future__ import annotations

import unicodedata

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType
from sqlalchemy import Engine
from sqlmodel import Session

from core.accounts.actor import Actor
from core.accounts.auth import phone_for
from core.customers import service
from core.customers.identity import MAX_RAW_LENGTH, NOT_MOBILE, canonical_mobile, format_mobile, identify
from core.messaging.phone import InvalidPhone, digits_only, mask_phone, normalize_mobile
from core.models import Customer, Role

MOBILE_CASES = [
    ("010-1234-5678", "01012345678"),
    ("01012345678", "01012345678"),
    ("010 1234 5678", "01012345678"),
    ("010.1234.5678", "01012345678"),
    ("(010) 1234-5678", "01012345678"),
    ("  010-1234-5678 \n", "01012345678"),
    ("+82 10-1234-5678", "01012345678"),
    ("+82-10-1234-5678", "01012345678"),
    ("+821012345678", "01012345678"),
    ("82-10-1234-5678", "01012345678"),
    ("82 10 1234 5678", "01012345678"),
    ("821012345678", "01012345678"),
    ("+82 010 1234 5678", "01012345678"),
    ("82-010-1234-5678", "01012345678"),
    ("０１０-１２３４-５６７８", "01012345678"),  # full-width (Korean IME)
    ("０１０１２３４５６７８", "01012345678"),
    ("＋８２ １０ １２３４ ５６７８", "01012345678"),
    ("٠١٠١٢٣٤٥٦٧٨", "01012345678"),  # Arabic-Indic
    ("۰۱۰۱۲۳۴۵۶۷۸", "01012345678"),  # Extended Arabic-Indic (Persian)
    ("०१०१२३४५६७८", "01012345678"),  # Devanagari
    ("０10-12３4-5678", "01012345678"),  # mixed scripts
    ("010‐1234‐5678", "01012345678"),  # Unicode hyphen U+2010
    ("010−1234−5678", "01012345678"),  # minus sign U+2212
    ("011-234-5678", "0112345678"),  # an old 10-digit mobile, still in the plan
    ("016-9876-5432", "01698765432"),
]

NOT_MOBILE_CASES = [
    "02-123-4567",  # Seoul landline
    "031-123-4567",  # Gyeonggi landline
    "070-1234-5678",  # internet phone
    "080-123-4567",  # free call
    "1588-1234",  # business number
    "010-123-456",  # too short
    "010-1234-56789",  # too long
    "010-5970-1234",  # 010 but outside the mobile plan
    "+1 650 253 0000",  # not Korean
    "+44 7911 123456",  # a UK mobile: still not a Korean mobile
    "+82",  # only a country code
    "82",
    "+",
    "010-1234-5678 📱",  # emoji
    "📞",
    "010-1234-5678 내선 2",
    "<b>010-1234-5678</b>",
    "010-1234-5678\x00",
    "１" * 200,
    "x" * 200,
    "0" * 24,
    "١٢٣",
    "tel:010-1234-5678",
]


@pytest.mark.parametrize(("raw", "expected"), MOBILE_CASES)
def test_every_shape_of_a_mobile_number_is_one_canonical_form(raw: str, expected: str) -> None:
    assert canonical_mobile(raw) == expected
    found = identify(raw)
    assert (found.mobile, found.is_mobile, found.display) == (expected, True, format_mobile(expected))
    assert normalize_mobile(raw) == format_mobile(expected)
    assert digits_only(raw) == expected and digits_only(raw).isascii()


@pytest.mark.parametrize("raw", NOT_MOBILE_CASES)
def test_anything_else_is_kept_as_given_and_never_a_recipient(raw: str) -> None:
    assert canonical_mobile(raw) is None
    found = identify(raw)
    assert found.mobile is None and not found.is_mobile
    assert found.raw == raw.strip()[:MAX_RAW_LENGTH]
    with pytest.raises(InvalidPhone, match=NOT_MOBILE):
        normalize_mobile(raw)
    assert digits_only(raw).isascii()  # never another script's digits to a provider
    assert service.phone_label(raw).endswith(f"({NOT_MOBILE})")


@pytest.mark.parametrize("raw", [None, "", "   ", "\n\t"])
def test_nothing_typed_is_no_phone(raw: str | None) -> None:
    found = identify(raw)
    assert (found.raw, found.mobile, found.display) == (None, None, "")
    assert canonical_mobile(raw) is None and service.phone_label(raw) == ""


def test_a_very_long_text_is_bounded_and_does_not_crash() -> None:
    raw = "전화번호" * 100_000
    found = identify(raw)
    assert found.mobile is None and len(found.raw) == MAX_RAW_LENGTH


@pytest.mark.parametrize(
    ("role", "phone", "shown"),
    [
        (Role.OWNER, "01012345678", "010-1234-5678"),
        (Role.CS, "+82 10 1234 5678", "010-1234-5678"),
        (Role.STAFF, "010-1234-5678", "010-****-5678"),
        (Role.STAFF, "０１０１２３４５６７８", "010-****-5678"),
        (Role.OWNER, "02-123-4567", f"02-123-4567 ({NOT_MOBILE})"),
        (Role.STAFF, "02-123-4567", f"021-****-4567 ({NOT_MOBILE})"),
        (Role.OWNER, "x" * 200, f"{'x' * 40}… ({NOT_MOBILE})"),
        (Role.OWNER, None, ""),
    ],
)
def test_screens_show_the_number_or_say_it_is_not_a_mobile(role: Role, phone: str | None, shown: str) -> None:
    assert phone_for(Actor(id=1, name="x", role=role), phone) == shown


def test_masking_uses_ascii_digits_only() -> None:
    assert mask_phone("٠١٠١٢٣٤٥٦٧٨") == "010-****-5678"


# -- generated input ------------------------------------------------------------------------------

# The zero of every Unicode decimal digit block people meet (and some they don't).
ZEROS = [0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1040, 0x17E0, 0x1D7CE]
SEPARATORS = ["", "", "-", " ", ".", "‐", "　"]


@st.composite
def renderings(draw: st.DrawFn, national: str) -> str:
    """One way a person might type `national` (010XXXXXXXX): a prefix form, digits of any script,
    separators anywhere."""
    prefix = draw(st.sampled_from(["0", "+82 ", "82-", "+82 0", "+82-", "82 0", "８２"]))
    body = national[1:]  # without the trunk 0
    zero = draw(st.sampled_from(ZEROS))
    mixed = draw(st.booleans())
    out = []
    for digit in body:
        z = draw(st.sampled_from(ZEROS)) if mixed else zero
        out.append(chr(z + int(digit)))
        out.append(draw(st.sampled_from(SEPARATORS)))
    head = prefix.replace("0", chr(zero)) if prefix.endswith("0") and prefix != "0" else prefix
    if prefix == "0":
        head = chr(zero)
    return head + "".join(out)


mobiles = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["010", "011", "016", "017", "019"]),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
).filter(lambda n: canonical_mobile(n) == n)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=60))
def test_any_text_gives_none_or_an_ascii_canonical_mobile_and_is_idempotent(raw: str) -> None:
    mobile = canonical_mobile(raw)
    if mobile is not None:
        assert mobile.isascii() and mobile.isdigit() and mobile.startswith("01") and len(mobile) in (10, 11)
        assert canonical_mobile(mobile) == mobile
        assert canonical_mobile(format_mobile(mobile)) == mobile
        assert canonical_mobile(identify(raw).display) == mobile


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Nd", "Zs", "Pd"]), min_size=0, max_size=30))
def test_generated_unicode_digit_strings_are_canonical_once(raw: str) -> None:
    mobile = canonical_mobile(raw)
    if mobile is not None:
        assert canonical_mobile(mobile) == mobile
        # the same digits, in ASCII, are the same number
        ascii_form = "".join(str(unicodedata.digit(ch)) if ch.isdecimal() else ch for ch in raw)
        assert canonical_mobile(ascii_form) == mobile


@settings(max_examples=800, deadline=None)
@given(st.data())
def test_every_rendering_of_a_number_is_the_same_number(data: st.DataObject) -> None:
    national = data.draw(mobiles)
    first, second = data.draw(renderings(national)), data.draw(renderings(national))
    assert canonical_mobile(first) == canonical_mobile(second) == national


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=10, max_size=11).map(lambda d: "01" + d[2:]))
def test_the_fast_path_agrees_with_phonenumbers(national: str) -> None:
    """phonenumbers decides what is a valid Korean mobile; we add one rule: a person's range."""

    def personal(number: phonenumbers.PhoneNumber) -> str | None:
        mobile = "0" + str(number.national_number)
        is_mobile = phonenumbers.number_type(number) == PhoneNumberType.MOBILE
        return mobile if is_mobile and mobile[:3] in PERSON_PREFIXES else None

    assert canonical_mobile(national) == personal(phonenumbers.parse(national, "KR"))
    assert canonical_mobile("+82 " + national[1:]) == personal(phonenumbers.parse("+82" + national[1:], None))


# The ranges a person's phone is in (과학기술정보통신부 번호 체계): 010 and the older 011/016/017/018/019.
# 012 is machine-to-machine (meters, trackers), 013 and 015 are data and paging ranges: phonenumbers
# calls them MOBILE, but nobody reads a KakaoTalk message there, so none is ever a customer's mobile.
PERSON_PREFIXES = ("010", "011", "016", "017", "018", "019")


@pytest.mark.parametrize(
    ("raw", "mobile"),
    [
        ("010-1234-5678", "01012345678"),
        ("011-234-5678", "0112345678"),
        ("016-234-5678", "0162345678"),
        ("019-234-5678", "0192345678"),
        ("012-0000-0000", None),  # M2M: seen as "120000000" in the bad-input property test
        ("012-345-6789", None),
        ("+82 12 3456 7890", None),
        ("013-1234-5678", None),
        ("015-1234-5678", None),
    ],
)
def test_only_a_persons_range_is_a_mobile(raw: str, mobile: str | None) -> None:
    assert canonical_mobile(raw) == mobile


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_two_renderings_of_one_number_land_on_one_customer(sqlite_engine: Engine, data: st.DataObject) -> None:
    national = data.draw(mobiles)
    first, second = data.draw(renderings(national)), data.draw(renderings(national))
    with Session(sqlite_engine) as session:
        a = service.find_or_create_by_phone(session, "가", first)
        b = service.find_or_create_by_phone(session, "나", second)
        found = service.find_by_phone(session, format_mobile(national))
        session.commit()
        assert a.id == b.id == found.id
        assert (a.mobile, a.phone) == (national, format_mobile(national))


def test_the_orm_keeps_phone_and_mobile_in_step(engine: Engine) -> None:
    """Any path that writes Customer.phone through the ORM gets the canonical mobile too."""
    with Session(engine) as session:
        customer = Customer(name="가", phone="+82 10 2222 3333")
        session.add(customer)
        session.commit()
        assert (customer.phone, customer.mobile) == ("010-2222-3333", "01022223333")
        customer.phone = "02-123-4567"
        session.add(customer)
        session.commit()
        assert (customer.phone, customer.mobile) == ("02-123-4567", None)


@pytest.mark.parametrize("query", ["01012345678", "010-1234-5678", "+82 10 1234 5678", "１２３４５６７８", "5678"])
def test_staff_searches_find_the_number_in_any_shape(sqlite_engine: Engine, query: str) -> None:
    from core.inquiries.queue import find_customers

    with Session(sqlite_engine) as s:
        customer = service.find_or_create_by_phone(s, "가", "010-1234-5678")
        service.find_or_create_by_phone(s, "나", "010-9999-0000")
        s.commit()
        assert [c.id for c in find_customers(s, query)] == [customer.id]
