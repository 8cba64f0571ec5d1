"""Pure rules of the 문의 desk: macro rendering (tables of cases) and look-alike payments."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.inquiries import macros
from core.inquiries.panel import look_alikes
from core.models import Payment
from tests.inquiry_helpers import k

HTML_NAME = "<script>alert(1)</script><b>김</b>"
EMOJI_NAME = "민지😡🙏👩‍👩‍👧"


@pytest.mark.parametrize(
    ("body", "values", "text", "missing"),
    [
        ("#{고객명}님 안녕하세요", {"고객명": "김민지"}, "김민지님 안녕하세요", ()),
        # Customer text goes in as typed: HTML and emoji (incl. ZWJ sequences) untouched.
        ("#{고객명}님", {"고객명": HTML_NAME}, f"{HTML_NAME}님", ()),
        ("#{고객명}님", {"고객명": EMOJI_NAME}, f"{EMOJI_NAME}님", ()),
        # One pass: a value that looks like a variable is never expanded again.
        ("#{고객명}님, #{주문번호}", {"고객명": "#{주문번호}", "주문번호": "A-1"}, "#{주문번호}님, A-1", ()),
        # No value, an empty value, an unknown name: left as typed and listed (each once).
        ("주문 #{주문번호} · #{주문번호}", {}, "주문 #{주문번호} · #{주문번호}", ("주문번호",)),
        ("#{환불금액} 환불", {"환불금액": ""}, "#{환불금액} 환불", ("환불금액",)),
        ("#{환불금액} 환불", {"환불금액": None}, "#{환불금액} 환불", ("환불금액",)),
        ("#{없는변수}", {"고객명": "김"}, "#{없는변수}", ("없는변수",)),
        ("#{고객명} #{주문번호} #{환불금액}", {"고객명": "김", "환불금액": "39,000원"}, "김 #{주문번호} 39,000원", ("주문번호",)),
        # Not variables: no braces, an empty name, a line break inside, over 20 characters.
        ("#고객명 #{} #{고객\n명}", {"고객명": "김"}, "#고객명 #{} #{고객\n명}", ()),
        ("#{" + "가" * 21 + "}", {}, "#{" + "가" * 21 + "}", ()),
        ("{고객명} ${고객명} ##{고객명}", {"고객명": "김"}, "{고객명} ${고객명} #김", ()),
        ("", {"고객명": "김"}, "", ()),
    ],
)
def test_render_fills_in_one_pass_and_lists_what_is_missing(
    body: str, values: dict[str, str | None], text: str, missing: tuple[str, ...]
) -> None:
    rendered = macros.render(body, values)
    assert rendered.text == text
    assert rendered.missing == missing
    # Whatever is missing is stopped at the send (unfilled); so is a value that looks like a variable.
    assert {f"#{{{name}}}" for name in missing if len(name) <= 20} <= set(macros.unfilled(rendered.text))


def test_render_a_100k_value_and_a_100k_body() -> None:
    long_name = "가" * 100_000
    assert macros.render("#{고객명}님", {"고객명": long_name}).text == long_name + "님"
    body = "#{고객명} " * 20_000
    rendered = macros.render(body, {"고객명": "김"})
    assert rendered.text == "김 " * 20_000 and rendered.missing == ()


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("감사합니다", []),
        ("#{주문번호} 확인", ["#{주문번호}"]),
        ("#{주문번호} #{주문번호} #{환불금액}", ["#{주문번호}", "#{환불금액}"]),
        ("이메일 a#b.com, 해시태그 #이벤트, 중괄호 {x}", []),
        ("#{}", []),
    ],
)
def test_unfilled_finds_every_raw_variable(text: str, left: list[str]) -> None:
    assert macros.unfilled(text) == left


@pytest.mark.parametrize(
    ("current", "addition", "result"),
    [
        ("", "안녕하세요", "안녕하세요"),
        ("   \n", "안녕하세요", "안녕하세요"),
        ("확인했습니다", "감사합니다", "확인했습니다\n감사합니다"),
        ("확인했습니다\n\n", "감사합니다", "확인했습니다\n감사합니다"),
    ],
)
def test_insert_appends_never_replaces(current: str, addition: str, result: str) -> None:
    assert macros.insert(current, addition) == result


@pytest.mark.parametrize(
    ("title", "body", "types", "error"),
    [
        ("", "내용", [], "이름"),
        ("가" * 41, "내용", [], "이름"),
        ("인사", "   ", [], "내용"),
        ("인사", "가" * 2001, [], "내용"),
        ("인사", "#{고객이름}님", [], "알 수 없는 변수"),
        ("인사", "안녕하세요", ["vip"], "알 수 없는 문의 유형"),
    ],
)
def test_macro_checks(title: str, body: str, types: list[str], error: str) -> None:
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match=error):
        macros._check(title, body, types)


def test_every_default_macro_uses_known_variables_only() -> None:
    for macro in macros.DEFAULT_MACROS:
        macros._check(macro.title, macro.body, list(macro.types))


# --------------------------------------------------------------------------- look-alike payments

WINDOW = timedelta(minutes=10)
T0 = k("2026-11-23 09:00")


def _p(pid: int, amount: int, minutes: float, order: int | None = None, status: str = "approved") -> Payment:
    return Payment(
        id=pid,
        order_id=order,
        customer_id=1,
        gateway="sandbox",
        amount=amount,
        status=status,
        idempotency_key=f"k{pid}",
        approved_at=T0 + timedelta(minutes=minutes),
    )


@pytest.mark.parametrize(
    ("payments", "pairs"),
    [
        ([_p(1, 39000, 0), _p(2, 39000, 3)], [(1, 2, "same_amount")]),
        ([_p(1, 39000, 0), _p(2, 39000, 10)], [(1, 2, "same_amount")]),  # exactly the window: inside
        ([_p(1, 39000, 0), _p(2, 39000, 10 + 1 / 60)], []),  # one second over
        ([_p(1, 39000, 0), _p(2, 39001, 1)], []),  # another amount
        ([_p(1, 39000, 0, order=7), _p(2, 12000, 600, order=7)], [(1, 2, "same_order")]),  # same order, any gap
        ([_p(1, 39000, 0), _p(2, 39000, 1, status="failed")], []),  # a failed one took no money
        ([_p(1, 39000, 0), _p(2, 39000, 1, status="ready")], []),
        ([_p(1, 39000, 0), _p(2, 39000, 1, status="refunded")], [(1, 2, "same_amount")]),  # shown as done
        # A run of three: the earliest is kept, both later ones pair with it.
        ([_p(3, 39000, 4), _p(1, 39000, 0), _p(2, 39000, 2)], [(1, 2, "same_amount"), (1, 3, "same_amount")]),
        # After the window a new run starts.
        ([_p(1, 39000, 0), _p(2, 39000, 30), _p(3, 39000, 35)], [(2, 3, "same_amount")]),
        ([], []),
    ],
)
def test_look_alikes(payments: list[Payment], pairs: list[tuple[int, int, str]]) -> None:
    found = look_alikes(payments, WINDOW)
    assert [(p.original_id, p.later_id, p.rule) for p in found] == pairs
