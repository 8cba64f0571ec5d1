"""/pay: the checkout of a payment link, as plain HTML (no Streamlit, no JavaScript needed to pay).

    GET  /pay?link=CODE                                  the checkout, or its state (paid: the receipt)
    GET  /pay?link=CODE&attempt=A&result=ok&pg_token=T   KakaoPay's approval return: approve once
    GET  /pay?link=CODE&attempt=A&result=cancel|fail     KakaoPay's cancel / fail return
    POST /pay  (link, csrf, name, phone, method, action) start paying (KakaoPay: 303 to its page;
                                                         sandbox: the demo pays at once) or quit
               (coupon, points)                          a coupon code and/or the points balance
                                                         taken off first (core.rewards: held on
                                                         the link, the gateway asked for the rest)

The safety is the services' (core.payments.link_checkout, link_approval): the approve is claimed once in the store, so a
reload, a double tap or a replayed return URL sends one approve and then shows the order; a
cancel/fail return is checked against the tid its attempt readied; an approve without an answer is
looked up, never sent again. This page adds: every return and post ends in a 303 to the plain page
(the pg_token leaves the address bar, a reload repeats nothing), every post carries a CSRF token
(web.customer.render), and the server reads only the link code, the contact and the sandbox method
from the form: amount and item always come from the stored link.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import billing, clock, rewards  # noqa: F401 (billing and rewards register their link hooks)
from core.db import read_scope, session_scope
from core.errors import ChannelDeskError, NotFound
from core.models import Order
from core.money import format_krw
from core.payments import link_approval, link_checkout
from core.payments import links as payment_links
from core.payments.checkout import CheckoutView, checkout_view
from core.rewards import discounts
from core.rewards import queries as reward_queries
from web.customer import render

PATH = "/pay"
CODE = re.compile(r"[A-Za-z0-9]{6,32}")  # links.create_payment_link makes 12 letters and digits
BAD_LINK = "결제 링크가 올바르지 않습니다."
NOTICES = {
    "cancel": ("warn", "결제를 취소했습니다. 언제든 다시 결제할 수 있습니다."),
    "fail": ("error", "결제에 실패했습니다. 다시 시도해 주세요."),
    "already": ("info", "이미 결제가 완료된 링크입니다. 다시 결제하지 않아도 됩니다."),
}
METHODS = {"MONEY": "카카오머니", "CARD": "카드"}
CHECKING = "결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요"
REOPENED = frozenset({"created", "quit", "failed"})  # statuses open_link moves to "opened"
MOBILE_WORDS = ("mobile", "android", "iphone", "ipad", "kakaotalk")


def valid_code(code: str | None) -> bool:
    return bool(code) and CODE.fullmatch(code or "") is not None


def _self(code: str, notice: str | None = None) -> str:
    return f"{PATH}?link={quote(code)}" + (f"&notice={notice}" if notice else "")


def _see_other(url: str) -> Response:
    return render.secure_headers(RedirectResponse(url, status_code=303))


# ------------------------------------------------------------------ services, run in a thread

@dataclass
class Outcome:
    """What a step led to: go somewhere (303) or show the checkout with a message and status."""

    redirect: str | None = None
    view: CheckoutView | None = None
    hosted: bool = False
    error: str | None = None
    status: int = 200
    share_url: str | None = None  # 결제 완료: the buyer's own referral link (추천하기)


def _view(session: Any, code: str, *, open_it: bool) -> tuple[CheckoutView, bool]:
    link = link_checkout.open_link(session, code) if open_it else payment_links.get_link(session, code)
    hosted = link_checkout.is_hosted(session, link)
    return checkout_view(session, link), hosted


def _show(code: str, *, open_it: bool = True) -> Outcome:
    """The page; `open_it` counts the visit in the funnel (not after a return: quit stays quit).

    Read first in a read-only transaction (on SQLite a plain BEGIN: a page view neither waits for
    nor holds up the shop's writers); a write transaction only when the visit moves the link
    (first open, a reopen after quit/fail, or the expiry falling due)."""
    with read_scope(render.engine()) as session:
        link = payment_links.get_link(session, code)
        due = link.expires_at is not None and link.expires_at <= clock.now() and link.status in payment_links.OPEN_STATUSES
        if not (due or (open_it and link.status in REOPENED)):
            view = checkout_view(session, link)
            return Outcome(view=view, hosted=link_checkout.is_hosted(session, link),
                           status=410 if view.expired else 200, share_url=_share_url(session, link.order_id))
    with session_scope(render.engine()) as session:
        view, hosted = _view(session, code, open_it=open_it)
    return Outcome(view=view, hosted=hosted, status=410 if view.expired else 200)


def _share_url(session: Any, order_id: int | None) -> str | None:
    """The buyer's referral link on the paid page (the order confirmation made the code)."""
    order = session.get(Order, order_id) if order_id is not None else None
    return reward_queries.share_url(session, order.customer_id, order.id) if order is not None else None


def _failed(session: Any, code: str, exc: ChannelDeskError, status: int = 422) -> Outcome:
    """A refusal: the link's own state decides what the customer sees (paid after all: the receipt)."""
    session.rollback()
    view, hosted = _view(session, code, open_it=False)
    if view.paid:
        return Outcome(redirect=_self(code, "already"))
    message = link_checkout.customer_message(exc)
    if view.checking or message.startswith(CHECKING):
        status = 409
    return Outcome(view=view, hosted=hosted, error=message, status=410 if view.expired else status)


def _approve_return(code: str, pg_token: str, attempt: str | None) -> Outcome:
    """KakaoPay's approval return (or a reload / replay of it): pay_link approves at most once."""
    with session_scope(render.engine()) as session:
        try:
            link_approval.pay_link(session, code, pg_token=pg_token, attempt=attempt)
        except NotFound:
            raise
        except ChannelDeskError as exc:
            return _failed(session, code, exc)
    return Outcome(redirect=_self(code))


def _gateway_return(code: str, result: str, attempt: str | None) -> Outcome:
    with session_scope(render.engine()) as session:
        try:
            link = link_checkout.return_from_gateway(session, code, result, attempt=attempt)
        except NotFound:
            raise
        except ChannelDeskError as exc:
            return _failed(session, code, exc)
        if link.status == "paid":
            return Outcome(redirect=_self(code, "already"))
        discounts.release_discounts(session, link)  # the coupon and points are free again
    return Outcome(redirect=_self(code, result))


def _start(code: str, *, name: str | None, phone: str | None, method: str, mobile: bool,
           coupon: str = "", use_points: bool = False) -> Outcome:
    """The pay button: KakaoPay readies and we send the customer to its page; the sandbox pays here.

    A coupon or points are held on the link first, in the transaction start_payment commits before
    it asks the gateway (for the reduced amount); a refusal rolls the hold back with everything."""
    with session_scope(render.engine()) as session:
        try:
            link = payment_links.get_link(session, code)
            if link.status == "paid":
                return Outcome(redirect=_self(code, "already"))
            hosted = link_checkout.is_hosted(session, link)
            discounts.apply_discounts(session, code, coupon_code=coupon, use_points=use_points,
                                           customer_phone=phone, now=clock.now())
            start = link_checkout.start_payment(session, code, customer_name=name, customer_phone=phone)
            if hosted:
                target = (start.redirect_mobile_url if mobile else None) or start.redirect_pc_url
                parts = urlsplit(target or "")
                if parts.scheme not in ("https", "http") or not parts.netloc:
                    return _failed(session, code, ChannelDeskError(link_checkout.GATEWAY_TROUBLE), 502)
                return Outcome(redirect=target)
            token = link_checkout.select_method(session, code, method, tid=start.tid)
            link_approval.pay_link(session, code, pg_token=token, attempt=start.attempt)
        except NotFound:
            raise
        except ChannelDeskError as exc:
            return _failed(session, code, exc)
    return Outcome(redirect=_self(code))


def _quit(code: str) -> Outcome:
    with session_scope(render.engine()) as session:
        try:
            link = link_checkout.quit_link(session, code)
        except NotFound:
            raise
        except ChannelDeskError as exc:
            return _failed(session, code, exc)
        if link.status == "paid":
            return Outcome(redirect=_self(code, "already"))
        discounts.release_discounts(session, link)
    return Outcome(redirect=_self(code, "cancel"))


# ------------------------------------------------------------------ HTTP

def _checkout(request: Request, outcome: Outcome, *, notice: tuple[str, str] | None = None,
              name: str = "", phone: str = "", coupon: str = "") -> Response:
    view = outcome.view
    assert view is not None
    if outcome.error:
        notice = ("error" if outcome.status != 409 else "info", outcome.error)
    if view.paid:
        title = "결제 완료"
    elif view.expired:
        title = "만료된 결제 링크"
    else:
        title = "결제하기"
    payable = not (view.paid or view.expired or view.checking)
    context = dict(
        title=title, view=view, notice=notice, payable=payable, hosted=outcome.hosted, methods=METHODS,
        krw=format_krw, kst=clock.format_kst, name=name[:64], phone=phone[:32], self_url=_self(view.code),
        coupon=(coupon or view.coupon_code or "")[:32], share_url=outcome.share_url if view.paid else None,
    )
    if payable:
        return render.form_page(request, "pay.html", purpose=f"pay:{view.code}", status=outcome.status, **context)
    if context["share_url"]:  # 결제 완료 with 추천하기: the share button's one inline script may run
        nonce = secrets.token_urlsafe(16)
        return render.allow_script(render.page("pay.html", status=outcome.status, script_nonce=nonce, **context), nonce)
    return render.page("pay.html", status=outcome.status, **context)


def _not_found() -> Response:
    return render.message_page("결제 링크를 찾을 수 없습니다", "없는 결제 링크입니다. 받은 링크를 다시 확인해 주세요.",
                               status=404, tone="error")


def _bad_link() -> Response:
    return render.message_page("결제 링크 오류", BAD_LINK, status=400, tone="error")


async def pay(request: Request) -> Response:
    if request.method == "POST":
        return await _post(request)
    params = request.query_params
    code = params.get("link", "")
    if not valid_code(code):
        return _bad_link()
    result = params.get("result", "")
    attempt = params.get("attempt") or None
    if attempt is not None and (len(attempt) > 64 or not attempt.replace("-", "").replace("_", "").isalnum()):
        return _bad_link()
    try:
        if result == "ok":
            outcome = await run_in_threadpool(_approve_return, code, params.get("pg_token", ""), attempt)
        elif result in ("cancel", "fail"):
            outcome = await run_in_threadpool(_gateway_return, code, result, attempt)
        else:
            outcome = await run_in_threadpool(_show, code, open_it=params.get("notice") not in NOTICES)
    except NotFound:
        return _not_found()
    if outcome.redirect:
        return _see_other(outcome.redirect)
    return _checkout(request, outcome, notice=NOTICES.get(params.get("notice", "")))


async def _post(request: Request) -> Response:
    try:
        form = await render.read_form(request, max_bytes=16 * 1024)
    except render.FormTooBig:
        return render.message_page("결제 요청 오류", "요청이 너무 큽니다. 결제 페이지를 다시 열어 주세요.",
                                   status=413, tone="error")
    code = form.get("link", "")
    if not valid_code(code):
        return _bad_link()
    if not render.csrf_ok(request, form, f"pay:{code}"):
        return render.message_page(
            "결제 페이지를 다시 열어 주세요",
            "보안 확인이 끝나지 않아 결제를 진행하지 않았습니다. 아래 버튼으로 결제 페이지를 다시 열어 주세요.",
            status=403, tone="error", back_url=_self(code), back_label="결제 페이지 다시 열기",
        )
    action = form.get("action", "pay")
    try:
        if action == "quit":
            outcome = await run_in_threadpool(_quit, code)
        elif action == "pay":
            method = form.get("method", "MONEY")
            if method not in METHODS:
                method = "MONEY"
            agent = request.headers.get("user-agent", "").lower()
            outcome = await run_in_threadpool(
                _start, code, name=form.get("name"), phone=form.get("phone"), method=method,
                mobile=any(word in agent for word in MOBILE_WORDS),
                coupon=form.get("coupon", "")[:64], use_points=form.get("points") == "1",
            )
        else:
            return _bad_link()
    except NotFound:
        return _not_found()
    if outcome.redirect:
        return _see_other(outcome.redirect)
    return _checkout(request, outcome, name=form.get("name", ""), phone=form.get("phone", ""),
                     coupon=form.get("coupon", ""))
