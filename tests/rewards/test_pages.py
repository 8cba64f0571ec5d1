"""/pay with a coupon and /r/ referral links over HTTP (server.py's routes, as tests/web/ drives them):
the discount shown and charged, refusals as Korean pages that hold nothing, two requests at once
that spend a coupon once, the 결제 완료 page's 추천하기 with its one allowed script, and bad
referral codes that write nothing."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import clock
from core.models import AuditLog, Coupon, Order, PaymentLink, Referral
from core.models.sandbox import SandboxPayment
from core.rewards import discounts, service
from tests.payments.helpers import sandbox_router
from tests.rewards.helpers import PRICE, coupon, coupon_row, customer, later, link, product
from tests.web.helpers import csrf_of, customer_client

PHONE = "010-1234-5678"


def _form(html: str, code: str, **extra: str) -> dict[str, str]:
    return {
        "link": code,
        "csrf": csrf_of(html),
        "name": "김민지",
        "phone": PHONE,
        "method": "CARD",
        "action": "pay",
        **extra,
    }


def _count(engine: Engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def _charged(engine: Engine) -> list[int]:
    with Session(engine) as session:
        paid = select(SandboxPayment.total_amount).where(SandboxPayment.status == "SUCCESS_PAYMENT")
        return sorted(session.scalars(paid))


def test_a_coupon_typed_on_pay_is_taken_off_and_the_receipt_offers_추천하기(engine: Engine) -> None:
    from tests.conftest import make_actors

    actors = make_actors(engine)
    _, router = sandbox_router(engine)
    buyer = customer(engine, "김민지", PHONE)
    code = coupon(engine, actors["owner"], buyer)
    checkout = link(engine, actors["cs"], router, product_id=product(engine))
    with customer_client(engine) as client:
        html = client.get(f"/pay?link={checkout}").text
        assert '<label for="coupon">' in html and 'name="points"' in html
        paid = client.post("/pay", data=_form(html, checkout, coupon=code.lower()))
        assert paid.status_code == 303
        receipt = client.get(paid.headers["location"])
    assert _charged(engine) == [PRICE - 3_000]
    text = receipt.text
    assert receipt.status_code == 200 and "결제가 완료되었습니다" in text
    assert "쿠폰 할인" in text and "-3,000원" in text and 'id="total">36,000원<' in text and code in text
    # 추천하기: the buyer's own /r/ link, a share button, and the one script the page may run.
    share = re.search(r'id="share-url" readonly value="([^"]+)"', text)
    assert share and re.search(r"/r/[2-9A-Z]{8}\?p=\d+$", share.group(1))
    assert "navigator.share" in text and "clipboard" in text and "<script src" not in text
    nonce = re.search(r'<script nonce="([^"]+)">', text)
    assert nonce and text.count("<script") == 1
    policy = receipt.headers["content-security-policy"]
    assert "default-src 'none'" in policy and f"script-src 'nonce-{nonce.group(1)}'" in policy
    with Session(engine) as session:
        order = session.scalars(select(Order)).one()
        assert (order.total_amount, order.discount_amount) == (PRICE - 3_000, 3_000)


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("expired", "유효기간이 지난 쿠폰입니다."),
        ("too_big", "보다 커서"),
        ("unknown", "없는 쿠폰 번호입니다."),
    ],
)
def test_a_refused_coupon_is_a_korean_message_and_the_form_keeps_it(
    sqlite_engine,
    sqlite_actors,
    case: str,  # type: ignore[no-untyped-def]
    says: str,
) -> None:
    _, router = sandbox_router(sqlite_engine)
    buyer = customer(sqlite_engine, "김민지", PHONE)
    code = coupon(
        sqlite_engine, sqlite_actors["owner"], buyer, amount=PRICE if case == "too_big" else 3_000, days=1
    )
    typed = "ZZZZ-ZZZZ-ZZZZ" if case == "unknown" else code
    if case == "expired":
        later(25)
    checkout = link(sqlite_engine, sqlite_actors["cs"], router)
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={checkout}").text
        page = client.post("/pay", data=_form(html, checkout, coupon=typed))
    assert page.status_code == 422 and says in page.text and 'role="alert"' in page.text
    assert f'value="{typed}"' in page.text and 'id="total">39,000원<' in page.text  # nothing taken off
    assert coupon_row(sqlite_engine, code).redeemed_at is None and _charged(sqlite_engine) == []


def test_one_coupon_in_two_requests_at_once_pays_once(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    buyer = customer(sqlite_engine, "김민지", PHONE)
    code = coupon(sqlite_engine, sqlite_actors["owner"], buyer)
    checkouts = [link(sqlite_engine, sqlite_actors["cs"], router) for _ in range(2)]
    answers: list[tuple[int, str]] = []
    with customer_client(sqlite_engine) as client:
        forms = [_form(client.get(f"/pay?link={c}").text, c, coupon=code) for c in checkouts]
        barrier = threading.Barrier(2)

        def tab(form: dict[str, str]) -> None:
            barrier.wait()
            answer = client.post("/pay", data=form)
            answers.append((answer.status_code, answer.text))

        threads = [threading.Thread(target=tab, args=(f,)) for f in forms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [303, 422]
    refused = next(text for status, text in answers if status == 422)
    assert "이미 사용된 쿠폰입니다." in refused
    assert _charged(sqlite_engine) == [PRICE - 3_000]  # the refused tab paid nothing
    with Session(sqlite_engine) as session:
        used = session.scalars(select(Coupon)).one()
        assert used.redeemed_order_id is not None
        assert session.scalar(select(func.count()).select_from(Order).where(Order.coupon_id == used.id)) == 1


def test_quitting_the_payment_gives_the_coupon_back(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    buyer = customer(sqlite_engine, "김민지", PHONE)
    code = coupon(sqlite_engine, sqlite_actors["owner"], buyer)
    checkout = link(sqlite_engine, sqlite_actors["cs"], router)
    with Session(sqlite_engine) as session:  # held, as the pay button leaves it before the gateway answers
        discounts.apply_discounts(
            session, checkout, coupon_code=code, use_points=False, customer_phone=PHONE, now=clock.now()
        )
        session.commit()
    with customer_client(sqlite_engine) as client:
        html = client.get(f"/pay?link={checkout}").text
        assert 'id="total">36,000원<' in html
        quit_ = client.post("/pay", data=_form(html, checkout, action="quit"))
        page = client.get(quit_.headers["location"])
    assert 'id="total">39,000원<' in page.text
    assert coupon_row(sqlite_engine, code).redeemed_at is None


# ---------------------------------------------------------------- /r/


def _referrer(engine: Engine, actors, router) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    item = product(engine)
    with customer_client(engine) as client:
        checkout = link(engine, actors["cs"], router, product_id=item)
        html = client.get(f"/pay?link={checkout}").text
        client.post("/pay", data={**_form(html, checkout), "name": "박지훈", "phone": "010-1111-2222"})
        receipt = client.get(f"/pay?link={checkout}").text
    share = re.search(r'id="share-url" readonly value="[^"]*(/r/[^"]+)"', receipt)
    assert share
    return share.group(1).replace("&amp;", "&"), item


def test_a_referral_link_opens_a_checkout_and_a_new_buyer_credits_the_referrer(engine: Engine) -> None:
    from tests.conftest import make_actors

    actors = make_actors(engine)
    _, router = sandbox_router(engine)
    with Session(engine) as session:
        service.save_reward_settings(
            session,
            actors["owner"],
            review={},
            referral={"kind": "coupon", "amount": 5_000, "valid_days": 60},
        )
        session.commit()
    path, _ = _referrer(engine, actors, router)
    later(1)
    with customer_client(engine) as friend:
        opened = friend.get(path)
        assert opened.status_code == 303 and opened.headers["location"].startswith("/pay?link=")
        assert "cd_ref=" in opened.headers["set-cookie"] and "HttpOnly" in opened.headers["set-cookie"]
        again = friend.get(path)  # the same phone comes back: the same checkout
        assert again.headers["location"] == opened.headers["location"]
        checkout = opened.headers["location"].split("=", 1)[1]
        html = friend.get(opened.headers["location"]).text
        assert "수분 크림" in html and 'id="total">39,000원<' in html
        paid = friend.post("/pay", data={**_form(html, checkout), "name": "최유나", "phone": "010-3333-4444"})
        assert paid.status_code == 303
    with Session(engine) as session:
        visit = session.scalars(select(Referral)).one()
        assert visit.status == "credited"
        reward = session.scalars(select(Coupon).where(Coupon.reason == "referral")).one()
        assert reward.amount == 5_000 and reward.customer_id == visit.referrer_id


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/r/abc", 400, "추천 링크가 올바르지 않습니다."),
        ("/r/ABCD234O", 400, "추천 링크가 올바르지 않습니다."),  # O is never in a code
        ("/r/%3Cscript%3E", 400, "추천 링크가 올바르지 않습니다."),
        ("/r/ABCD2345?p=1%20OR%201", 400, "추천 링크가 올바르지 않습니다."),
        ("/r/ABCD2345?p=https://evil.example", 400, "추천 링크가 올바르지 않습니다."),
        ("/r/" + "A" * 5000, 400, "추천 링크가 올바르지 않습니다."),
        ("/r/ABCD2345", 404, "없는 추천 링크입니다"),
        ("/r/ABCD2345?p=7", 404, "없는 추천 링크입니다"),
    ],
    ids=["short", "look-alike", "html", "sql", "url", "huge", "unknown", "unknown-with-product"],
)
def test_a_bad_or_unknown_referral_link_is_a_korean_page_and_writes_nothing(
    sqlite_engine, path: str, status: int, says: str
) -> None:
    before = (
        _count(sqlite_engine, PaymentLink),
        _count(sqlite_engine, Referral),
        _count(sqlite_engine, AuditLog),
    )
    with customer_client(sqlite_engine) as client:
        page = client.get(path)
    assert page.status_code == status and says in page.text and '<html lang="ko">' in page.text
    assert "set-cookie" not in page.headers and "<script" not in page.text
    assert (
        _count(sqlite_engine, PaymentLink),
        _count(sqlite_engine, Referral),
        _count(sqlite_engine, AuditLog),
    ) == before


def test_a_known_code_for_a_product_not_on_sale_writes_nothing(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    _, router = sandbox_router(sqlite_engine)
    path, _ = _referrer(sqlite_engine, sqlite_actors, router)
    before = _count(sqlite_engine, PaymentLink)
    with customer_client(sqlite_engine) as client:
        page = client.get(path.split("?")[0] + "?p=999999")
    assert page.status_code == 404 and "지금은 판매하지 않는 상품입니다" in page.text
    assert _count(sqlite_engine, PaymentLink) == before and _count(sqlite_engine, Referral) == 0


def test_a_referral_link_in_a_loop_is_refused_after_30_visits_and_writes_no_more(engine: Engine) -> None:
    """A script opening /r/ without cookies would make a checkout and a referral visit each time
    (the 매출 funnel counts them): one address gets 30 in 10 minutes, then a Korean 429 page."""
    from core.models import PaymentLink
    from tests.conftest import make_actors

    actors = make_actors(engine)
    _, router = sandbox_router(engine)
    path, _ = _referrer(engine, actors, router)
    links_before = _count(engine, PaymentLink)
    with customer_client(engine) as bot:
        answers = []
        for _ in range(35):
            bot.cookies.clear()  # a script keeps no cookie: each visit would be a new checkout
            answers.append(bot.get(path))
    assert [a.status_code for a in answers] == [303] * 30 + [429] * 5
    assert "요청이 너무 많아요" in answers[-1].text and answers[-1].headers["retry-after"] == "60"
    assert _count(engine, Referral) == 30
    assert _count(engine, PaymentLink) == links_before + 30
