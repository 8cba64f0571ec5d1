"""AppTest: the 주문 page (search, detail, refund with confirmation, links, import) and the public pay page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.models import Order, PaymentLink, Refund
from core.payments.links import create_payment_link
from core.payments.order_import import import_orders
from tests.payments.helpers import paid_order, sandbox_router
from tests.ui_helpers import open_app, texts

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "orders_sample.csv"


def test_search_detail_and_refund_with_confirmation(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    sandbox, _ = sandbox_router(sqlite_engine)
    payment = paid_order(sqlite_engine, sandbox, amount=12_000, number="W-0001")
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/orders.py")
    assert not at.exception, at.exception
    at.text_input(key="ord_query").input("W-0001").run()
    assert "주문 W-0001" in texts(at)
    at.number_input(key="ord_refund_amount").set_value(2_000)
    at.text_input(key="ord_refund_reason").input("일부 불량").run()
    at.button(key="ord_refund_review").click().run()
    assert any("2,000원을(를) 테스트 결제" in w.value for w in at.warning)
    at.button(key="ord_refund_confirm").click().run()
    assert not at.exception, at.exception
    assert any("2,000원 환불 완료" in t.value for t in at.toast)
    with Session(sqlite_engine) as session:
        refund = session.exec(select(Refund)).one()
        assert (refund.payment_id, refund.amount, refund.status) == (payment.id, 2_000, "succeeded")


def test_staff_sees_no_refund_form(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    sandbox, _ = sandbox_router(sqlite_engine)
    paid_order(sqlite_engine, sandbox, number="W-0002")
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    assert not at.exception
    assert not [b for b in at.button if b.key == "ord_refund_review"]


def test_create_link_shows_chat_text(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    at.text_input(key="ord_link_item").input("맞춤 견적")
    at.number_input(key="ord_link_amount").set_value(15_000)
    at.button[[b.label for b in at.button].index("링크 만들기")].click().run()
    assert not at.exception, at.exception
    assert at.code and "15,000원" in at.code[0].value and "/pay?link=" in at.code[0].value
    at.number_input(key="ord_link_tax_free").set_value(20_000)
    at.button[[b.label for b in at.button].index("링크 만들기")].click().run()
    assert any("면세 금액" in e.value for e in at.error)


def test_imported_orders_are_searchable(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    with Session(sqlite_engine) as session:
        import_orders(session, sqlite_actors["owner"], SAMPLE.read_bytes())
        session.commit()
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/orders.py")
    at.text_input(key="ord_query").input("김민지").run()
    assert not at.exception
    assert "20261102-0002" in str(at.dataframe[0].value)


def test_public_pay_page_pays_a_link_without_login(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """/pay is a plain HTML route (web/customer/pay.py, issue 21): no login, no Streamlit."""
    from tests.web.helpers import csrf_of, customer_client

    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, sqlite_actors["cs"], item_name="데모 상품", amount=9_900, router=router
        )
    with customer_client(sqlite_engine) as client:
        page = client.get(f"/pay?link={link.code}")
        assert page.status_code == 200 and "9,900원" in page.text
        form = {"link": link.code, "csrf": csrf_of(page.text), "name": "데모 고객", "phone": "010-7777-8888",
                "method": "MONEY", "action": "pay"}
        paid = client.post("/pay", data=form)
        assert paid.status_code == 303
        assert "결제가 완료되었습니다" in client.get(paid.headers["location"]).text
    with Session(sqlite_engine) as session:
        assert session.get(PaymentLink, link.id).status == "paid"
        assert session.exec(select(Order)).one().total_amount == 9_900


def test_pay_page_without_link_is_a_clear_error(sqlite_engine: Engine) -> None:
    from tests.web.helpers import customer_client

    with customer_client(sqlite_engine) as client:
        page = client.get("/pay")
    assert page.status_code == 400 and "결제 링크가 올바르지 않습니다" in page.text


def test_pay_page_reads_the_approval_return_and_approves_once(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """The approval_url KakaoPay redirects to: ?link=&attempt=&result=ok&pg_token= (sandbox plays KakaoPay)."""
    from core.models import Customer, Payment
    from core.models.sandbox import SandboxPayment
    from core.payments.link_checkout import select_method, start_payment
    from tests.web.helpers import customer_client

    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        customer = Customer(name="데모 고객", phone="01077778888")
        session.add(customer)
        session.commit()
        link = create_payment_link(
            session,
            sqlite_actors["cs"],
            item_name="데모 상품",
            amount=9_900,
            customer_id=customer.id,
            router=router,
        )
        start = start_payment(session, link.code, router=router)
        token = select_method(session, link.code, "CARD", router=router, tid=start.tid)
    back = f"/pay?link={link.code}&attempt={start.attempt}&result=ok&pg_token={token}"
    with customer_client(sqlite_engine) as client:
        first = client.get(back)
        assert first.status_code == 303
        assert "결제가 완료되었습니다" in client.get(first.headers["location"]).text
        assert client.get(back).status_code == 303  # a reload of the return URL
    with Session(sqlite_engine) as session:
        assert session.exec(select(Payment)).one().status == "approved"
        assert session.get(PaymentLink, link.id).status == "paid"
        (gateway_side,) = session.exec(select(SandboxPayment)).all()  # the page's own sandbox client
        assert [a["payment_action_type"] for a in gateway_side.actions] == ["PAYMENT"]


def test_pay_page_cancel_return_keeps_the_link_payable(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from tests.web.helpers import customer_client

    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(
            session, sqlite_actors["cs"], item_name="데모", amount=1_000, router=router
        )
    with customer_client(sqlite_engine) as client:
        back = client.get(f"/pay?link={link.code}&attempt=a1&result=cancel")
        page = client.get(back.headers["location"])
    assert "결제를 취소했습니다" in page.text
    assert 'id="pay-form"' in page.text  # still payable
