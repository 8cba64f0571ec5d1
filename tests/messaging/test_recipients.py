"""Reach is the truth, and the sender sends to Customer.mobile only (issue 15).

A customer is a message recipient only through a Korean mobile number in its canonical ASCII form
(Customer.mobile). Landlines, short numbers, text, emoji and empty phones count as excluded
("휴대전화 번호 아님") in reach, cost and samples, and the sender never sends to them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.campaigns import count_segment
from core.customers.identity import canonical_mobile
from core.messaging import sender
from core.messaging.phone import InvalidPhone, normalize_mobile
from core.models import Customer
from tests.messaging.helpers import NOON, message, queue, setup_templates
from tests.messaging.test_sender import ScriptedProvider

# (phone as typed, reachable?)
PHONES = [
    ("010-1234-5678", True),
    ("０１０-２２２２-３３３３", True),  # full-width digits (a Korean IME mode)
    ("٠١٠٣٣٣٣٤٤٤٤", True),  # Arabic-Indic digits
    ("+82 10 4444 5555", True),
    ("82-10-5555-6666", True),
    ("02-123-4567", False),  # Seoul landline
    ("031-123-4567", False),
    ("010-123-456", False),  # too short
    ("070-1234-5678", False),  # internet phone
    ("+1 415 555 0100", False),
    ("☎️010-7777-8888📱", False),  # emoji around digits: not a number as given
    ("홍길동", False),
    ("x" * 20, False),  # (200-character strings: see the normalize table below)
    ("+82", False),  # only a country code
    ("", False),
    (None, False),
]


def _people(engine: Engine) -> dict[str, int]:
    ids = {}
    with Session(engine) as s:
        for i, (phone, _) in enumerate(PHONES):
            c = Customer(
                name=f"고객{i}",
                phone=phone,
                mobile=canonical_mobile(phone),
                public_id=f"p{i}",
                ad_consent_at=NOON - timedelta(days=30),
            )
            s.add(c)
            s.flush()
            ids[repr(phone)] = c.id
        s.commit()
    return ids


def test_reach_counts_only_mobile_numbers_and_names_the_rest(engine: Engine) -> None:
    _people(engine)
    with Session(engine) as s:
        counted = count_segment(
            s, {"include": [{"type": "channel_friend", "value": True}]}, now=NOON, sample_size=100
        )
    expected = sum(ok for _, ok in PHONES)
    assert counted.reachable == expected
    assert counted.excluded["not_mobile"] == len(PHONES) - expected
    assert counted.excluded_labels["휴대전화 번호 아님"] == len(PHONES) - expected
    assert len(counted.sample) == expected
    assert all(p["phone"].isascii() and p["phone"].startswith("010-****-") for p in counted.sample)


@pytest.mark.parametrize(("phone", "ok"), PHONES)
def test_the_sender_sends_only_to_the_canonical_mobile(engine: Engine, phone: str | None, ok: bool) -> None:
    setup_templates(engine)
    with Session(engine) as s:
        c = Customer(name="고객", phone=phone, mobile=canonical_mobile(phone))
        s.add(c)
        s.commit()
        cid = c.id
    queue(engine, cid, "hello:1")
    provider = ScriptedProvider()
    sender.run(engine, NOON, provider=provider)
    sent = [m for batch in provider.batches for m in batch]
    row = message(engine, "hello:1")
    if ok:
        assert [m.to for m in sent] == [canonical_mobile(phone)]
        assert sent[0].to.isascii() and sent[0].to.isdigit() and len(sent[0].to) == 11
        assert row.status == "sent"
    else:
        assert sent == [] and row.status == "failed"
        assert "번호" in row.reason


def test_the_customers_mobile_wins_over_an_old_number_on_the_message(engine: Engine) -> None:
    """Consent follows the number: a customer who changed numbers is reached at the current one."""
    setup_templates(engine)
    with Session(engine) as s:
        c = Customer(name="고객", phone="010-9999-8888", mobile="01099998888")
        s.add(c)
        s.commit()
        cid = c.id
    mid = queue(engine, cid, "hello:moved")
    with Session(engine) as s:
        from core.models import Message

        row = s.get(Message, mid)
        row.to_phone = "010-1111-2222"  # queued before the number changed
        s.commit()
    provider = ScriptedProvider()
    sender.run(engine, NOON, provider=provider)
    assert [m.to for batch in provider.batches for m in batch] == ["01099998888"]


@pytest.mark.parametrize(("phone", "ok"), PHONES)
def test_normalize_mobile_is_the_identity_rule(phone: str | None, ok: bool) -> None:
    if ok:
        assert normalize_mobile(phone).replace("-", "") == canonical_mobile(phone)
    else:
        with pytest.raises(InvalidPhone):
            normalize_mobile(phone)


@pytest.mark.parametrize("raw", ["x" * 200, "0" * 200, "010" + "1" * 197, "😀" * 200])
def test_a_200_character_phone_is_no_mobile_and_no_crash(raw: str) -> None:
    assert canonical_mobile(raw) is None
    with pytest.raises(InvalidPhone, match="휴대전화 번호 아님"):
        normalize_mobile(raw)
