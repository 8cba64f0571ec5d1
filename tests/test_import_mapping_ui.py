"""AppTest: the 주문 page's import with a column mapping (issue 19): preview, suggestions from the
header names, a mapping corrected by hand, saved under a name and chosen again, then the import."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.models import Order, OrderItem
from core.payments import import_mapping
from tests.ui_helpers import open_app, texts

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "orders_smartstore_sample.csv"
EXPORT = (
    "Bestellnr,Zeit,Kunde,Artikel,Menge,Preis,Telefon\n"
    "X-1,2026-11-01 09:00,이름하나,머그컵,2,8000,010-1212-3434\n"
    "X-1,2026-11-01 09:00,이름하나,컵받침,1,3000,010-1212-3434\n"
).encode("cp949")


def _upload(at: AppTest, data: bytes, name: str) -> None:
    """What the file uploader hands the page (AppTest cannot drive st.file_uploader itself)."""
    at.session_state["ord_import_data"] = data
    at.session_state["ord_import_name"] = (name, len(data))
    at.run()


def _box(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(s for s in at.selectbox if s.label == label)


def test_a_marketplace_export_is_previewed_suggested_and_imported(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/orders.py")
    _upload(at, SAMPLE.read_bytes(), SAMPLE.name)
    assert not at.exception, at.exception
    assert "미리보기" in texts(at)
    preview = next(d for d in at.dataframe if "상품주문번호" in d.value.columns)
    assert list(preview.value.columns)[:3] == ["상품주문번호", "주문번호", "주문일시"] and len(preview.value) == 5
    # every field suggested from the 스마트스토어 header names
    assert _box(at, "주문번호 (필수)").value == "주문번호"
    assert _box(at, "상품주문번호").value == "상품주문번호"
    assert _box(at, "결제일시").value == "결제일"
    assert _box(at, "구매자연락처").value == "구매자연락처"
    assert _box(at, "결제금액").value == "최종 상품별 총 주문금액"
    assert _box(at, "원주문번호").value == "원주문번호"
    assert not at.warning
    at.button(key="ord_import_run").click().run()
    assert not at.exception, at.exception
    assert any("주문 7건(상품 10줄) 가져옴" in t.value and "새 상품 6개" in t.value for t in at.toast), [
        t.value for t in at.toast]
    with Session(sqlite_engine) as session:
        assert session.execute(select(func.count()).select_from(OrderItem)).scalar_one() == 10


def test_a_mapping_is_fixed_by_hand_saved_and_reused(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    _upload(at, EXPORT, "export.csv")
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "필수 항목 '주문번호'에 열을 정하세요" in warnings
    assert at.button(key="ord_import_run").disabled  # nothing can run half-mapped
    for label, column in [("주문번호 (필수)", "Bestellnr"), ("주문일시 (필수)", "Zeit"), ("구매자명 (필수)", "Kunde"),
                          ("상품명 (필수)", "Artikel"), ("수량 (필수)", "Menge"), ("상품가격 (필수)", "Preis"),
                          ("구매자연락처", "Telefon")]:
        _box(at, label).select(column)
    at.run()
    assert not at.warning and not at.button(key="ord_import_run").disabled
    at.text_input(key="ord_import_mapping_name").input("독일 쇼핑몰").run()
    at.button(key="ord_import_mapping_save").click().run()
    assert not at.exception, at.exception
    assert any("열 매핑 '독일 쇼핑몰'을(를) 저장했습니다" in t.value for t in at.toast)
    with Session(sqlite_engine) as session:
        assert import_mapping.load(session, "독일 쇼핑몰")["customer_phone"] == "Telefon"

    # next time: a fresh page, the same kind of file, the saved mapping chosen by name
    again = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    _upload(again, EXPORT, "export-2.csv")
    again.selectbox(key="ord_import_saved").select("독일 쇼핑몰").run()
    assert _box(again, "주문번호 (필수)").value == "Bestellnr" and not again.warning
    again.button(key="ord_import_run").click().run()
    assert not again.exception, again.exception
    with Session(sqlite_engine) as session:
        order = session.execute(select(Order).where(Order.order_number == "X-1")).scalar_one()
        assert order.total_amount == 19_000


def test_a_refused_file_lists_its_rows_and_writes_nothing(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    bad = SAMPLE.read_text(encoding="utf-8").replace("구매확정,스마트스토어,P-1003,클렌징 폼,대용량,3", "구매확정,스마트스토어,P-1003,클렌징 폼,대용량,0")
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/orders.py")
    _upload(at, bad.encode(), "bad.csv")
    at.button(key="ord_import_run").click().run()
    assert not at.exception, at.exception
    rows = next(d for d in at.dataframe if "오류" in d.value.columns).value
    assert list(rows["행"]) == [4] and "수량" in rows["오류"][0]
    with Session(sqlite_engine) as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0
