"""/pay as plain HTML (issue 21): the checkout shows what is bought and from whom, every state reads as
Korean with the right HTTP status, and the flow stays as safe as the services make it: approve once
across reloads, double taps and replayed returns; the server never trusts amount or item from the
form; every post carries the CSRF token of this browser and this link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import Session, select

from core import clock
from core.errors import PermissionDenied
from core.models import Customer, Order, Payment, PaymentLink, PaymentStatus, Product
from core.models.sandbox import SandboxPayment
from core.payments import checkout
from core.payments.link_checkout import select_method, start_payment
from core.payments.links import create_payment_link
from tests.payments.helpers import sandbox_router
from tests.web.helpers import IPHONE_KAKAOTALK_UA, csrf_of, customer_client

AMOUNT = 39_000


def _link(engine: Engine, actors, **kwargs) -> PaymentLink:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(engine)
    with Session(engine, expire_on_commit=False) as session:
        values = dict(item_name="수분 크림 세트", amount=AMOUNT, router=router)
        values.update(kwargs)
        return create_payment_link(session, actors["cs"], **values)


def _pay_form(html: str, code: str, **extra: str) -> dict[str, str]:
    return {"link": code, "csrf": csrf_of(html), "name": "김민지", "phone": "010-1234-5678",
            "method": "CARD", "action": "pay", **extra}


def _count(engine: Engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _gateway_actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [a["payment_action_type"] for p in session.exec(select(SandboxPayment)).all() for a in p.actions]


# ---------------------------------------------------------------- what the checkout shows

def test_the_checkout_is_a_light_korean_page_with_shop_items_total_policy_and_contact(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    with Session(sqlite_engine) as session:
        product = Product(name="수분 크림", price=45_000)
        session.add(product)
        session.commit()
        product_id = product.id
    link = _link(sqlite_engine, sqlite_actors, product_id=product_id, item_name="수분 크림", amount=AMOUNT)
    with customer_client(sqlite_engine) as client:
        page = client.get(f"/pay?link={link.code}")
    html = page.text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="ko">' in html and '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert re.search(r"<title>결제하기 · 채널데스크 샵</title>", html)
    assert "채널데스크 샵" in html and "02-000-0000" in html  # shop name and contact
    assert "수분 크림" in html and "수량 1개" in html
    assert "45,000원" in html and "-6,000원" in html and 'id="total">39,000원<' in html  # 정가, 할인, 총액
    assert checkout.DEFAULT_REFUND_POLICY in html and 'href="/help">문의하기<' in html
    assert "카카오페이로 안전하게 결제" in html
    assert html.count("btn-primary") - html.count(".btn-primary") == 1  # one primary button
    for field in ("name", "phone"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html  # a label on every field
    # No Streamlit and no script on the customer's side; nothing cached, framed or scripted.
    assert "<script" not in html and "streamlit" not in html.lower() and "_stcore" not in html
    assert "min-height:48px" in html and "min-height:52px" in html  # tap targets >= 44 px
    assert page.headers["cache-control"] == "no-store" and "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    cookie = page.headers["set-cookie"]
    assert "cd_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert len(page.content) < 60_000


def test_the_owner_writes_the_refund_policy_and_the_checkout_shows_it(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    text = "<b>7일</b> 안에 환불해 드립니다.\n배송비는 저희가 냅니다."
    with Session(sqlite_engine) as session:
        with pytest.raises(PermissionDenied):
            checkout.set_refund_policy(session, sqlite_actors["cs"], "아무나 바꾼 정책")
        session.rollback()
        checkout.set_refund_policy(session, sqlite_actors["owner"], text)
        session.commit()
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
    assert "&lt;b&gt;7일&lt;/b&gt; 안에 환불해 드립니다.\n배송비는 저희가 냅니다." in html
    assert checkout.DEFAULT_REFUND_POLICY not in html


PAYLOADS = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "[지금 환불받기](https://phish.example/refund) {{ 7*7 }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_staff_typed_item_and_memo_are_text(sqlite_engine, sqlite_actors, payload: str) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors, item_name=payload[:120], memo=f"메모 {payload}")
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
    assert "<img" not in html and "<svg" not in html and "<script" not in html and "onerror=\"" not in html
    if "{{" in payload:
        assert "{{ 7*7 }}" in html  # shown as typed: no template injection


# ---------------------------------------------------------------- bad link codes

@pytest.mark.parametrize(
    ("query", "status", "shown"),
    [
        ("", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=abc%00def", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=%1B%5B31m", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=" + "x" * 5000, 400, "결제 링크가 올바르지 않습니다."),
        ("?link=..%2F..%2Fetc", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=%3Cscript%3E", 400, "결제 링크가 올바르지 않습니다."),
        ("?link=%EF%BC%A1%EF%BC%A2%EF%BC%A3%EF%BC%91%EF%BC%92%EF%BC%93", 400, "결제 링크가 올바르지 않습니다."),  # full-width
        ("?link=AAAAAAAAAAAA", 404, "없는 결제 링크입니다"),
        ("?link=abc123abc123&attempt=%00", 400, "결제 링크가 올바르지 않습니다."),
    ],
    ids=["none", "empty", "nul", "escape", "huge", "path", "html", "fullwidth", "unknown", "bad-attempt"],
)
def test_bad_and_unknown_codes_are_korean_pages_with_the_right_status(sqlite_engine, query: str, status: int,
                                                                       shown: str) -> None:
    with customer_client(sqlite_engine) as client:
        page = client.get(f"/pay{query}")
    assert page.status_code == status and shown in page.text
    assert '<html lang="ko">' in page.text and "<form" not in page.text
    assert "<script" not in page.text


def test_an_expired_link_is_410_and_cannot_be_paid(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        clock.set_now(link.expires_at + timedelta(seconds=1))
        page = client.get(f"/pay?link={link.code}")
        assert page.status_code == 410 and "만료된 결제 링크입니다" in page.text and "<form" not in page.text
        posted = client.post("/pay", data=_pay_form(html, link.code))
    assert posted.status_code == 410 and "만료된 결제 링크" in posted.text
    assert _count(sqlite_engine, Order) == 0 and _gateway_actions(sqlite_engine) == []


# ---------------------------------------------------------------- paying

def test_paying_shows_the_receipt_and_a_second_tap_pays_nothing_more(engine: Engine) -> None:
    from tests.conftest import make_actors

    link = _link(engine, make_actors(engine))
    with customer_client(engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        form = _pay_form(html, link.code)
        paid = client.post("/pay", data=form)
        assert paid.status_code == 303 and paid.headers["location"] == f"/pay?link={link.code}"
        receipt = client.get(paid.headers["location"])
        again = client.post("/pay", data=form)  # a double tap / the back button and the form again
        assert again.status_code == 303 and again.headers["location"].endswith("&notice=already")
        already = client.get(again.headers["location"])
    with Session(engine) as session:
        order = session.exec(select(Order)).one()
        payment = session.exec(select(Payment)).one()
        assert order.total_amount == AMOUNT and payment.status == PaymentStatus.APPROVED and payment.method == "CARD"
        assert session.get(PaymentLink, link.id).status == "paid"
    assert receipt.status_code == 200 and "결제가 완료되었습니다" in receipt.text
    assert order.order_number in receipt.text and "카카오페이 카드" in receipt.text and "39,000원" in receipt.text
    assert "<form" not in receipt.text and "<title>결제 완료 · " in receipt.text
    assert "이미 결제가 완료된 링크입니다" in already.text and "<form" not in already.text
    assert _gateway_actions(engine) == ["PAYMENT"]


def test_a_tampered_amount_or_item_in_the_form_is_ignored(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        form = _pay_form(html, link.code, amount="100", total_amount="100", item_name="공짜 상품",
                         tax_free_amount="39000", quantity="0")
        assert client.post("/pay", data=form).status_code == 303
    with Session(sqlite_engine) as session:
        order = session.exec(select(Order)).one()
        (gateway_side,) = session.exec(select(SandboxPayment)).all()
        assert order.total_amount == AMOUNT and order.tax_free_amount == 0
        assert gateway_side.total_amount == AMOUNT and gateway_side.item_name == "수분 크림 세트"


def test_a_bad_contact_keeps_the_form_with_what_was_typed(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        page = client.post("/pay", data=_pay_form(html, link.code, name="<b>김</b>", phone="０１０-１２"))
    assert page.status_code == 422 and "휴대폰 번호를 확인해 주세요" in page.text
    assert 'value="&lt;b&gt;김&lt;/b&gt;"' in page.text and "<form" in page.text
    assert _count(sqlite_engine, Order) == 0


@pytest.mark.parametrize("case", ["missing", "wrong", "other-link", "no-cookie", "foreign-origin"])
def test_a_post_without_this_browsers_token_for_this_link_is_refused(sqlite_engine, sqlite_actors, case: str) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    other = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        other_html = client.get(f"/pay?link={other.code}").text
        form = _pay_form(html, link.code)
        headers = {}
        if case == "missing":
            del form["csrf"]
        elif case == "wrong":
            form["csrf"] = "0" * 64
        elif case == "other-link":
            form["csrf"] = csrf_of(other_html)  # a valid token, for another link
        elif case == "no-cookie":
            client.cookies.clear()
        else:
            headers = {"Origin": "https://evil.example"}
        page = client.post("/pay", data=form, headers=headers)
    assert page.status_code == 403 and "결제 페이지를 다시 열어 주세요" in page.text
    assert f'href="/pay?link={link.code}"' in page.text
    assert _count(sqlite_engine, Payment) == 0 and _gateway_actions(sqlite_engine) == []


def test_a_huge_post_is_refused_unread(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        page = client.post("/pay", data=_pay_form(html, link.code, name="가" * 100_000))
    assert page.status_code == 413 and "요청이 너무 큽니다" in page.text
    assert _count(sqlite_engine, Payment) == 0


def test_quitting_keeps_the_link_payable(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link = _link(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        quit_ = client.post("/pay", data=_pay_form(html, link.code, action="quit"))
        assert quit_.status_code == 303 and quit_.headers["location"].endswith("&notice=cancel")
        page = client.get(quit_.headers["location"])
    assert "결제를 취소했습니다. 언제든 다시 결제할 수 있습니다." in page.text and 'id="pay-form"' in page.text
    assert _count(sqlite_engine, Order) == 0


# ---------------------------------------------------------------- KakaoPay's returns

def _readied(engine: Engine, actors) -> tuple[PaymentLink, object, str]:  # type: ignore[no-untyped-def]
    """A link of a known customer, readied and its method chosen, as KakaoPay leaves it before the return."""
    _, router = sandbox_router(engine)
    with Session(engine, expire_on_commit=False) as session:
        customer = Customer(name="데모 고객", phone="01077778888")
        session.add(customer)
        session.commit()
        link = create_payment_link(session, actors["cs"], item_name="데모 상품", amount=9_900,
                                   customer_id=customer.id, router=router)
        start = start_payment(session, link.code, router=router)
        token = select_method(session, link.code, "CARD", router=router, tid=start.tid)
    return link, start, token


def test_the_approval_return_approves_once_across_reloads_and_replays(engine: Engine) -> None:
    from tests.conftest import make_actors

    link, start, token = _readied(engine, make_actors(engine))
    back = f"/pay?link={link.code}&attempt={start.attempt}&result=ok&pg_token={token}"
    with customer_client(engine) as client:
        first = client.get(back)
        reload_ = client.get(back)
        replay = client.get(f"/pay?link={link.code}&attempt=other1&result=ok&pg_token={token}")
        receipt = client.get(first.headers["location"])
    assert first.status_code == reload_.status_code == replay.status_code == 303
    assert first.headers["location"] == reload_.headers["location"] == f"/pay?link={link.code}"  # the pg_token leaves the URL
    assert "결제가 완료되었습니다" in receipt.text
    with Session(engine) as session:
        assert session.exec(select(Payment)).one().status == PaymentStatus.APPROVED
    assert _count(engine, Order) == 1 and _gateway_actions(engine) == ["PAYMENT"]


def test_an_approval_return_while_the_outcome_is_unknown_says_checking_and_approves_nothing(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link, start, token = _readied(sqlite_engine, sqlite_actors)
    with Session(sqlite_engine) as session:  # another tab's approve is in flight (or its answer was lost)
        session.execute(update(Payment).values(status=PaymentStatus.UNKNOWN))
        session.commit()
    with customer_client(sqlite_engine) as client:
        page = client.get(f"/pay?link={link.code}&attempt={start.attempt}&result=ok&pg_token={token}")
        plain = client.get(f"/pay?link={link.code}")
    assert page.status_code == 409 and "결제 결과를 확인 중입니다" in page.text and "<form" not in page.text
    assert plain.status_code == 200 and "결제 확인 중" in plain.text and 'id="pay-form"' not in plain.text
    assert _gateway_actions(sqlite_engine) == [] and _count(sqlite_engine, Order) == 0


@pytest.mark.parametrize(("result", "shown"), [("cancel", "결제를 취소했습니다"), ("fail", "결제에 실패했습니다")])
def test_cancel_and_fail_returns_keep_the_link_payable(sqlite_engine, sqlite_actors, result: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    link, start, _token = _readied(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine) as client:
        back = client.get(f"/pay?link={link.code}&attempt={start.attempt}&result={result}")
        assert back.status_code == 303 and back.headers["location"].endswith(f"&notice={result}")
        page = client.get(back.headers["location"])
    assert shown in page.text and 'id="pay-form"' in page.text
    with Session(sqlite_engine) as session:
        assert session.get(PaymentLink, link.id).status == ("quit" if result == "cancel" else "failed")


def test_a_cancel_return_after_paying_leaves_it_paid(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    link, start, token = _readied(sqlite_engine, sqlite_actors)
    with customer_client(sqlite_engine, IPHONE_KAKAOTALK_UA) as client:
        client.get(f"/pay?link={link.code}&attempt={start.attempt}&result=ok&pg_token={token}")
        late = client.get(f"/pay?link={link.code}&attempt={start.attempt}&result=cancel")
        assert late.headers["location"].endswith("&notice=already")
        assert "이미 결제가 완료된 링크입니다" in client.get(late.headers["location"]).text
    with Session(sqlite_engine) as session:
        assert session.get(PaymentLink, link.id).status == "paid"


def test_the_hosted_gateway_sends_the_phone_to_its_mobile_page(sqlite_engine, sqlite_actors, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """KakaoPay hosts its own page: the pay button readies and answers 303 to next_redirect_mobile_url
    for a phone (KakaoTalk's browser), to the PC URL for a desktop; a non-http URL is never followed."""
    from core.payments import link_checkout

    link = _link(sqlite_engine, sqlite_actors)
    readied: list[str] = []

    def fake_start(session, code, **_kwargs):  # type: ignore[no-untyped-def]
        readied.append(code)
        mobile = "javascript:alert(1)" if len(readied) == 3 else "https://online-pay.kakao.com/mockup/m"
        return link_checkout.PaymentStart(tid="T1234567890123456789", attempt="a1", redirect_pc_url="https://online-pay.kakao.com/mockup/pc",
                                          redirect_mobile_url=mobile, redirect_app_url=None)

    monkeypatch.setattr(link_checkout, "is_hosted", lambda *_a, **_k: True)
    monkeypatch.setattr(link_checkout, "start_payment", fake_start)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={link.code}").text
        assert "결제 수단 (데모)" not in html and "카카오페이로 39,000원 결제하기" in html
        phone = client.post("/pay", data=_pay_form(html, link.code))
        desktop = client.post("/pay", data=_pay_form(html, link.code), headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
        bad = client.post("/pay", data=_pay_form(html, link.code))
    assert phone.status_code == 303 and phone.headers["location"] == "https://online-pay.kakao.com/mockup/m"
    assert desktop.headers["location"] == "https://online-pay.kakao.com/mockup/pc"
    assert bad.status_code == 502 and "javascript:" not in bad.text
