"""The inquiry type rules are owner-editable (issue 17): the owner's words are read before the
built-in patterns, by every path that classifies (staff entry, the chatbot, /help)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.accounts.actor import Actor
from core.errors import PermissionDenied, ValidationFailed
from core.inquiries import service
from core.models import InquiryType, Role

OWNER = Actor(None, "사장님", Role.OWNER)
CS = Actor(None, "상담원", Role.CS)
SHOP_WORDS = {"receipt_request": ["현영", "지출 증빙"], "refund_request": ["교환"], "payment_error": ["결제창"]}


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        ("현영 부탁드려요", None, InquiryType.OTHER),  # a shop's slang: the built-in rules miss it
        ("현영 부탁드려요", SHOP_WORDS, InquiryType.RECEIPT_REQUEST),
        ("지출증빙 되나요", SHOP_WORDS, InquiryType.RECEIPT_REQUEST),  # spaces ignored
        ("사이즈 교환하고 싶어요", SHOP_WORDS, InquiryType.REFUND_REQUEST),
        ("결제창이 하얗게 떠요", SHOP_WORDS, InquiryType.PAYMENT_ERROR),
        ("결제가 두 번 됐어요", SHOP_WORDS, InquiryType.DOUBLE_CHARGE),  # built-in rules still apply
        ("이중 결제 교환 말고 환불", SHOP_WORDS, InquiryType.REFUND_REQUEST),  # the owner's words first
        ("배송 언제 와요", SHOP_WORDS, InquiryType.OTHER),
        ("a.*b (정규식 아님)", {"payment_error": ["a.*b"]}, InquiryType.PAYMENT_ERROR),  # plain text
        ("ab", {"payment_error": ["a.*b"]}, InquiryType.OTHER),
    ],
)
def test_the_owners_words_come_first_then_the_built_in_rules(text, keywords, expected) -> None:  # type: ignore[no-untyped-def]
    assert service.suggest_type(text, keywords) == expected


def test_saving_is_owner_only_cleaned_and_used_when_an_inquiry_is_opened(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        with pytest.raises(PermissionDenied):
            service.save_type_keywords(session, CS, {"refund_request": "교환"})
        saved = service.save_type_keywords(
            session, OWNER, {"receipt_request": " 현영 , 현영,\n지출  증빙 ", "refund_request": "교환", "other": "x"}
        )
        session.commit()
        assert saved == {"receipt_request": ["현영", "지출 증빙"], "refund_request": ["교환"]}
        assert service.type_keywords(session) == saved
        for bad in ({"refund_request": "교\x00환"}, {"refund_request": "가" * 31},
                    {"refund_request": ",".join(f"w{i}" for i in range(51))}):
            with pytest.raises(ValidationFailed):
                service.save_type_keywords(session, OWNER, bad)


def test_staff_entry_and_the_chatbot_both_read_the_owners_words(sqlite_engine: Engine) -> None:
    from core.inquiries import inbound
    from tests.inquiry_helpers import make_customer

    with Session(sqlite_engine) as session:
        service.save_type_keywords(session, OWNER, {"receipt_request": "현영"})
        customer = make_customer(session)
        typed = service.create_inquiry(session, CS, customer_id=customer.id, body="현영 부탁드려요")
        assert typed.type == InquiryType.RECEIPT_REQUEST
        assert inbound.answer_test(session, "현영 부탁드려요").inquiry_type == InquiryType.RECEIPT_REQUEST
