"""Line-level order import (issue 19): one row per order line, grouped into orders with several
items; products by code then name; discount lines; refunds on lines and in separate rows; CSV
(UTF-8, CP949) and real XLSX files; column mappings; the shipped 스마트스토어-style sample's 매출."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import analytics, cli, clock
from core.accounts.actor import Actor
from core.errors import ValidationFailed
from core.models import Customer, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Product, Refund
from core.payments import import_mapping, import_source
from core.payments.import_rows import ImportRejected, parse_file
from core.payments.order_import import import_orders, run_import

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "orders_smartstore_sample.csv"
NOV = (date(2026, 11, 1), date(2026, 11, 30))
# What the sample stands for, worked out by hand from its rows (see data/orders_smartstore_sample.csv):
# paid orders 60,000 + 61,000 + 68,400 (76,000 less the 7,600 coupon) + 25,800 + 28,000 + 22,000;
# refunds 25,000 (returned 선크림) + 5,000 (partial, coffee) + 28,000 (a later cancellation row);
# the 선크림 order of 정수아 was canceled before payment and counts nowhere.
SAMPLE_GROSS, SAMPLE_REFUNDS, SAMPLE_ORDERS = 265_200, 58_000, 6


def _count(session: Session, model: object) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()  # type: ignore[arg-type]


def _as_xlsx(data: bytes, *, typed: bool = True) -> bytes:
    """The same table as a real Excel file: numbers as numbers, times as Excel dates (as exports do)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for i, row in enumerate(csv.reader(io.StringIO(data.decode("utf-8-sig")))):
        cells: list[object] = []
        for text in row:
            value: object = text or None
            if typed and i and text:
                if text.lstrip("-").isdigit() and not text.startswith("0") and len(text) < 12:
                    value = int(text)
                elif len(text) == 19 and text[4] == "-" and text[13] == ":":
                    value = datetime.fromisoformat(text)
            cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _assert_sample_figures(engine: Engine) -> None:
    with Session(engine) as session:
        totals = analytics.revenue_totals(session, *NOV)
        assert (totals.gross, totals.refunds, totals.orders) == (SAMPLE_GROSS, SAMPLE_REFUNDS, SAMPLE_ORDERS)
        assert totals.net == 207_200 and totals.aov == 44_200
        top = {p.name: p for p in analytics.top_products(session, *NOV, limit=20)}
        assert analytics.DELETED_PRODUCT_NAME not in top  # every imported item has its product
        assert (top["수분크림 50ml"].gross, top["수분크림 50ml"].units, top["수분크림 50ml"].orders) == (89_600, 3, 2)
        assert (top["비타민C 세럼"].gross, top["비타민C 세럼"].units) == (56_000, 2)
        assert (top["클렌징 폼"].gross, top["클렌징 폼"].units) == (46_800, 4)
        assert sum(p.gross for p in top.values()) == SAMPLE_GROSS
        assert sum(p.refunds for p in top.values()) == SAMPLE_REFUNDS
        order = session.execute(select(Order).where(Order.order_number == "2026110110000001")).scalar_one()
        assert (order.status, order.total_amount, order.refunded_amount) == (
            OrderStatus.PARTIALLY_REFUNDED, 60_000, 28_000)
        items = session.execute(select(OrderItem).where(OrderItem.order_id == order.id)).scalars().all()
        assert [i.product_name for i in items] == ["수분크림 50ml", "비타민C 세럼"]
        assert all(i.product_id is not None for i in items)
        canceled = session.execute(select(Order).where(Order.order_number == "2026110710000006")).scalar_one()
        assert canceled.status == OrderStatus.CANCELED
        assert session.execute(select(Payment).where(Payment.order_id == canceled.id)).first() is None
        vip = {v.name: v.net for v in analytics.vip_customers(session, limit=20)}
        assert vip["김민지"] == 60_000 - 28_000 + 28_000


def test_the_smartstore_sample_imports_as_multi_item_orders_with_its_sales_figures(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    result = run_import(engine, actors["owner"], SAMPLE.read_bytes(), source_name=SAMPLE.name)
    assert (result.created, result.lines, result.customers_created, result.refunds_created) == (7, 10, 5, 3)
    assert sorted(result.products_created) == sorted(
        ["수분크림 50ml", "비타민C 세럼", "클렌징 폼", "선크림 SPF50", "드립백 커피 10개입", "유기농 현미 4kg"]
    )
    _assert_sample_figures(engine)
    with Session(engine) as session:
        codes = dict(session.execute(select(Product.code, Product.name)).all())
        assert codes["P-1001"] == "수분크림 50ml" and len(codes) == 6
        discounted = session.execute(
            select(OrderItem.product_name, OrderItem.unit_price, OrderItem.amount)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.order_number == "2026110310000003")
            .order_by(OrderItem.id)
        ).all()
        # the 10% coupon line is spread over the products: items add up to what was paid
        assert [tuple(r) for r in discounted] == [("수분크림 50ml", 32_000, 57_600), ("클렌징 폼", 12_000, 10_800)]
    again = run_import(engine, actors["owner"], SAMPLE.read_bytes())
    assert (again.created, again.skipped_existing, again.refunds_created, again.refunds_skipped) == (0, 7, 0, 3)
    assert again.products_created == []
    _assert_sample_figures(engine)  # nothing counted twice


@pytest.mark.parametrize("form", ["cp949", "utf-8", "xlsx", "xlsx-text"])
def test_the_sample_reads_the_same_from_cp949_and_real_excel_files(
    engine: Engine, actors: dict[str, Actor], form: str
) -> None:
    data = SAMPLE.read_bytes()
    if form == "cp949":
        data = data.decode("utf-8").encode("cp949")
    elif form == "xlsx":
        data = _as_xlsx(data)
    elif form == "xlsx-text":
        data = _as_xlsx(data, typed=False)
    result = run_import(engine, actors["cs"], data, source_name=f"sample.{form}")
    assert (result.created, result.lines, result.refunds_created) == (7, 10, 3)
    _assert_sample_figures(engine)


def _csv(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


H = "주문번호,상품주문번호,주문일시,구매자명,구매자연락처,상품번호,상품명,수량,상품가격,주문상태,환불금액,환불일시,원주문번호"
OK = "A-1,L1,2026-11-01 10:00,김하나,010-1111-2222,P-1,세럼,1,30000,,,,"

BAD_FILES = [
    # (case, rows after the header, the rows named, a piece of the message)
    ("order-level field differs", [OK, "A-1,L2,2026-11-01 10:05,김하나,010-1111-2222,P-2,크림,1,1000,,,,"], [3],
     "주문일시이(가) 2행과 다릅니다"),
    ("buyer differs", [OK, "A-1,L2,2026-11-01 10:00,김둘,010-1111-2222,P-2,크림,1,1000,,,,"], [3], "구매자명"),
    ("phone differs", [OK, "A-1,L2,2026-11-01 10:00,김하나,010-9999-2222,P-2,크림,1,1000,,,,"], [3], "구매자연락처"),
    ("refund row larger than the order", [OK, ",R1,,,,,,,,,30001,2026-11-02 10:00,A-1"], [3], "환불 합계"),
    ("line refund and refund row over the order",
     ["A-1,L1,2026-11-01 10:00,김하나,010-1111-2222,P-1,세럼,1,30000,부분환불,20000,2026-11-02 10:00,",
      ",R1,,,,,,,,,10001,2026-11-03 10:00,A-1"], [2, 3], "환불 합계(30,001원)"),
    ("refund row for an order nowhere", [OK, ",R1,,,,,,,,,1000,2026-11-02 10:00,NOPE-9"], [3],
     "파일에도 저장된 주문에도 없습니다"),
    ("refund row without an amount", [OK, ",R1,,,,,,,,,,2026-11-02 10:00,A-1"], [3], "환불금액이 필요"),
    ("refund before payment", [OK, ",R1,,,,,,,,,1000,2026-10-30 10:00,A-1"], [3], "결제일시보다 빠릅니다"),
    ("code reused with another name", [OK, "A-2,L1,2026-11-02 10:00,김하나,010-1111-2222,P-1,세럼 대용량,1,1000,,,,"],
     [3], "상품번호 P-1이(가) 2행에서는 '세럼'입니다"),
    ("quantity 0", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,0,30000,,,,"], [2], "수량은 1~10,000"),
    ("quantity negative (a return)", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,-1,30000,,,,"], [2], "환불 행"),
    ("quantity full-width text", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,１.５,30000,,,,"], [2], "정수"),
    ("discount larger than the products", [OK, "A-1,L2,2026-11-01 10:00,김하나,010-1111-2222,,쿠폰,1,-30001,,,,"],
     [3], "할인 합계(30,001원)"),
    ("discount-only order", ["D-1,L1,2026-11-01 10:00,김하나,,,쿠폰,1,-500,,,,"], [2], "상품 줄이 없습니다"),
    ("discount line with a refund", [OK, "A-1,L2,2026-11-01 10:00,김하나,010-1111-2222,,쿠폰,1,-500,환불완료,,,"],
     [3], "할인 줄"),
    ("same line number twice", [OK, "A-1,L1,2026-11-01 10:00,김하나,010-1111-2222,P-2,크림,1,1000,,,,"], [3],
     "상품주문번호 L1이(가) 2행과 중복됩니다"),
    ("partial refund of the whole line", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,1,30000,부분환불,30000,,"], [2],
     "보다 작아야"),
    ("refunded amount differs from the line", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,1,30000,환불완료,100,,"],
     [2], "같아야"),
    ("paid line with a refund amount", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,1,30000,구매확정,100,,"], [2],
     "환불 또는 부분 환불 주문에만"),
    ("canceled order with a refund amount", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,1,30000,취소완료,30000,,"],
     [2], "결제 전 취소"),
    ("unknown status", ["A-1,L1,2026-11-01 10:00,김하나,,P-1,세럼,1,30000,보류,,,"], [2], "상태는"),
    ("HTML and a 100k-char name", ["A-1,L1,2026-11-01 10:00,김하나,,P-1," + "<b>x</b>" * 12_500 + ",1,1,,,,"],
     [2], "상품명은 1~120자"),
]


@pytest.mark.parametrize(("case", "rows", "named", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_are_refused_whole_naming_the_rows(
    engine: Engine, actors: dict[str, Actor], case: str, rows: list[str], named: list[int], message: str
) -> None:
    data = _csv(H, *rows, "Z-9,L1,2026-11-09 10:00,박둘,010-3333-4444,P-9,크림,1,1000,,,,")  # one good order too
    with Session(engine) as session:
        with pytest.raises(ImportRejected) as raised:
            import_orders(session, actors["owner"], data)
        session.rollback()
        assert sorted({e.row for e in raised.value.errors}) == named, str(raised.value)
        assert message in str(raised.value)
        for model in (Order, OrderItem, Payment, Refund, Customer, Product):
            assert _count(session, model) == 0, model


def _import(engine: Engine, actor: Actor, data: bytes, mapping: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_import(engine, actor, data, mapping=mapping)


def test_a_later_refund_row_refunds_a_stored_order_once(engine: Engine, actors: dict[str, Actor]) -> None:
    owner = actors["owner"]
    _import(engine, owner, _csv(H, OK, "A-1,L2,2026-11-01 10:00,김하나,010-1111-2222,P-2,크림,2,5000,,,,"))
    later = _csv(H, ",C-77,,,,,,,,,12000,2026-11-04 09:00,A-1")
    first = _import(engine, owner, later)
    assert (first.created, first.refunds_created) == (0, 1)
    again = _import(engine, owner, later)
    assert (again.refunds_created, again.refunds_skipped) == (0, 1)
    with Session(engine) as session:
        order = session.execute(select(Order).where(Order.order_number == "A-1")).scalar_one()
        payment = session.execute(select(Payment).where(Payment.order_id == order.id)).scalar_one()
        assert (order.total_amount, order.refunded_amount, order.status) == (40_000, 12_000, OrderStatus.PARTIALLY_REFUNDED)
        assert (payment.refunded_amount, payment.status) == (12_000, PaymentStatus.PARTIALLY_REFUNDED)
        assert analytics.revenue_totals(session, date(2026, 11, 4), date(2026, 11, 4)).refunds == 12_000
    # A newer export of the same order, its second line now returned: the new refund only, once.
    newer = _csv(H, OK, "A-1,L2,2026-11-01 10:00,김하나,010-1111-2222,P-2,크림,2,5000,반품완료,,2026-11-06 10:00,")
    assert _import(engine, owner, newer).refunds_created == 1
    assert _import(engine, owner, newer).refunds_created == 0
    too_much = _csv(H, ",C-78,,,,,,,,,20000,2026-11-07 09:00,A-1")  # 12,000 + 10,000 already back
    with pytest.raises(ImportRejected, match="이미 환불 22,000원 포함"):
        _import(engine, owner, too_much)
    with Session(engine) as session:
        order = session.execute(select(Order).where(Order.order_number == "A-1")).scalar_one()
        assert order.refunded_amount == 22_000
        assert session.execute(select(func.sum(Refund.amount))).scalar_one() == 22_000


def test_a_refund_row_cannot_refund_an_order_paid_here_through_the_gateway(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    from tests.payments.helpers import paid_order, sandbox_router

    sandbox, _ = sandbox_router(engine)
    payment = paid_order(engine, sandbox, amount=20_000)
    with Session(engine) as session:
        number = session.get(Order, payment.order_id).order_number  # type: ignore[union-attr]
    with pytest.raises(ImportRejected, match="결제대행사를 거쳐야"):
        _import(engine, actors["owner"], _csv(H, f",C-1,,,,,,,,,1000,2026-11-10 10:00,{number}"))
    with Session(engine) as session:
        assert _count(session, Refund) == 0


def test_products_are_found_by_code_then_by_name(engine: Engine, actors: dict[str, Actor]) -> None:
    with Session(engine) as session:
        session.add(Product(name="세럼", price=30_000))  # an existing product without a code
        session.add(Product(name="크림", price=9_000, code="SHOP-7"))
        session.commit()
    result = _import(engine, actors["owner"], _csv(
        H, OK,
        "A-2,L1,2026-11-02 10:00,김하나,010-1111-2222,SHOP-7,크림,1,9000,,,,",
        "A-3,L1,2026-11-03 10:00,김하나,010-1111-2222,,크림,1,9000,,,,",  # no code: exact name
        "A-4,L1,2026-11-04 10:00,김하나,010-1111-2222,,새 토너,1,15000,,,,",
    ))
    assert result.products_created == ["새 토너"]
    with Session(engine) as session:
        products = {p.name: p for p in session.execute(select(Product)).scalars()}
        assert len(products) == 3 and products["세럼"].code == "P-1"  # matched by name, given the file's code
        items = dict(session.execute(
            select(Order.order_number, OrderItem.product_id).join(Order, Order.id == OrderItem.order_id)
        ).all())
        assert items == {"A-1": products["세럼"].id, "A-2": products["크림"].id, "A-3": products["크림"].id,
                         "A-4": products["새 토너"].id}
    # a stored code under another name refuses the file, naming the row
    with pytest.raises(ImportRejected) as raised:
        _import(engine, actors["owner"], _csv(H, "B-1,L1,2026-11-05 10:00,김하나,,SHOP-7,바디크림,1,9000,,,,"))
    assert [e.row for e in raised.value.errors] == [2] and "이미 '크림' 상품" in str(raised.value)


# ------------------------------------------------------------------------------ column mapping

@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("주문번호", "order_number"), ("상품주문번호", "line_number"), ("상품명", "product_name"),
        ("상품번호", "product_code"), ("수량", "quantity"), ("상품가격", "unit_price"), ("결제금액", "line_amount"),
        ("주문일시", "ordered_at"), ("결제일시", "paid_at"), ("구매자명", "customer_name"),
        ("구매자연락처", "customer_phone"), ("구매자 연락처", "customer_phone"), ("환불금액", "refunded_amount"),
        ("최종 상품별 총 주문금액", "line_amount"), ("상품가격(원)", "unit_price"), ("Quantity", "quantity"),
        ("InvoiceNo", "order_number"), ("StockCode", "product_code"), ("UnitPrice", "unit_price"),
        ("Customer_Phone", "customer_phone"), ("ＳＫＵ", "product_code"), ("원주문번호", "original_order_number"),
    ],
)
def test_header_names_suggest_their_field(header: str, field: str) -> None:
    assert import_mapping.suggest(["메모", header]) == {field: header}


def test_a_saved_mapping_imports_an_export_with_its_own_names(
    engine: Engine, actors: dict[str, Actor], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "Bestellnr,Zeit,Kunde,Artikel,Menge,Preis,Telefon"
    data = _csv(header, "X-1,2026-11-01 09:00,이름하나,머그컵,2,8000,010-1212-3434",
                "X-1,2026-11-01 09:00,이름하나,컵받침,1,3000,010-1212-3434")
    with pytest.raises(ImportRejected, match="필수 열이 없습니다"):
        _import(engine, actors["staff"], data)  # nothing to suggest from these names
    mapping = {"order_number": "Bestellnr", "ordered_at": "Zeit", "customer_name": "Kunde",
               "product_name": "Artikel", "quantity": "Menge", "unit_price": "Preis", "customer_phone": "Telefon"}
    with Session(engine) as session:
        import_mapping.save(session, actors["staff"], " 우리 쇼핑몰 ", mapping)
        session.commit()
        assert import_mapping.load(session, "우리 쇼핑몰") == mapping
        with pytest.raises(ValidationFailed, match="필수 항목"):
            import_mapping.save(session, actors["staff"], "반쪽", {"order_number": "Bestellnr"})
        with pytest.raises(ValidationFailed, match="저장된 매핑: 우리 쇼핑몰"):
            import_mapping.load(session, "없는 이름")
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    if engine.dialect.name != "sqlite":
        return  # the CLI part runs on the SQLite store the CLI opens
    url = engine.url.render_as_string(hide_password=False)
    assert cli.main(["--database-url", url, "import", "orders", str(path), "--mapping", "우리 쇼핑몰"],
                    stdin=io.StringIO()) == 0
    out = capsys.readouterr().out
    assert "새 주문 1건 (상품 줄 2개)" in out and "새 상품 2개" in out
    assert cli.main(["--database-url", url, "import", "orders", str(path), "--mapping", "남의 매핑"],
                    stdin=io.StringIO()) == 2
    assert "저장된 열 매핑 '남의 매핑'이(가) 없습니다" in capsys.readouterr().err


def test_a_mapping_naming_a_missing_column_is_refused() -> None:
    with pytest.raises(ImportRejected, match="'수량'의 열 'Qty'이\\(가\\) 파일에 없습니다"):
        parse_file(_csv("no,at,who,what,price", "1,2026-11-01,김,컵,1"),
                   {"order_number": "no", "ordered_at": "at", "customer_name": "who", "product_name": "what",
                    "quantity": "Qty", "unit_price": "price"})


# ------------------------------------------------------------------------------ files

def test_xlsx_with_merged_header_cells_is_refused_clearly() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["주문 정보", None, "상품 정보", None, None, None])
    sheet.append(["주문번호", "주문일시", "상품명", "수량", "상품가격", "구매자명"])
    sheet.merge_cells("A1:B1")
    sheet.merge_cells("C1:F1")
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(ImportRejected) as raised:
        parse_file(buffer.getvalue())
    assert "머리글에 병합된 셀이 있습니다 (A1:B1, C1:F1)" in str(raised.value)
    assert [e.row for e in raised.value.errors] == [1]


def test_xlsx_with_merged_data_cells_names_the_row() -> None:
    data = _as_xlsx(SAMPLE.read_bytes())
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    workbook.active.merge_cells("B2:B3")  # one order number spanning its two lines, as people do
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(ImportRejected) as raised:
        parse_file(buffer.getvalue())
    assert [e.row for e in raised.value.errors] == [2] and "병합된 셀이 있습니다 (B2:B3)" in str(raised.value)


def test_damaged_xlsx_and_binary_files_are_refused() -> None:
    with pytest.raises(ImportRejected, match="XLSX"):
        parse_file(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ImportRejected, match="인코딩"):
        parse_file("주문번호\n김".encode("utf-16"))


def test_a_200mb_file_is_refused_before_it_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "orders.csv"
    with big.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: no 200 MB written or read
    url = f"sqlite:///{tmp_path / 'big.db'}"
    assert cli.main(["--database-url", url, "import", "orders", str(big)], stdin=io.StringIO()) == 2
    assert "파일이 너무 큽니다 (200.0MB, 최대 50MB)" in capsys.readouterr().err
    with pytest.raises(ImportRejected, match="파일이 너무 큽니다"):
        parse_file(b"x" * (import_source.MAX_FILE_BYTES + 1))


def test_xlsx_cells_read_as_text_people_see() -> None:
    assert [import_source.cell_text(v) for v in (32000.0, 12.5, None, datetime(2026, 11, 1, 9, 5), True)] == [
        "32000", "12.5", "", "2026-11-01 09:05:00", "TRUE"]
    assert clock.parse_instant("2026-11-01 09:05:00") == clock.parse_instant("2026-11-01T00:05:00+00:00")
