"""/help through server.app (TestClient), on SQLite and PostgreSQL.

Rules (issue 21 and 17): the customer proves an order with phone + order number or picks 주문 없음;
the inquiry opens with the SLA promise shown; nothing of any customer is shown without proof (the
refusal is the same whichever field is wrong); throttled per address (1,000 a minute refused cleanly)
and per phone; CSRF on the post; 100,000 characters, HTML, emoji and full-width digits handled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from starlette.testclient import TestClient

import server
from core.db import session_scope
from core.inquiries import inbound
from core.models import Customer, InboundRequest, Inquiry, InquiryEvent, Order
from web.customer import render

TOKEN = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(autouse=True)
def _web_secret() -> Iterator[None]:
    render.reset_secret_cache()
    render._secret_cache.append(b"test-web-secret")
    yield
    render.reset_secret_cache()


def browser(address: str) -> TestClient:
    return TestClient(server.app, raise_server_exceptions=False, client=(address, 40000),
                      headers={"User-Agent": "Mozilla/5.0 (iPhone) KAKAOTALK 10.4.3"})


def submit(client: TestClient, **fields: str):
    page = client.get("/help")
    assert page.status_code == 200
    token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    data = {"csrf": token, "phone": "", "order_mode": "order", "order_number": "", "type": "payment_error",
            "text": "결제가 안 돼요", **fields}
    return client.post("/help", data=data)


@pytest.fixture
def shop(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        kim = Customer(name="김비밀", phone="010-2222-3333", mobile="01022223333")
        s.add(kim)
        s.flush()
        order = Order(order_number="20261101-0042", customer_id=kim.id, total_amount=123_400)
        s.add(order)
        s.flush()
        return {"customer": kim.id, "order": order.id}  # type: ignore[dict-item]


def inquiries(engine: Engine) -> list[Inquiry]:
    with Session(engine) as s:
        return list(s.exec(select(Inquiry).order_by(col(Inquiry.id))).all())


def test_the_form_is_plain_korean_html_with_a_csrf_token(client: TestClient) -> None:
    page = client.get("/help")
    assert page.status_code == 200
    assert '<html lang="ko">' in page.text and "<title>문의하기 · " in page.text
    assert "<script" not in page.text.lower()
    for label in ("휴대폰 번호", "주문번호", "주문 없음", "문의 유형", "문의 내용", "결제 오류", "이중 결제", "환불 요청",
                  "영수증 요청", "기타 문의"):
        assert label in page.text
    assert TOKEN.search(page.text)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert render.CSRF_COOKIE in page.cookies


def test_a_proven_order_opens_the_inquiry_with_the_promise(client: TestClient, engine: Engine,
                                                          shop: dict[str, int]) -> None:
    response = submit(client, phone="０１０-２２２２-３３３３", order_number="20261101-0042",
                      text="결제했는데 주문이 안 보여요 😥")
    assert response.status_code == 200
    assert "결제 오류 문의가 접수되었습니다. 평일 30분 안에 답변드릴게요 (오늘 18:00까지 운영)." in response.text
    [inquiry] = inquiries(engine)
    assert (inquiry.customer_id, inquiry.order_id, inquiry.type, inquiry.source) == \
        (shop["customer"], shop["order"], "payment_error", "help")
    with Session(engine) as s:
        event = s.exec(select(InquiryEvent)).one()
    assert event.body == "결제했는데 주문이 안 보여요 😥" and event.detail["proven"] is True
    # The page names nothing of the customer (not even to the one who proved it).
    assert "김비밀" not in response.text and "123,400" not in response.text


@pytest.mark.parametrize(
    ("phone", "number"),
    [
        ("010-2222-3334", "20261101-0042"),  # someone else's phone
        ("010-2222-3333", "20261101-0043"),  # an order number that does not exist
        ("010-9999-0000", "20261101-0043"),  # both wrong
        ("010-2222-3333", "' OR 1=1 --"),
        ("010-2222-3333", "2026110１-0042 " * 5),
    ],
)
def test_a_wrong_pair_proves_nothing_and_says_the_same_thing(client: TestClient, engine: Engine,
                                                             shop: dict[str, int], phone: str, number: str) -> None:
    response = submit(client, phone=phone, order_number=number)
    assert response.status_code == 400
    assert "주문번호와 휴대폰 번호가 맞는 주문을 찾지 못했어요" in response.text
    assert "김비밀" not in response.text and "123,400" not in response.text
    assert inquiries(engine) == []


def test_no_order_files_under_the_phone_unproven(client: TestClient, engine: Engine, shop: dict[str, int]) -> None:
    assert submit(client, phone="010 2222 3333", order_mode="none", type="other", text="매장 위치가 어디예요?").status_code == 200
    assert submit(client, phone="010-7777-8888", order_mode="none", type="refund_request", text="환불 정책?").status_code == 200
    first, second = inquiries(engine)
    assert first.customer_id == shop["customer"] and first.order_id is None
    with Session(engine) as s:
        new = s.get(Customer, second.customer_id)
        assert new.mobile == "01077778888" and new.phone == "010-7777-8888"
        details = [e.detail for e in s.exec(select(InquiryEvent)).all()]
    assert all(d["proven"] is False for d in details)


def test_an_order_question_needs_an_order_number(client: TestClient, engine: Engine) -> None:
    response = submit(client, phone="010-7777-8888", order_number="   ")
    assert response.status_code == 400 and "“주문 없음”" in response.text
    assert inquiries(engine) == []


def test_html_comes_back_escaped_and_is_stored_verbatim(client: TestClient, engine: Engine) -> None:
    text = '<script>alert(1)</script><img src=x onerror=alert(2)> 🙏'
    refused = submit(client, phone="<b>010</b>", order_mode="none", text=text)
    assert refused.status_code == 400 and "휴대폰 번호를 확인해 주세요" in refused.text
    assert "<script>alert(1)" not in refused.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text
    assert "<b>010</b>" not in refused.text
    assert submit(client, phone="010-7777-8888", order_mode="none", text=text).status_code == 200
    with Session(engine) as s:
        assert s.exec(select(InquiryEvent.body)).one() == text


def test_long_texts_are_refused_cleanly(client: TestClient, engine: Engine) -> None:
    latin = submit(client, phone="010-7777-8888", order_mode="none", text="a" * 100_000)
    assert latin.status_code == 400 and "10,000자까지" in latin.text
    hangul = submit(client, phone="010-7777-8888", order_mode="none", text="가" * 100_000)
    assert hangul.status_code == 413 and "너무 길어요" in hangul.text
    assert submit(client, phone="010-7777-8888", order_mode="none", text="가" * 10_000).status_code == 200
    assert len(inquiries(engine)) == 1


def test_a_post_without_the_token_or_from_another_site_is_refused(client: TestClient, engine: Engine) -> None:
    fields = {"phone": "010-7777-8888", "order_mode": "none", "type": "other", "text": "안녕하세요"}
    assert client.post("/help", data=fields).status_code == 403
    assert client.post("/help", data={**fields, "csrf": "0" * 64}).status_code == 403
    page = client.get("/help")
    token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    foreign = client.post("/help", data={**fields, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert inquiries(engine) == []


def test_a_reload_of_the_post_adds_nothing(client: TestClient, engine: Engine) -> None:
    page = client.get("/help")
    token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    data = {"csrf": token, "phone": "010-7777-8888", "order_mode": "none", "type": "other", "text": "두 번 눌렀어요"}
    first, again = client.post("/help", data=data), client.post("/help", data=data)
    assert first.status_code == again.status_code == 200
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(InquiryEvent)).one() == 1


def test_1000_posts_a_minute_from_one_address_are_refused_cleanly(engine: Engine, client: TestClient) -> None:
    flood = browser("198.51.100.9")
    token = TOKEN.search(flood.get("/help").text).group(1)  # type: ignore[union-attr]
    statuses = []
    for i in range(1000):
        data = {"csrf": token, "phone": f"010-5{i % 1000:03d}-{i:04d}", "order_mode": "none", "type": "other",
                "text": f"스팸 {i}"}
        statuses.append(flood.post("/help", data=data).status_code)
    assert statuses[: inbound.ADDRESS_LIMIT] == [200] * inbound.ADDRESS_LIMIT
    assert set(statuses[inbound.ADDRESS_LIMIT:]) == {429}
    assert len(inquiries(engine)) == inbound.ADDRESS_LIMIT
    refused = flood.post("/help", data={"csrf": token})
    assert refused.headers["retry-after"] == "60" and "잠시 후 다시" in refused.text
    # Another address is not affected.
    assert submit(browser("198.51.100.10"), phone="010-7777-8888", order_mode="none").status_code == 200
    with Session(engine) as s:
        logged = s.exec(select(func.count()).select_from(InboundRequest).where(InboundRequest.outcome == "throttled")).one()
    assert logged == 1000 - inbound.ADDRESS_LIMIT + 1


def test_one_phone_is_throttled_across_addresses(engine: Engine, client: TestClient, shop: dict[str, int]) -> None:
    """Guessing someone's order numbers from many addresses: the phone's budget runs out."""
    statuses = [submit(browser(f"192.0.2.{i}"), phone="010-2222-3333", order_number=f"2026-{i:04d}").status_code
                for i in range(inbound.PHONE_LIMIT + 3)]
    assert statuses == [400] * inbound.PHONE_LIMIT + [429] * 3
    # The right pair now waits too (the budget is the phone's, not the guesser's).
    assert submit(browser("192.0.2.200"), phone="010-2222-3333", order_number="20261101-0042").status_code == 429
    assert inquiries(engine) == []
    assert shop  # the customer exists; nothing of theirs was shown or written
