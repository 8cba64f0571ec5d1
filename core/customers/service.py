"""Finding and creating customers by phone: the one way in for every path that knows a number.

A person is one row: the payment-link page, staff forms, the CSV import and the seed look a number
up by its canonical mobile (core.customers.identity) and create a row only when there is none, so a
number typed as "010-1234-5678", "+82 10 1234 5678" or in full-width digits finds the same customer
and with it the same consent and opt-out. The unique index on `customer.mobile` is the last word:
when two transactions create the same number at once, the second finds the first's row.

A number that is not a Korean mobile is kept as given (bounded) and matched by its exact text; such
a customer is shown with "휴대전화 번호 아님" and never receives a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock
from core.customers.identity import NOT_MOBILE, PhoneIdentity, identify
from core.errors import ValidationFailed
from core.models import Customer
from core.models.customers import _opaque_id

C = Customer.__table__.c  # type: ignore[attr-defined]
NAME_MAX = 64
_CHUNK = 2000


def phone_label(phone: str | None) -> str:
    """How a stored phone reads on staff screens: '010-1234-5678', or the text with '(휴대전화 번호 아님)'."""
    found = identify(phone)
    if found.raw is None:
        return ""
    if found.is_mobile:
        return found.display
    return f"{found.raw} ({NOT_MOBILE})"


def find_by_phone(session: Session, raw_phone: str | None) -> Customer | None:
    """The customer of this number in whatever shape it was typed; None when there is none."""
    return _find(session, identify(raw_phone))


def _find(session: Session, found: PhoneIdentity) -> Customer | None:
    if found.mobile is not None:
        return session.scalars(select(Customer).where(C.mobile == found.mobile)).first()
    if found.raw:
        query = select(Customer).where(C.phone == found.raw, C.mobile.is_(None)).order_by(C.id)
        return session.scalars(query).first()
    return None


def find_or_create_by_phone(
    session: Session, name: str | None, raw_phone: str | None, *, require_mobile: bool = False
) -> Customer:
    """The customer of this number, created (name, display phone, canonical mobile) when new.

    require_mobile: refuse a number that is not a Korean mobile (the payment page, where the
    customer can correct it) instead of keeping it as given."""
    found = identify(raw_phone)
    if require_mobile and not found.is_mobile:
        raise ValidationFailed("휴대폰 번호를 확인해 주세요 (예: 010-1234-5678)")
    existing = _find(session, found)
    if existing is not None:
        return existing
    clean_name = (name or "").strip()[:NAME_MAX]
    if not clean_name:
        raise ValidationFailed("고객 이름을 입력하세요")
    customer = Customer(name=clean_name, phone=found.display or None, mobile=found.mobile)
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:
        # Another transaction created this number between our look and our insert: it is theirs.
        again = _find(session, found)
        if again is None:
            raise
        return again
    return customer


@dataclass
class PhoneMatch:
    """For a batch of typed numbers: the customer id of each, and how many customers were new."""

    ids: dict[str, int]
    created: int


def new_row(name: str, phone: str | None, mobile: str | None, now: datetime) -> dict[str, object]:
    """A new customer's row for a bulk insert (the import): a channel friend with no consent yet."""
    return {
        "name": name,
        "phone": phone,
        "mobile": mobile,
        "is_channel_friend": True,
        "public_id": _opaque_id(),
        "created_at": now,
        "ad_consent_at": None,
        "night_ad_consent_at": None,
        "ad_opt_out_at": None,
    }


def ids_for_phones(session: Session, names_by_phone: Mapping[str, str]) -> PhoneMatch:
    """{typed phone: name} → {typed phone: customer id}, creating the missing customers in bulk.

    Two typed forms of one number get one id (and one new row, named after the first); for the CSV
    import, where a year of orders meets the same people many times."""
    idents = {raw: identify(raw) for raw in names_by_phone}
    mobiles = sorted({f.mobile for f in idents.values() if f.mobile is not None})
    others = sorted({f.raw for f in idents.values() if f.mobile is None and f.raw})
    by_mobile: dict[str, int] = {}
    by_text: dict[str, int] = {}
    _lookup(session, mobiles, others, by_mobile, by_text)
    new: dict[tuple[str, str], dict[str, object]] = {}
    now = clock.now()
    for raw, found in idents.items():
        key = ("m", found.mobile) if found.mobile is not None else ("t", found.raw or "")
        if not key[1] or (by_mobile if key[0] == "m" else by_text).get(key[1]) is not None or key in new:
            continue
        name = (names_by_phone[raw] or "").strip()[:NAME_MAX] or "-"
        new[key] = new_row(name, found.display or None, found.mobile, now)
    if new:
        rows = list(new.values())
        for i in range(0, len(rows), _CHUNK):
            session.execute(Customer.__table__.insert(), rows[i : i + _CHUNK])  # type: ignore[attr-defined]
        _lookup(
            session,
            [k for kind, k in new if kind == "m"],
            [k for kind, k in new if kind == "t"],
            by_mobile,
            by_text,
        )
    ids: dict[str, int] = {}
    for raw, found in idents.items():
        cid = by_mobile.get(found.mobile) if found.mobile is not None else by_text.get(found.raw or "")
        if cid is not None:
            ids[raw] = cid
    return PhoneMatch(ids=ids, created=len(new))


def _lookup(
    session: Session, mobiles: list[str], others: list[str], by_mobile: dict[str, int], by_text: dict[str, int]
) -> None:
    for i in range(0, len(mobiles), _CHUNK):
        query = select(C.mobile, C.id).where(C.mobile.in_(mobiles[i : i + _CHUNK]))
        by_mobile.update({m: cid for m, cid in session.execute(query)})
    for i in range(0, len(others), _CHUNK):
        query = (
            select(C.phone, C.id)
            .where(C.phone.in_(others[i : i + _CHUNK]), C.mobile.is_(None))
            .order_by(C.id.desc())  # the oldest row wins in the dict below
        )
        by_text.update({p: cid for p, cid in session.execute(query)})
