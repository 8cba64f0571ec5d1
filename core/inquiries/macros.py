"""Saved replies (매크로): short answers staff insert into the reply box with one click.

Semantics every caller and test relies on:

- A macro is a title, a body and the inquiry types it is offered for (empty: every type). The list
  lives in settings_store key "inquiry_macros" (owner-editable, every change audited there).
- A body may name variables as `#{고객명}`; `VARIABLES` lists them. `render` replaces each in ONE
  pass, so a value that itself contains `#{...}` (a customer who calls themself "#{주문번호}") is
  inserted as typed and never expanded again. Values are plain text: HTML and emoji stay as typed
  (the reply is an AlimTalk text, never HTML).
- A variable without a value (no order on the inquiry, nothing refunded yet) or an unknown name stays
  in the text as `#{이름}` and is listed in `Rendered.missing`, so the page shows it clearly; and
  `unfilled` finds any `#{...}` left in a reply, which `service.reply` refuses to send: a customer
  never receives a raw `#{...}`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from core import settings_store
from core.accounts.actor import Actor, require_role
from core.errors import ValidationFailed
from core.models import Customer, Inquiry, InquiryEvent, InquiryType, Order, Payment, Role
from core.money import format_krw
from core.payments.checkout import refund_policy

SETTING_KEY = "inquiry_macros"
MAX_MACROS = 100
MAX_TITLE = 40
MAX_BODY = 2_000

# Variable name → what it is filled with (shown to the owner who writes macros).
VARIABLES: dict[str, str] = {
    "고객명": "문의한 고객의 이름",
    "문의번호": "문의 번호",
    "주문번호": "문의의 주문 번호 (문의에 주문이 없고 고객 주문이 한 건뿐이면 그 주문)",
    "결제금액": "문의의 결제 금액 (예: 39,000원)",
    "환불금액": "이 문의에서 환불한 금액의 합 (예: 39,000원)",
    "담당자": "답변하는 직원의 이름",
    "환불정책": "설정에 쓴 가게의 교환·환불 안내",
}

# `#{name}`: any name up to 20 characters without braces or line breaks.
PLACEHOLDER = re.compile(r"#\{([^{}\r\n]{1,20})\}")


@dataclass(frozen=True)
class Macro:
    id: str
    title: str
    body: str
    types: tuple[str, ...] = ()  # empty: offered for every type

    def offered_for(self, inquiry_type: str) -> bool:
        return not self.types or inquiry_type in self.types


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...] = field(default=())  # variable names left as #{name}, in order of appearance


DEFAULT_MACROS: tuple[Macro, ...] = (
    Macro(
        "default-greeting",
        "첫 인사",
        "#{고객명}님, 안녕하세요. 문의 주셔서 감사합니다. 확인 후 바로 안내드리겠습니다.",
    ),
    Macro(
        "default-double",
        "이중 결제 환불 안내",
        "#{고객명}님, 주문 #{주문번호}의 결제가 두 번 승인된 것을 확인하여 #{환불금액}을 환불했습니다. "
        "카드사에 따라 반영까지 3~7영업일이 걸릴 수 있습니다. 불편을 드려 죄송합니다.",
        (InquiryType.DOUBLE_CHARGE.value,),
    ),
    Macro(
        "default-refund",
        "환불 완료 안내",
        "#{고객명}님, 요청하신 주문 #{주문번호}의 #{환불금액} 환불을 처리했습니다. "
        "카드사에 따라 반영까지 3~7영업일이 걸릴 수 있습니다.",
        (InquiryType.REFUND_REQUEST.value,),
    ),
    Macro(
        "default-refund-policy",
        "교환·환불 정책 안내",
        "#{고객명}님, 저희 교환·환불 안내를 드립니다.\n#{환불정책}",
        (InquiryType.REFUND_REQUEST.value,),
    ),
    Macro(
        "default-error",
        "결제 오류 확인 중",
        "#{고객명}님, 결제 오류로 불편을 드려 죄송합니다. 결제 내역을 확인하고 있으니 잠시만 기다려 주세요.",
        (InquiryType.PAYMENT_ERROR.value,),
    ),
    Macro(
        "default-receipt",
        "영수증 발송 안내",
        "#{고객명}님, 주문 #{주문번호}(#{결제금액})의 전자 영수증을 카카오톡으로 보내드렸습니다.",
        (InquiryType.RECEIPT_REQUEST.value,),
    ),
)


# --------------------------------------------------------------------------- pure rules


def render(body: str, values: dict[str, str | None]) -> Rendered:
    """Fill `#{name}` from `values` in one pass; a name without a (non-empty) value stays as typed.

    >>> render("#{고객명}님, #{주문번호}", {"고객명": "김민지"})
    Rendered(text='김민지님, #{주문번호}', missing=('주문번호',))
    """
    missing: list[str] = []

    def _fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None or value == "":
            if name not in missing:
                missing.append(name)
            return match.group(0)
        return value

    return Rendered(PLACEHOLDER.sub(_fill, body), tuple(missing))


def unfilled(text: str) -> list[str]:
    """Every `#{...}` left in a reply (each name once), which must never reach a customer."""
    seen: list[str] = []
    for match in PLACEHOLDER.finditer(text or ""):
        if match.group(0) not in seen:
            seen.append(match.group(0))
    return seen


def insert(current: str, addition: str) -> str:
    """The reply box after a macro is inserted: appended on a new line, never replacing what is typed."""
    if not current.strip():
        return addition
    return current.rstrip("\n") + "\n" + addition


def _check(title: str, body: str, types: list[str] | tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise ValidationFailed(f"매크로 이름은 1~{MAX_TITLE}자로 입력하세요")
    if not (body or "").strip() or len(body) > MAX_BODY:
        raise ValidationFailed(f"매크로 내용은 1~{MAX_BODY:,}자로 입력하세요")
    unknown = [m.group(1) for m in PLACEHOLDER.finditer(body) if m.group(1) not in VARIABLES]
    if unknown:
        names = ", ".join(f"#{{{n}}}" for n in dict.fromkeys(unknown))
        raise ValidationFailed(f"알 수 없는 변수입니다: {names} (쓸 수 있는 변수: {', '.join(VARIABLES)})")
    valid = {t.value for t in InquiryType}
    bad = [t for t in types if t not in valid]
    if bad:
        raise ValidationFailed(f"알 수 없는 문의 유형입니다: {bad[0]!r}")
    return title, body, tuple(dict.fromkeys(types))


# --------------------------------------------------------------------------- store


def _from_json(value: Any) -> Macro | None:
    if not isinstance(value, dict):
        return None
    try:
        return Macro(str(value["id"]), str(value["title"]), str(value["body"]), tuple(value.get("types") or ()))
    except KeyError:
        return None


def _to_json(macro: Macro) -> dict[str, Any]:
    return {"id": macro.id, "title": macro.title, "body": macro.body, "types": list(macro.types)}


def load(session: Session) -> list[Macro]:
    """The shop's macros (the defaults until the owner saves a list of their own)."""
    stored = settings_store.get(session, SETTING_KEY)
    if stored is None:
        return list(DEFAULT_MACROS)
    return [m for m in (_from_json(v) for v in stored) if m is not None]


def for_type(session: Session, inquiry_type: str) -> list[Macro]:
    return [m for m in load(session) if m.offered_for(inquiry_type)]


def save(
    session: Session,
    actor: Actor,
    *,
    title: str,
    body: str,
    types: list[str] | tuple[str, ...] = (),
    macro_id: str | None = None,
) -> Macro:
    """Add a macro, or change the one with `macro_id` (owner only; audited as a setting change)."""
    require_role(actor, Role.OWNER)
    title, body, chosen = _check(title, body, types)
    macros = load(session)
    if macro_id is None:
        if len(macros) >= MAX_MACROS:
            raise ValidationFailed(f"매크로는 {MAX_MACROS}개까지 저장할 수 있습니다")
        macro = Macro(uuid.uuid4().hex[:12], title, body, chosen)
        macros.append(macro)
    else:
        if not any(m.id == macro_id for m in macros):
            raise ValidationFailed("매크로를 찾을 수 없습니다 (다른 사람이 지웠을 수 있습니다)")
        macro = Macro(macro_id, title, body, chosen)
        macros = [macro if m.id == macro_id else m for m in macros]
    settings_store.put(session, actor, SETTING_KEY, [_to_json(m) for m in macros])
    return macro


def delete(session: Session, actor: Actor, macro_id: str) -> None:
    """Remove one macro (owner only; audited)."""
    require_role(actor, Role.OWNER)
    macros = load(session)
    if not any(m.id == macro_id for m in macros):
        raise ValidationFailed("매크로를 찾을 수 없습니다 (다른 사람이 지웠을 수 있습니다)")
    settings_store.put(session, actor, SETTING_KEY, [_to_json(m) for m in macros if m.id != macro_id])


# --------------------------------------------------------------------------- values


def values_for(session: Session, inquiry_id: int, actor: Actor) -> dict[str, str | None]:
    """The variables of one inquiry, read from its customer, order, payment and refunds (None: no value)."""
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise ValidationFailed(f"문의를 찾을 수 없습니다 (#{inquiry_id})")
    customer = session.get(Customer, inquiry.customer_id)
    payment = session.get(Payment, inquiry.payment_id) if inquiry.payment_id else None
    order_id = inquiry.order_id or (payment.order_id if payment else None)
    order = session.get(Order, order_id) if order_id else None
    if order is None:
        # Only when there is no doubt which order the customer means: their one and only order.
        only = session.exec(select(Order).where(Order.customer_id == inquiry.customer_id).limit(2)).all()
        order = only[0] if len(only) == 1 else None
    refunded = sum(
        int((e.detail or {}).get("amount") or 0)
        for e in session.exec(
            select(InquiryEvent).where(InquiryEvent.inquiry_id == inquiry.id, col(InquiryEvent.kind) == "refund")
        ).all()
    )
    paid = payment.amount if payment else (order.total_amount if order else None)
    return {
        "고객명": customer.name if customer and customer.name else None,
        "문의번호": str(inquiry.id),
        "주문번호": order.order_number if order else None,
        "결제금액": format_krw(paid) if paid else None,
        "환불금액": format_krw(refunded) if refunded else None,
        "담당자": actor.name or None,
        "환불정책": refund_policy(session),
    }
