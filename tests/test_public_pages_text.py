"""Public pages (/pay, /go): staff- and customer-typed text is text; bad parameters and gateway
refusals read as fixed Korean sentences (issue 16)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

import ui
from core.errors import ValidationFailed
from core.payments.gateways.base import PaymentError, PaymentOutcomeUnknown, PermanentPaymentError
from core.payments.links import GATEWAY_TROUBLE, create_payment_link, customer_message
from tests.payments.helpers import sandbox_router
from tests.ui_helpers import ROOT, point_app_at, texts

PAYLOADS = [
    "[지금 환불받기](https://phish.example/refund)",
    "![t](https://tracker.example/p.png)",
    "<img src=x onerror=alert(1)>**굵게**",
    "`code` # 제목 | 표 |",
]
# An unescaped markdown link or image: `[..](..)` whose brackets are not preceded by a backslash.
LIVE_MARKDOWN = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def _pay_page(engine: Engine, code: str) -> AppTest:
    point_app_at(engine)
    at = AppTest.from_file(str(ROOT / "pages" / "pay.py"), default_timeout=30)
    at.query_params["link"] = code
    return at.run()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_pay_page_shows_item_and_memo_as_typed(sqlite_engine: Engine, sqlite_actors, payload: str) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(session, sqlite_actors["cs"], item_name=payload, amount=9_900,
                                   memo=f"메모 {payload}", router=router)
    at = _pay_page(sqlite_engine, link.code)
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == [ui.md_escape(payload)]
    assert ui.md_escape(f"메모 {payload}") in [c.value for c in at.caption]
    for element in (*at.subheader, *at.caption, *at.markdown):
        assert not LIVE_MARKDOWN.search(str(element.value)), element.value
        assert not re.search(r"(?<!\\)<img", str(element.value))  # (raw HTML is off anyway)


@pytest.mark.parametrize("code", ["abc\x00def", "\x1b[31m", "x" * 5000], ids=["nul", "escape", "huge"])
def test_a_bad_link_parameter_is_a_message_not_a_crash(engine: Engine, code: str) -> None:
    at = _pay_page(engine, code)
    assert not at.exception, at.exception
    assert "결제 링크가 올바르지 않습니다." in texts(at)


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
