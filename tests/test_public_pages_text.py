"""Public pages (/pay, /go): staff- and customer-typed text is text; bad parameters and gateway
refusals read as fixed Korean sentences (issue 16). /pay is plain HTML now (issue 21): the text is
checked in the HTML the customer's browser gets."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.errors import ValidationFailed
from core.payments.gateways.base import PaymentError, PaymentOutcomeUnknown, PermanentPaymentError
from core.payments.link_checkout import GATEWAY_TROUBLE, customer_message
from core.payments.links import create_payment_link
from tests.payments.helpers import sandbox_router
from tests.web.helpers import customer_client

PAYLOADS = [
    "[지금 환불받기](https://phish.example/refund)",
    "![t](https://tracker.example/p.png)",
    "<img src=x onerror=alert(1)>**굵게**",
    "`code` # 제목 | 표 |",
]
LIVE_HTML = re.compile(r"<(img|script|svg)\b", re.I)


def _pay_page(engine: Engine, code: str) -> tuple[int, str]:
    from urllib.parse import quote

    with customer_client(engine) as client:
        page = client.get(f"/pay?link={quote(code)}")
    return page.status_code, page.text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_pay_page_shows_item_and_memo_as_typed(sqlite_engine: Engine, sqlite_actors, payload: str) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(session, sqlite_actors["cs"], item_name=payload, amount=9_900,
                                   memo=f"메모 {payload}", router=router)
    status, page = _pay_page(sqlite_engine, link.code)
    assert status == 200
    main = page.split("<main>")[1]
    assert html.escape(payload, quote=False) in main and html.escape(f"메모 {payload}", quote=False) in main
    assert not LIVE_HTML.search(main), main  # no image, script or svg from the typed text
    assert set(re.findall(r'<a [^>]*href="([^"]*)"', main)) <= {"/help", "tel:02-000-0000"}  # our own links only


@pytest.mark.parametrize("code", ["abc\x00def", "\x1b[31m", "x" * 5000], ids=["nul", "escape", "huge"])
def test_a_bad_link_parameter_is_a_message_not_a_crash(engine: Engine, code: str) -> None:
    status, page = _pay_page(engine, code)
    assert status == 400 and "결제 링크가 올바르지 않습니다." in page


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValidationFailed("결제를 시작할 수 없습니다: KakaoPay -780 approval failure (internal)"),
         GATEWAY_TROUBLE),
        (ValidationFailed("결제가 승인되지 않았습니다: <html>502 Bad Gateway</html>"), GATEWAY_TROUBLE),
        (ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요"),
         "결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요"),
        (ValidationFailed("만료된 결제 링크입니다"), "만료된 결제 링크입니다"),
    ],
    ids=["ready-refused", "html-502", "our-own-unknown", "our-own"],
)
def test_gateway_text_never_reaches_the_customer(error: ValidationFailed, shown: str) -> None:
    causes = {"ready-refused": PermanentPaymentError("KakaoPay -780 approval failure (internal)", code="-780"),
              "html-502": PaymentError("<html>502 Bad Gateway</html>"),
              "our-own-unknown": PaymentOutcomeUnknown("read timeout")}
    message = str(error)
    for cause in causes.values():
        if str(cause) in message or (isinstance(cause, PaymentOutcomeUnknown) and "확인 중" in message):
            error.__cause__ = cause
            break
    assert customer_message(error) == shown
