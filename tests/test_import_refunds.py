"""Refunds from import: a refunded or partially refunded CSV row writes its refund row, so 매출,
segments (customer_summary), LTV and the order page agree with the file."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import analytics, clock
from core.accounts.actor import Actor
from core.models import CustomerSummary, Order, OrderStatus, Payment, PaymentStatus, Refund, RefundStatus
from core.payments.import_rows import IMPORT_REFUND_REASON, ImportRejected
from core.payments.order_import import import_orders, run_import
from core.payments.queries import order_detail

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "orders_sample.csv"
HEADER = "order_number,ordered_at,customer_name,customer_phone,product_name,quantity,unit_price,status"


def _file_figures() -> tuple[int, int, dict[str, tuple[int, int]]]:
    """(gross, refunded, phone -> (kept orders, net)) computed from the sample file's own rows."""
    gross = refunded = 0
    per_customer: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with SAMPLE.open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            total = int(row["quantity"]) * int(row["unit_price"])
            if row["status"] == "canceled":
                continue
            gross += total
            back = total if row["status"] == "refunded" else 0
            refunded += back
            if row["customer_phone"]:
                figures = per_customer[row["customer_phone"]]
                figures[0] += 0 if back == total else 1
                figures[1] += total - back
    return gross, refunded, {phone: (n, net) for phone, (n, net) in per_customer.items()}


def test_the_sample_csv_figures_agree_on_sales_segments_ltv_and_orders(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    gross, refunded, per_customer = _file_figures()
    assert (refunded, gross - refunded) == (25_000, 211_000)  # the figures the sample stands for
    result = run_import(engine, actors["owner"], SAMPLE.read_bytes(), source_name="orders_sample.csv")
    assert result.created == 8
    with Session(engine) as session:
        totals = analytics.revenue_totals(session, date(2026, 11, 1), date(2026, 11, 30))
        assert (totals.gross, totals.refunds, totals.net) == (gross, refunded, 211_000)
        assert analytics.customer_value(session).net == 211_000  # LTV's numerator: lifetime net
        refunds = session.execute(select(Refund)).scalars().all()
        assert [(r.amount, r.reason, r.status) for r in refunds] == [
            (25_000, IMPORT_REFUND_REASON, RefundStatus.SUCCEEDED)
        ]
        order = session.execute(select(Order).where(Order.order_number == "20261102-0002")).scalar_one()
        detail = order_detail(session, order.id)
        assert [r.amount for r in detail["refunds"]] == [order.refunded_amount] == [25_000]
        assert any(entry["event"] == "환불 완료 25,000원" for entry in detail["timeline"])
        # One customer, the same money on 매출 (VIP: lifetime net) and in segments (summary).
        vip = {v.name: v for v in analytics.vip_customers(session, limit=20)}
        summary = session.execute(
            select(CustomerSummary).where(CustomerSummary.customer_id == order.customer_id)
        ).scalar_one()
        kept_orders, net = per_customer["010-1234-5678"]
        assert (summary.paid_orders, summary.paid_total) == (kept_orders, net) == (1, 32_000)
        assert vip["김민지"].net == summary.paid_total == 32_000


def test_a_partially_refunded_row_writes_its_refund_at_its_time(engine: Engine, actors: dict[str, Actor]) -> None:
    data = (
        "주문번호,주문일시,고객명,연락처,상품명,수량,단가,면세금액,상태,환불금액,환불일시\n"
        "P-1,2026-11-02 10:00,정하늘,010-7777-0001,유기농 현미 4kg,2,22000,44000,부분 환불,\"22,000원\",2026-11-05 09:30\n"
        "P-2,2026-11-03 10:00,정하늘,010-7777-0001,드립백 커피 10개입,1,12900,0,paid,,\n"
    ).encode()
    run_import(engine, actors["cs"], data)
    with Session(engine) as session:
        order = session.execute(select(Order).where(Order.order_number == "P-1")).scalar_one()
        payment = session.execute(select(Payment).where(Payment.order_id == order.id)).scalar_one()
        refund = session.execute(select(Refund).where(Refund.order_id == order.id)).scalar_one()
        assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_REFUNDED, 22_000)
        assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 22_000)
        assert (refund.amount, refund.tax_free_amount, refund.payment_id) == (22_000, 22_000, payment.id)
        assert clock.as_utc(refund.completed_at) == clock.parse_instant("2026-11-05T09:30+09:00")
        # The refund counts on the KST day the money went back, not the order's day.
        assert analytics.revenue_totals(session, date(2026, 11, 5), date(2026, 11, 5)).refunds == 22_000
        assert analytics.revenue_totals(session, date(2026, 11, 2), date(2026, 11, 2)).refunds == 0
        summary = session.get(CustomerSummary, order.customer_id)
        assert summary is not None
        assert (summary.paid_orders, summary.paid_total) == (2, 44_000 - 22_000 + 12_900)


@pytest.mark.parametrize(
    ("status", "amount", "refunded_at", "message"),
    [
        ("partially_refunded", "", "", "환불금액이 필요"),
        ("partially_refunded", "30000", "", "보다 작아야"),
        ("partially_refunded", "0", "", "1~"),
        ("refunded", "10000", "", "같아야"),
        ("paid", "5000", "", "환불 또는 부분 환불 주문에만"),
        ("refunded", "", "2026-10-31 23:59", "주문일시보다 빠릅니다"),
        ("refunded", "", "어제", "형식"),
    ],
)
def test_bad_refund_columns_are_refused_with_the_row_and_nothing_written(
    engine: Engine, actors: dict[str, Actor], status: str, amount: str, refunded_at: str, message: str
) -> None:
    data = (
        f"{HEADER},refunded_amount,refunded_at\n"
        "OK-1,2026-11-01 10:00,김하나,010-1111-2222,세럼,1,30000,paid,,\n"
        f"BAD-1,2026-11-01 10:00,김하나,010-1111-2222,세럼,1,30000,{status},{amount},{refunded_at}\n"
    ).encode()
    with Session(engine) as session:
        with pytest.raises(ImportRejected) as raised:
            import_orders(session, actors["owner"], data)
        session.rollback()
        assert [e.row for e in raised.value.errors] == [3]
        assert message in str(raised.value)
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Refund)).scalar_one() == 0


def test_reimporting_a_refunded_row_refunds_nothing_twice(engine: Engine, actors: dict[str, Actor]) -> None:
    data = io.BytesIO(f"{HEADER}\nR-1,2026-11-01 10:00,김하나,010-1111-2222,세럼,1,30000,환불 완료\n".encode())
    run_import(engine, actors["owner"], data.getvalue())
    again = run_import(engine, actors["owner"], data.getvalue())
    assert (again.created, again.skipped_existing) == (0, 1)
    with Session(engine) as session:
        assert session.execute(select(func.sum(Refund.amount))).scalar_one() == 30_000
