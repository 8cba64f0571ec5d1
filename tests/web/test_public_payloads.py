"""Every field of every public page is text (issue 16): markdown and HTML typed by staff, the owner or
a customer never becomes a link, an image, a script or a template expression on /pay, /help or /go.

A staff-made payment link once rendered `[지금 환불받기](https://phish.example)` as a clickable link and
loaded a remote image on the shop's own domain. Here one payload table goes through each field that a
public page shows: the item name, memo and product name of a link, the owner's refund policy, the
customer's own name and phone echoed back on a refused form, every /help field echoed back, and the
/go parameters.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.accounts.actor import Actor
from core.models import Product, Role
from core.payments import checkout
from core.payments.links import create_payment_link
from tests.payments.helpers import sandbox_router
from tests.web.helpers import csrf_of, customer_client

OWNER = Actor(None, "사장님", Role.OWNER)
PAYLOADS = [
    "[지금 환불받기](https://phish.example/refund)",
    "![배너](https://phish.example/pixel.png)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    "<a href='https://phish.example'>환불</a>",
    "{{ 7*7 }} {% if 1 %}x{% endif %}",
    "javascript:alert(1)",
]
IDS = ["md-link", "md-image", "script", "img", "attr-break", "anchor", "template", "js-url"]


class _Elements(HTMLParser):
    """The elements and attributes a browser would build from the page (escaped text is only text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str) -> None:
    """Nothing of the payload acts: no script, image or svg element, no event handler attribute, no
    link or resource to another site or to javascript:, no evaluated template expression."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "img", "svg", "iframe", "object"), tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "action", "formaction"):
                target = (value or "").strip().lower()
                assert "phish.example" not in target and not target.startswith("javascript:"), (tag, name, value)
    assert ">49<" not in html and " 49 " not in html  # {{ 7*7 }} is not evaluated


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_every_field_of_the_checkout_is_text(sqlite_engine: Engine, sqlite_actors, payload: str) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        checkout.set_refund_policy(session, OWNER, f"환불 규정 {payload}")
        product = Product(name=f"상품 {payload}"[:120], category="기타", price=12_000)
        session.add(product)
        session.commit()
        custom = create_payment_link(session, sqlite_actors["cs"], item_name=payload[:120], amount=39_000,
                                     memo=f"메모 {payload}", router=router)
        ready = create_payment_link(session, sqlite_actors["cs"], product_id=product.id, memo=payload,
                                    router=router)
    with customer_client(sqlite_engine) as client:
        for link in (custom, ready):
            page = client.get(f"/pay?link={link.code}")
            assert page.status_code == 200
            assert_inert(page.text)
            refused = client.post("/pay", data={"link": link.code, "csrf": csrf_of(page.text), "name": payload,
                                                "phone": payload, "method": "CARD", "action": "pay"})
            assert refused.status_code == 422  # the phone is not a number: the form comes back
            assert_inert(refused.text)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_every_help_field_echoed_back_is_text(client, payload: str) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/help")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)  # type: ignore[union-attr]
    refused = client.post("/help", data={"csrf": token, "phone": payload, "order_mode": "order",
                                         "order_number": payload, "type": payload, "text": payload})
    assert refused.status_code in (400, 422)
    assert_inert(refused.text)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_go_parameters_are_never_reflected_as_markup(sqlite_engine: Engine, payload: str) -> None:
    with customer_client(sqlite_engine) as client:
        for query in ({"c": payload, "u": payload}, {"c": "1", "u": "pub0", "v": payload}):
            answer = client.get("/go", params=query)
            assert answer.status_code in (400, 404) and "location" not in answer.headers
            assert_inert(answer.text)
