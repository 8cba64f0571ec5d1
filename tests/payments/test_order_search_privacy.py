"""Staff find a customer's orders by the whole phone number only (#16): a prefix search let anyone
with 주문 recover masked numbers digit by digit (10,000 searches recovered 1,521 of 1,522 numbers)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from core.errors import ValidationFailed
from core.payments.order_import import import_orders
from core.payments.queries import search_orders
from tests.payments.test_orders_search_import import SAMPLE

BOTH = {"20261101-0002", "20261105-0001"}  # 박서준, 010-2345-6789 in the sample


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("010-2345-6789", BOTH),  # the whole number, in every shape a person types it
        ("01023456789", BOTH),
        ("010 2345 6789", BOTH),
        ("０１０－２３４５－６７８９", BOTH),  # full-width (Korean IME)
        ("+82 10-2345-6789", BOTH),
        ("010-2345-678", set()),  # one digit short: a prefix, never an answer
        ("0102345", set()),
        ("010-2345", set()),
        ("2345-6789", set()),  # a suffix neither
        ("010-2345-6780", set()),  # a neighbour's number
    ],
)
def test_phone_search_matches_only_the_whole_number(engine, actors, query, found):
    with Session(engine) as session:
        import_orders(session, actors["owner"], SAMPLE.read_bytes())
        session.commit()
        assert {r["order_number"] for r in search_orders(session, query=query)} == found


@pytest.mark.parametrize("query", ["2026\x001102", "김\x00", "a\x1b[31m", "x" * 101])
def test_control_characters_and_overlong_queries_are_refused_with_a_message(engine, query):
    with Session(engine) as session, pytest.raises(ValidationFailed) as caught:
        search_orders(session, query=query)
    assert "검색어" in str(caught.value)
