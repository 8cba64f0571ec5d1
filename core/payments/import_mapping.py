"""Column mapping of an order import: which column of a shop's export holds which field.

A marketplace export (스마트스토어센터, 카페24, a spreadsheet) names its columns its own way. A
mapping is `{field: header text}`; `suggest(header)` proposes one from Korean and English header
names ('구매자연락처' → customer_phone, 'Quantity' → quantity), the person corrects it on the
주문 page, and saves it under a name (`save`) to reuse next time (`load`, the CLI's `--mapping`).

Saved mappings live in the settings store under one key (`import.mappings`), a JSON object
`{name: {field: header}}`; saving is open to everyone who may import (owner, CS, staff) and is
audited, like every other write.

Header names are compared after NFKC, lower case and with spaces, underscores, dots and brackets
removed, so '구매자 연락처', 'Customer_Phone' and '상품가격(원)' match their field.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.errors import ValidationFailed
from core.models import Role, Setting

SETTING_KEY = "import.mappings"
MAX_NAME = 40
MAX_MAPPINGS = 50


@dataclass(frozen=True)
class ImportField:
    key: str
    label: str  # the Korean name shown on screen
    aliases: tuple[str, ...]  # header names it is suggested for (Korean and English)
    required: bool = False
    help: str = ""


FIELDS: tuple[ImportField, ...] = (
    ImportField("order_number", "주문번호", ("주문번호", "order_number", "order number", "order no", "order id",
                                          "invoice", "invoiceno", "invoice no"), True,
                "같은 주문번호의 줄은 한 주문의 상품들입니다"),
    ImportField("line_number", "상품주문번호", ("상품주문번호", "주문상품번호", "line_number", "line no",
                                            "order item id", "order_line"), help="줄마다 다른 번호 (있으면)"),
    ImportField("ordered_at", "주문일시", ("주문일시", "주문일", "주문일자", "ordered_at", "order date",
                                        "invoicedate", "invoice date", "date"), True),
    ImportField("paid_at", "결제일시", ("결제일시", "결제일", "결제완료일", "paid_at", "payment date", "paid date"),
                help="없으면 주문일시"),
    ImportField("customer_name", "구매자명", ("구매자명", "고객명", "주문자명", "주문자", "구매자", "이름",
                                          "customer_name", "customer", "buyer", "buyer name", "customerid",
                                          "customer id"), True),
    ImportField("customer_phone", "구매자연락처", ("구매자연락처", "연락처", "전화번호", "휴대폰", "휴대폰번호",
                                             "주문자연락처", "구매자전화번호", "customer_phone", "phone",
                                             "mobile"), help="고객은 연락처로 찾습니다"),
    ImportField("product_code", "상품번호", ("상품번호", "상품코드", "판매자상품코드", "product_code", "sku",
                                         "stockcode", "stock code", "product id", "item code"),
                help="상품을 이 번호로 찾고, 없으면 상품명으로 찾습니다"),
    ImportField("product_name", "상품명", ("상품명", "product_name", "product", "description", "item",
                                        "item name"), True),
    ImportField("quantity", "수량", ("수량", "quantity", "qty"), True),
    ImportField("unit_price", "상품가격", ("상품가격", "단가", "가격", "판매가", "unit_price", "price",
                                        "unitprice", "unit price"), True, "음수면 할인 줄"),
    ImportField("line_amount", "결제금액", ("결제금액", "최종상품별총주문금액", "상품별총주문금액", "주문금액",
                                         "line_amount", "amount", "line total", "paid amount"),
                help="이 줄에 실제로 결제한 금액 (없으면 수량×상품가격)"),
    ImportField("tax_free_amount", "면세금액", ("면세금액", "tax_free_amount", "tax free")),
    ImportField("payment_method", "결제수단", ("결제수단", "결제방법", "payment_method", "payment method", "method")),
    ImportField("status", "주문상태", ("주문상태", "상태", "클레임상태", "status", "order status")),
    ImportField("refunded_amount", "환불금액", ("환불금액", "취소금액", "환불액", "refunded_amount",
                                           "refund amount", "refund")),
    ImportField("refunded_at", "환불일시", ("환불일시", "환불완료일", "취소일시", "취소완료일", "refunded_at",
                                         "refund date")),
    ImportField("original_order_number", "원주문번호", ("원주문번호", "원래주문번호", "original_order_number",
                                                   "original order", "refers to"),
                help="취소·환불 행: 환불할 원래 주문의 번호"),
)
FIELD_OF = {f.key: f for f in FIELDS}
REQUIRED = tuple(f.key for f in FIELDS if f.required)

_NOISE = re.compile(r"[\s_\-./()\[\]{}]+")


def normalise(header: str) -> str:
    """'구매자 연락처' → '구매자연락처', 'Customer_Phone' → 'customerphone', '상품가격(원)' → '상품가격원'."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", str(header or "")).lower())


_ALIAS_OF = {normalise(alias): f.key for f in FIELDS for alias in (f.key, *f.aliases)}


def suggest(header: list[str]) -> dict[str, str]:
    """{field: header} for the headers that name a field; each header and each field used once.

    An exact (normalised) name wins; then a header that ends with a known name ('상품가격(원)' is
    tried as '상품가격원' first, then its text before the bracket)."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for text in header:
        key = _ALIAS_OF.get(normalise(text))
        if key is None:
            key = _ALIAS_OF.get(normalise(re.split(r"[(\[]", str(text or ""))[0]))
        if key and key not in mapping and text not in used:
            mapping[key] = text
            used.add(text)
    return mapping


def check(mapping: dict[str, str], header: list[str]) -> list[str]:
    """What is wrong with a mapping for this header (Korean sentences); empty when usable."""
    problems = [f"필수 항목 '{FIELD_OF[k].label}'에 열을 정하세요" for k in REQUIRED if not mapping.get(k)]
    present = set(header)
    for key, column in mapping.items():
        if key not in FIELD_OF:
            problems.append(f"알 수 없는 항목입니다: {key}")
        elif column and column not in present:
            problems.append(f"'{FIELD_OF[key].label}'의 열 '{column}'이(가) 파일에 없습니다")
    seen: dict[str, str] = {}
    for key, column in mapping.items():
        if column and column in seen and key in FIELD_OF and seen[column] in FIELD_OF:
            problems.append(f"열 '{column}'을(를) '{FIELD_OF[seen[column]].label}'과(와) "
                            f"'{FIELD_OF[key].label}'에 함께 쓸 수 없습니다")
        seen.setdefault(column, key)
    return problems


def saved(session: Session) -> dict[str, dict[str, str]]:
    """Every saved mapping by name."""
    row = session.get(Setting, SETTING_KEY)
    value = None if row is None else row.value
    return dict(value) if isinstance(value, dict) else {}


def load(session: Session, name: str) -> dict[str, str]:
    """A saved mapping; ValidationFailed naming the saved ones when there is none by that name."""
    mappings = saved(session)
    if name not in mappings:
        known = ", ".join(sorted(mappings)) or "없음"
        raise ValidationFailed(f"저장된 열 매핑 '{name}'이(가) 없습니다 (저장된 매핑: {known})")
    return dict(mappings[name])


def save(session: Session, actor: Actor, name: str, mapping: dict[str, str]) -> None:
    """Save (or replace) a mapping under a name; audited."""
    require_role(actor, Role.OWNER, Role.CS, Role.STAFF)
    name = unicodedata.normalize("NFKC", name).strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationFailed(f"매핑 이름은 1~{MAX_NAME}자여야 합니다")
    clean = {key: str(column) for key, column in mapping.items() if key in FIELD_OF and column}
    missing = [FIELD_OF[k].label for k in REQUIRED if k not in clean]
    if missing:
        raise ValidationFailed(f"필수 항목의 열을 정하세요: {', '.join(missing)}")
    if any(len(column) > 200 for column in clean.values()):
        raise ValidationFailed("열 이름이 너무 깁니다 (200자까지)")
    row = session.get(Setting, SETTING_KEY)
    current: dict[str, Any] = dict(row.value) if row is not None and isinstance(row.value, dict) else {}
    if name not in current and len(current) >= MAX_MAPPINGS:
        raise ValidationFailed(f"매핑은 {MAX_MAPPINGS}개까지 저장할 수 있습니다")
    old = current.get(name)
    current[name] = clean
    if row is None:
        row = Setting(key=SETTING_KEY)
    row.value = current
    row.updated_at = clock.now()
    row.updated_by = actor.id
    session.add(row)
    audit.record(session, actor, "import.mapping.save", "setting", SETTING_KEY, name=name, old=old, new=clean)
