"""Order search, order detail and CSV import (all or nothing, row-numbered errors, no duplicates)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from core.models import Customer, Order, Payment
from core.payments.import_rows import ImportRejected, decode
from core.payments.order_import import import_orders
from core.payments.queries import order_detail, search_orders
from core.payments.refunds import refund_payment
from tests.payments.helpers import paid_order, sandbox_router

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "orders_sample.csv"
HEADER = "order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price\n"


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_sample_imports_once_and_reimport_adds_nothing(engine, actors):
    data = SAMPLE.read_bytes()
    with Session(engine) as session:
        result = import_orders(session, actors["owner"], data)
        session.commit()
        assert (result.created, result.skipped_existing) == (8, 0)
        assert result.customers_created == 6  # 김민지 and 박서준 appear twice
        again = import_orders(session, actors["owner"], data)
        session.commit()
        assert (again.created, again.skipped_existing) == (0, 8)
        assert _count(session, Order) == 8
        refunded = session.exec(select(Order).where(Order.order_number == "20261102-0002")).one()
        assert (refunded.status, refunded.refunded_amount) == ("refunded", 25_000)
        assert _count(session, Payment) == 7  # the canceled order has no payment


def _rows(numbers: range, phone_of=lambda i: f"010-5555-{i:04d}") -> bytes:
    lines = [
        f"B-{i:05d},2026-11-0{1 + i % 9} 10:{i % 60:02d},고객{i % 7},{phone_of(i)},세럼,1,{1000 + i}"
        for i in numbers
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def test_bulk_reimport_over_chunk_boundaries_adds_only_new_rows(engine, actors):
    """More rows than one lookup chunk (900): ids, customers and duplicates are matched as sets."""
    with Session(engine) as session:
        first = import_orders(session, actors["owner"], _rows(range(1000)))
        session.commit()
        assert (first.created, first.customers_created) == (1000, 1000)
        again = import_orders(session, actors["owner"], _rows(range(995, 1010)))
        session.commit()
        assert (again.created, again.skipped_existing, again.customers_created) == (10, 5, 10)
        assert again.skipped_numbers == [f"B-{i:05d}" for i in range(995, 1000)]
        assert (_count(session, Order), _count(session, Payment), _count(session, Customer)) == (
            1010,
            1010,
            1010,
        )
        order = session.exec(select(Order).where(Order.order_number == "B-00999")).one()
        customer = session.get(Customer, order.customer_id)
        assert (customer.phone, customer.mobile, order.total_amount) == ("010-5555-0999", "01055550999", 1999)
        payment = session.exec(select(Payment).where(Payment.order_id == order.id)).one()
        assert (payment.customer_id, payment.amount, payment.status) == (customer.id, 1999, "approved")


def test_a_bad_row_after_many_good_ones_writes_nothing(engine, actors):
    data = _rows(range(2000)) + "B-99999,2026-13-01,고객,010-1,세럼,1,1000\n".encode()
    with Session(engine) as session, pytest.raises(ImportRejected) as rejected:
        import_orders(session, actors["owner"], data)
    assert {error.row for error in rejected.value.errors} == {2002}
    with Session(engine) as session:
        assert _count(session, Order) == 0 and _count(session, Customer) == 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_encodings_are_accepted(engine, actors, encoding):
    text = HEADER + "A-1,2026-11-01 10:00,김민지,01012345678,수분크림,1,32000\n"
    with Session(engine) as session:
        assert import_orders(session, actors["cs"], text.encode(encoding)).created == 1
        session.commit()
        assert session.exec(select(Customer.name)).one() == "김민지"


def test_wrong_encoding_is_a_clear_error():
    with pytest.raises(ImportRejected, match="인코딩"):
        decode("김민지".encode("utf-16"))


def test_every_bad_row_is_reported_and_nothing_is_written(engine, actors):
    text = (
        HEADER
        + "\n".join(
            [
                "B-1,2026-11-01 10:00,김민지,01012345678,수분크림,1,32000",
                "B-1,2026-11-01 10:00,김민수,01012345678,수분크림,1,32000",
                "B-2,어제,박서준,010-2345-6789,세럼,1,28000",
                "B-3,2026-11-01,이하은,010,폼,0,12000",
                "B-4,2026-11-01,최도윤,,폼,1,-5",
                "B-5,2026-11-01,정수아,,폼,1.5,1000",
                "B-6,2026-11-01,,,폼,1,1000",
            ]
        )
        + "\n"
    )
    with Session(engine) as session:
        with pytest.raises(ImportRejected) as caught:
            import_orders(session, actors["owner"], text.encode())
        rows = sorted({error.row for error in caught.value.errors})
        assert rows == [3, 4, 5, 6, 7, 8]
        messages = "\n".join(str(e) for e in caught.value.errors)
        assert "3행: 주문번호 B-1의 구매자명이(가) 2행과 다릅니다" in messages
        assert "주문일시 형식" in messages and "수량" in messages
        # A phone is never a row error: it is kept as given, "휴대전화 번호 아님" (core.customers.identity).
        assert "연락처" not in messages
        session.rollback()
        assert _count(session, Order) == 0


def test_missing_columns_and_tax_free_over_total(engine, actors):
    with Session(engine) as session:
        with pytest.raises(ImportRejected, match="필수 열이 없습니다: .*unit_price"):
            import_orders(
                session, actors["owner"], b"order_number,ordered_at,customer_name,product_name,quantity\n"
            )
        text = HEADER.strip() + ",tax_free_amount\nC-1,2026-11-01,김민지,,크림,1,1000,2000\n"
        with pytest.raises(ImportRejected, match="면세금액"):
            import_orders(session, actors["owner"], text.encode())


def test_search_by_number_name_phone_and_filters(engine, actors):
    with Session(engine) as session:
        import_orders(session, actors["owner"], SAMPLE.read_bytes())
        session.commit()
        assert [r["order_number"] for r in search_orders(session, query="20261102")] == [
            "20261102-0002",
            "20261102-0001",
        ]
        assert {r["order_number"] for r in search_orders(session, query="김민")} == {
            "20261101-0001",
            "20261102-0002",
        }
        assert {r["order_number"] for r in search_orders(session, query="010-2345-6789")} == {
            "20261101-0002",
            "20261105-0001",
        }
        assert {
            r["order_number"] for r in search_orders(session, query="01023456789", status="canceled")
        } == {"20261105-0001"}
        assert len(search_orders(session)) == 8
        assert {r["order_number"] for r in search_orders(session, payment_method="MONEY")} == {
            "20261101-0001",
            "20261102-0002",
            "20261105-0002",
        }
        nov2 = search_orders(session, date_from=date(2026, 11, 2), date_to=date(2026, 11, 2))
        assert {r["order_number"] for r in nov2} == {"20261102-0001", "20261102-0002"}
        assert search_orders(session, query="없는 사람") == []


def test_order_detail_has_items_payments_refunds_messages_and_timeline(engine, actors):
    sandbox, router = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=20_000)
    with Session(engine, expire_on_commit=False) as session:
        refund_payment(
            session,
            actors["cs"],
            payment_id=payment.id,
            amount=5_000,
            reason="일부 파손",
            idempotency_key="d1",
            router=router,
        )
        detail = order_detail(session, payment.order_id)
        assert detail["customer"].name == "김민지"
        assert len(detail["items"]) == 1 and len(detail["payments"]) == 1 and len(detail["refunds"]) == 1
        assert [m.template_key for m in detail["messages"]] == ["refund_completed"]
        events = [entry["event"] for entry in detail["timeline"]]
        assert "주문 접수" in events and any("환불 완료 5,000원" in e for e in events)
