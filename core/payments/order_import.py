"""Import orders from a shop's export (CSV or XLSX): one row per order line, validated whole, then
written all or nothing.

Fields (core.payments.import_mapping.FIELDS; a column mapping says which column holds which, and
without one the header names are matched, Korean or English):

| field | 한국어 | required | meaning |
|---|---|---|---|
| order_number | 주문번호 | yes | lines with the same number are one order with several items |
| line_number | 상품주문번호 | no | the line's own number (keys its refund; two lines may not share one) |
| ordered_at / paid_at | 주문일시 / 결제일시 | ordered_at | KST when no offset; paid_at defaults to ordered_at |
| customer_name / customer_phone | 구매자명 / 구매자연락처 | name | customers are matched by phone |
| product_code / product_name | 상품번호 / 상품명 | name | products are matched by code, then exact name, else created |
| quantity / unit_price | 수량 / 상품가격 | yes | 1..10000; whole won |
| line_amount | 결제금액 | no | what the line cost after discounts (default quantity × price) |
| tax_free_amount | 면세금액 | no | of the line |
| payment_method | 결제수단 | no | CARD / MONEY (카드, 카카오머니) |
| status | 주문상태 | no | paid (구매확정, 배송완료, …), refunded (환불완료, 반품완료), partially_refunded, canceled (취소완료) |
| refunded_amount / refunded_at | 환불금액 / 환불일시 | no | the line's refund |
| original_order_number | 원주문번호 | no | makes the row a refund row of that order (below) |

Rules, each refusing the whole file with the row numbers when broken:

- Order-level fields (주문일시, 결제일시, 구매자명, 구매자연락처, 결제수단) must be the same on every line of
  an order.
- One product code, one name (after NFKC and collapsing spaces), in the file and against the store.
  Products found by code, else by exact name (a product without a code then gets the file's code),
  else created (the summary lists them).
- quantity 0 or negative is refused (a return is a refund row, not a negative line).
- A negative 상품가격 (or 결제금액) is a discount line (쿠폰, 즉시할인): it is not an item; its amount is
  taken off the order and spread over the order's product lines in proportion to their amounts
  (the remainder won by won to the largest), so the items still add up to what was paid and 매출's
  product figures are net. A discount larger than the products of its order, or an order of
  discounts only, is refused.
- Refunds: a line refunded (환불완료) gives back its whole amount, a partially refunded line the
  환불금액 (less than the line); a line with only a 환불금액 is read the same way; a canceled line in
  an order whose other lines were paid is a refund of that line; an order whose every line is
  canceled was never paid (no payment, no refund). A refund row (원주문번호 filled; its own 주문번호
  or 상품주문번호, else its time and amount, keys it) adds a refund to that order, in the file or
  already imported. The refunds of an order may not exceed what was paid; a refund row for an
  order that is neither in the file nor imported before, or for an order paid here through a
  gateway (money goes back only through the gateway: 주문 → 환불), is refused.
- Idempotent: an order number already stored is skipped whole; refunds carry keys, so a refund
  already recorded is skipped and a refund that arrived later (a newer export, a refund row) is
  added to the stored order once.

Each refund is a refund row (reason "가져오기", completed at the refund time, tax-free part in
proportion), like a refund made here: 매출, segments, LTV and the order page all count it.

Reading (core.payments.import_source): UTF-8 with or without BOM, or CP949; XLSX by python-calamine;
rows are parsed as they are read; files over 50 MB are refused before reading.
"""

from __future__ import annotations

import gc
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from operator import itemgetter
from typing import Any

from sqlalchemy import ARRAY, Column, Engine, String, Table, any_, cast, insert, literal, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from core import analytics, clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers import service as customers
from core.customers import summary as customer_summary
from core.customers.identity import MAX_RAW_LENGTH
from core.db import analyze, session_scope
from core.errors import ValidationFailed
from core.models import (
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    Role,
)
from core.models.customers import _opaque_id
from core.payments import import_mapping, import_source
from core.payments.orders import MAX_AMOUNT

COLUMNS = {f.key: (f.key, f.label) for f in import_mapping.FIELDS}
REQUIRED = import_mapping.REQUIRED
IMPORT_REFUND_REASON = "가져오기"
METHODS = {
    "": None, "CARD": "CARD", "카드": "CARD", "신용카드": "CARD", "체크카드": "CARD",
    "MONEY": "MONEY", "카카오머니": "MONEY", "머니": "MONEY", "카카오페이": "MONEY",
}
PAID, REFUNDED, PARTIAL, CANCELED = "paid", "refunded", "partially_refunded", "canceled"
STATUSES = {
    "": "",
    "paid": PAID, "결제 완료": PAID, "결제완료": PAID, "구매확정": PAID, "구매 확정": PAID, "배송완료": PAID,
    "배송중": PAID, "배송준비": PAID, "발송대기": PAID, "발송완료": PAID, "배송 완료": PAID,
    "refunded": REFUNDED, "환불 완료": REFUNDED, "환불완료": REFUNDED, "반품완료": REFUNDED, "반품 완료": REFUNDED,
    "partially_refunded": PARTIAL, "partially refunded": PARTIAL, "부분 환불": PARTIAL, "부분환불": PARTIAL,
    "canceled": CANCELED, "cancelled": CANCELED, "취소": CANCELED, "취소완료": CANCELED, "취소 완료": CANCELED,
}
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y. %m. %d %H:%M",
    "%Y. %m. %d",
)
PAYMENT_STATUS_OF = {
    OrderStatus.PAID: PaymentStatus.APPROVED,
    OrderStatus.REFUNDED: PaymentStatus.REFUNDED,
    OrderStatus.PARTIALLY_REFUNDED: PaymentStatus.PARTIALLY_REFUNDED,
}
MAX_ERRORS_SHOWN = 200
CHUNK = 900  # IN-list size (SQLite allows 999 bound parameters per statement)
INSERT_CHUNK = 10_000
PG_LOOKUP_CHUNK = 20_000


@dataclass(frozen=True)
class RowError:
    row: int
    message: str

    def __str__(self) -> str:
        return f"{self.row}행: {self.message}"


class ImportRejected(ValidationFailed):
    """The file has errors; nothing was written. `errors` lists them by row number."""

    def __init__(self, errors: list[RowError]) -> None:
        errors = sorted(errors, key=lambda e: e.row)
        shown = "\n".join(str(e) for e in errors[:10])
        more = f"\n… 외 {len(errors) - 10}건" if len(errors) > 10 else ""
        super().__init__(
            f"가져오기 실패: {len(errors)}건의 오류, 아무것도 저장하지 않았습니다\n{shown}{more}"
        )
        self.errors = errors


@dataclass
class ImportResult:
    created: int = 0  # orders
    skipped_existing: int = 0
    customers_created: int = 0
    lines: int = 0  # items written
    refunds_created: int = 0
    refunds_skipped: int = 0  # already recorded (a re-import)
    products_created: list[str] = field(default_factory=list)
    products_matched: int = 0
    skipped_numbers: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)  # what run_import's rollup repair recomputed


@dataclass(slots=True)
class Line:
    """One product line of an order (amount: what it cost after the order's discounts)."""

    row: int
    order_number: str
    line_key: str
    product_code: str | None
    product_name: str
    quantity: int
    unit_price: int
    amount: int
    tax_free: int
    status: str
    refund_text: str
    refunded_at: datetime | None
    refunded: int = 0
    product_id: int | None = None


@dataclass(slots=True)
class RefundDraft:
    row: int
    order_number: str
    key: str
    amount: int
    at: datetime | None
    rows: tuple[int, ...] = ()


@dataclass(slots=True)
class OrderDraft:
    number: str
    row: int
    ordered_at: datetime
    paid_at: datetime
    customer_name: str
    customer_phone: str | None
    method: str | None
    lines: list[Line] = field(default_factory=list)
    discounts: list[tuple[int, int]] = field(default_factory=list)  # (row, won off)
    refunds: list[RefundDraft] = field(default_factory=list)
    total: int = 0
    tax_free: int = 0
    refunded: int = 0
    status: OrderStatus = OrderStatus.PAID


@dataclass
class ParsedFile:
    orders: dict[str, OrderDraft]
    refund_rows: list[RefundDraft]  # refund rows of orders not in the file (the store's)
    lines: int = 0


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then CP949; anything else is a clear error."""
    try:
        return data.decode(import_source.detect_encoding(data))
    except import_source.SourceError as exc:
        raise ImportRejected([RowError(1, str(exc))]) from exc


_INT_NOISE = str.maketrans("", "", ",원₩ ")
_SPACES = re.compile(r"\s+")


def _int(text: str, label: str, *, low: int, high: int) -> int:
    if text.isascii() and text.isdigit() and len(text) < 16:  # the common case, at 300,000 calls a file
        value = int(text)
        if low <= value <= high:
            return value
    cleaned = unicodedata.normalize("NFKC", text).translate(_INT_NOISE)
    if cleaned.endswith(".0"):  # a spreadsheet's whole number
        cleaned = cleaned[:-2]
    if not re.fullmatch(r"-?\d{1,15}", cleaned):
        raise ValueError(f"{label}은(는) 정수여야 합니다: {text[:40]!r}")
    value = int(cleaned)
    if not low <= value <= high:
        raise ValueError(f"{label}은(는) {low:,}~{high:,} 사이여야 합니다: {value:,}")
    return value


def _instant(text: str, cache: dict[str, datetime] | None = None) -> datetime:
    """An order time; spreadsheets repeat the same stamps a lot, so parsed values are memoised."""
    if cache is not None and text in cache:
        return cache[text]
    value = _parse_instant(text)
    if cache is not None:
        cache[text] = value
    return value


def _parse_instant(text: str, label: str = "주문일시") -> datetime:
    text = text.strip()
    try:  # fast path: 2026-11-01, 2026-11-01 14:30[:00], ISO-8601 with or without offset
        return clock.parse_instant(text)
    except ValueError:
        pass
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=clock.KST).astimezone(clock.UTC)
        except ValueError:
            continue
    raise ValueError(f"{label} 형식이 올바르지 않습니다: {text[:40]!r} (예: 2026-11-01 14:30)")


def _phone(text: str) -> str | None:
    """As given (bounded): core.customers.identity finds the person; a non-mobile is kept, never sent to."""
    return text.strip()[:MAX_RAW_LENGTH] or None


def _choice(text: str, choices: dict[str, Any]) -> tuple[bool, Any]:
    if text in choices:
        return True, choices[text]
    for key in (text, text.upper(), text.lower()):
        if key in choices:
            return True, choices[key]
    return False, None


def _same_name(name: str) -> str:
    """How two product names are compared: NFKC, spaces collapsed (memoised: names repeat)."""
    found = _NAMES.get(name)
    if found is None:
        found = _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip()
        if len(_NAMES) < 100_000:
            _NAMES[name] = found
    return found


_NAMES: dict[str, str] = {}


def _positions(header: list[str], mapping: dict[str, str] | None) -> dict[str, int]:
    mapping = import_mapping.suggest(header) if mapping is None else mapping
    problems = import_mapping.check(mapping, header)
    if problems:
        missing = [f"{k}({import_mapping.FIELD_OF[k].label})" for k in REQUIRED if not mapping.get(k)]
        if missing:
            problems = [f"필수 열이 없습니다: {', '.join(missing)}"] + [p for p in problems if "필수" not in p]
        raise ImportRejected([RowError(1, p) for p in problems])
    return {key: header.index(column) for key, column in mapping.items() if column}


def parse(data: bytes, mapping: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The product lines of a valid file as dicts (amounts after discounts), or ImportRejected."""
    parsed = parse_file(data, mapping)
    return [asdict(line) for order in parsed.orders.values() for line in order.lines]


def parse_file(data: bytes, mapping: dict[str, str] | None = None) -> ParsedFile:
    """Validate the whole file in one streamed pass; group lines into orders; raise ImportRejected
    with every row's errors."""
    try:
        table = import_source.open_table(data)
        return _parse(table, mapping)
    except import_source.SourceError as exc:
        raise ImportRejected([RowError(exc.row, str(exc))]) from exc


_ORDER_FIELDS = (
    ("ordered_at", "주문일시"),
    ("paid_at", "결제일시"),
    ("customer_name", "구매자명"),
    ("customer_phone", "구매자연락처"),
    ("method", "결제수단"),
)


def _parse(table: import_source.Table, mapping: dict[str, str] | None) -> ParsedFile:
    positions = _positions(table.header, mapping)
    keys = [f.key for f in import_mapping.FIELDS]
    where = [positions.get(key, -1) for key in keys]
    need = max(where) + 1
    pick = itemgetter(*where)  # -1: the "" appended to every row (a field the file does not have)
    strip = str.strip
    errors: list[RowError] = []
    orders: dict[str, OrderDraft] = {}
    refund_rows: list[RefundDraft] = []
    line_rows: dict[tuple[str, str], int] = {}
    code_names: dict[str, tuple[str, int]] = {}
    instants: dict[str, datetime] = {}
    count = 0
    for row_number, cells in table.rows:
        if len(cells) < need:
            cells.extend([""] * (need - len(cells)))
        cells.append("")
        cell = dict(zip(keys, map(strip, pick(cells)), strict=True))
        problems: list[str] = []
        try:
            if cell["original_order_number"]:
                refund_rows.append(_refund_row(row_number, cell, instants))
            else:
                count += _order_line(row_number, cell, orders, line_rows, code_names, instants, problems)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            errors += [RowError(row_number, problem) for problem in problems]
            if len(errors) >= MAX_ERRORS_SHOWN:
                break
    if len(errors) < MAX_ERRORS_SHOWN:  # every order's own checks too, so one pass names every row
        for order in orders.values():
            errors += _settle(order)
        refund_rows = _attach(orders, refund_rows, errors)
    if errors:
        raise ImportRejected(errors)
    if not orders and not refund_rows:
        raise ImportRejected([RowError(2, "가져올 주문이 없습니다")])
    return ParsedFile(orders, refund_rows, count)


def _order_line(
    row: int,
    cell: dict[str, str],
    orders: dict[str, OrderDraft],
    line_rows: dict[tuple[str, str], int],
    code_names: dict[str, tuple[str, int]],
    instants: dict[str, datetime],
    problems: list[str],
) -> int:
    """Check one line, add it (or its discount) to its order; returns 1 for a product line."""
    number = cell["order_number"]
    if not number or len(number) > 40:
        problems.append("주문번호는 1~40자여야 합니다")
    name = cell["customer_name"]
    if not name or len(name) > 64:
        problems.append("구매자명(고객명)은 1~64자여야 합니다")
    product = _same_name(cell["product_name"])
    code = cell["product_code"] or None
    if code is not None and len(code) > 64:
        problems.append("상품번호는 64자까지입니다")
    ordered_at = paid_at = None
    try:
        ordered_at = _instant(cell["ordered_at"], instants)
        paid_at = _instant(cell["paid_at"], instants) if cell["paid_at"] else ordered_at
        if paid_at < ordered_at:
            problems.append("결제일시가 주문일시보다 빠릅니다")
    except ValueError as exc:
        problems.append(str(exc))
    phone = None
    try:
        phone_text = cell["customer_phone"]
        phone = _PHONES[phone_text] if phone_text in _PHONES else _phone(phone_text)
        if len(_PHONES) < 100_000:
            _PHONES[phone_text] = phone
    except ValueError as exc:
        problems.append(str(exc))
    known, method = _choice(cell["payment_method"], METHODS)
    if not known:
        problems.append(f"결제수단은 CARD 또는 MONEY여야 합니다: {cell['payment_method'][:20]!r}")
    known, status = _choice(cell["status"], STATUSES)
    if not known:
        problems.append(
            f"상태는 paid, refunded, partially_refunded, canceled 중 하나여야 합니다: {cell['status'][:20]!r}"
        )
    amount = unit_price = quantity = 0
    try:
        quantity_text = cell["quantity"]
        quantity = _int(quantity_text, "수량", low=-10_000, high=10_000)
        if quantity <= 0:
            raise ValueError(
                "수량은 1~10,000이어야 합니다"
                + (" (반품·취소는 원주문번호를 적은 환불 행으로)" if quantity < 0 else f": {quantity}")
            )
        unit_price = _int(cell["unit_price"], "상품가격(단가)", low=-MAX_AMOUNT, high=MAX_AMOUNT)
        listed = quantity * unit_price
        if abs(listed) > MAX_AMOUNT:
            raise ValueError(f"주문 금액이 너무 큽니다: {listed:,}원")
        amount = (
            _int(cell["line_amount"], "결제금액", low=-MAX_AMOUNT, high=MAX_AMOUNT) if cell["line_amount"] else listed
        )
        if (amount < 0) != (unit_price < 0) and unit_price != 0:
            raise ValueError(f"결제금액({amount:,}원)과 상품가격({unit_price:,}원)의 부호가 다릅니다")
    except ValueError as exc:
        problems.append(str(exc))
    discount = amount < 0 or unit_price < 0
    if not product or len(product) > 120:
        problems.append("상품명은 1~120자여야 합니다")
    elif code is not None and not discount:
        seen = code_names.setdefault(code, (product, row))
        if seen[0] != product:
            problems.append(f"상품번호 {code}이(가) {seen[1]}행에서는 '{seen[0]}'입니다 (한 번호에 한 상품명)")
    line_key = cell["line_number"]
    if line_key:
        if len(line_key) > 40:
            problems.append("상품주문번호는 40자까지입니다")
        first = line_rows.setdefault((number, line_key), row)
        if first != row:
            problems.append(f"상품주문번호 {line_key}이(가) {first}행과 중복됩니다")
    tax_free = 0
    if cell["tax_free_amount"]:
        try:
            tax_free = _int(cell["tax_free_amount"], "면세금액", low=0, high=MAX_AMOUNT)
        except ValueError as exc:
            problems.append(str(exc))
    refunded_at = None
    if cell["refunded_at"]:
        try:
            refunded_at = _parse_instant(cell["refunded_at"], "환불일시")
        except ValueError as exc:
            problems.append(str(exc))
    if discount and (status not in ("", PAID) or cell["refunded_amount"] or tax_free):
        problems.append("할인 줄(음수 금액)에는 상태·환불금액·면세금액을 적을 수 없습니다")
    if problems or ordered_at is None or paid_at is None:
        return 0
    order = orders.get(number)
    values = (ordered_at, paid_at, name, phone, method)
    if order is None:
        order = orders[number] = OrderDraft(number, row, *values)
    else:
        for (attr, label), value in zip(_ORDER_FIELDS, values, strict=True):
            if getattr(order, attr) != value:
                problems.append(
                    f"주문번호 {number}의 {label}이(가) {order.row}행과 다릅니다 "
                    f"({_shown(getattr(order, attr))} ≠ {_shown(value)}): 한 주문의 줄은 주문 정보가 같아야 합니다"
                )
        if problems:
            return 0
    if discount:
        order.discounts.append((row, -amount))
        return 0
    if tax_free > amount:
        problems.append(f"면세금액({tax_free:,})이 주문 금액({amount:,})보다 큽니다")
        return 0
    key = line_key or str(len(order.lines) + 1)
    order.lines.append(
        Line(row, number, key, code, product, quantity, unit_price, amount, tax_free, status,
             cell["refunded_amount"], refunded_at)
    )
    return 1


_PHONES: dict[str, str | None] = {}  # phone text → stored form (exports repeat a buyer's phone on each line)


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return clock.to_kst(value).strftime("%Y-%m-%d %H:%M")
    return "(없음)" if value is None else str(value)[:30]


def _refund_row(row: int, cell: dict[str, str], instants: dict[str, datetime]) -> RefundDraft:
    """A cancellation or refund row: 원주문번호, 환불금액 and a time (환불일시, else 주문일시)."""
    original = cell["original_order_number"]
    if len(original) > 40:
        raise ValueError("원주문번호는 40자까지입니다")
    if not cell["refunded_amount"]:
        raise ValueError("환불 행(원주문번호가 있는 행)에는 환불금액이 필요합니다")
    amount = abs(_int(cell["refunded_amount"], "환불금액", low=-MAX_AMOUNT, high=MAX_AMOUNT))
    if amount == 0:
        raise ValueError("환불금액은 1원 이상이어야 합니다")
    when_text = cell["refunded_at"] or cell["ordered_at"]
    if not when_text:
        raise ValueError("환불 행에는 환불일시(또는 주문일시)가 필요합니다")
    at = _parse_instant(when_text, "환불일시") if cell["refunded_at"] else _instant(when_text, instants)
    own = cell["line_number"] or (cell["order_number"] if cell["order_number"] != original else "")
    tag = own[:40] if own else f"{at.strftime('%Y%m%d%H%M%S')}:{amount}"
    return RefundDraft(row, original, f"import:{original}:refund:row:{tag}", amount, at, (row,))


def _line_refund(order: OrderDraft, line: Line) -> int:
    """The line's refund from its status and 환불금액 (checked against the line's amount after
    discounts). Raises ValueError."""
    text, status = line.refund_text, line.status
    amount = _int(text, "환불금액", low=0, high=MAX_AMOUNT) if text else None
    if status == PAID:
        if amount:
            raise ValueError("환불금액은 환불 또는 부분 환불 주문에만 적을 수 있습니다")
        return 0
    if status == "":
        if not amount:
            return 0
        status = REFUNDED if amount == line.amount else PARTIAL
    if status in (REFUNDED, CANCELED):
        if amount is not None and amount != line.amount and not (status == CANCELED and amount == 0):
            raise ValueError(
                f"환불 완료 주문의 환불금액({amount:,}원)은 주문 금액({line.amount:,}원)과 같아야 합니다"
            )
        return line.amount
    if amount is None:
        raise ValueError("부분 환불 주문에는 환불금액이 필요합니다")
    if amount < 1:
        raise ValueError(f"환불금액은 1~{MAX_AMOUNT:,} 사이여야 합니다: {amount:,}")
    if amount > line.amount or (amount == line.amount and len(order.lines) == 1):
        raise ValueError(f"부분 환불금액({amount:,}원)은 주문 금액({line.amount:,}원)보다 작아야 합니다")
    return amount


def _settle(order: OrderDraft) -> list[RowError]:
    """Spread the discounts, read each line's refund, and fix the order's total and status."""
    errors: list[RowError] = []
    if not order.lines:
        rows = [row for row, _ in order.discounts]
        if not rows:  # its lines were refused, each with its own error
            return []
        return [RowError(rows[0], f"주문번호 {order.number}에 상품 줄이 없습니다 (할인 줄만 있는 주문)")]
    gross = sum(line.amount for line in order.lines)
    if gross > MAX_AMOUNT:
        return [RowError(order.lines[-1].row, f"주문 {order.number}의 금액이 너무 큽니다: {gross:,}원")]
    off = sum(amount for _, amount in order.discounts)
    if off > gross:
        return [
            RowError(row, f"할인 합계({off:,}원)가 주문 {order.number}의 상품 금액({gross:,}원)보다 큽니다")
            for row, _ in order.discounts
        ]
    if off:
        _spread(order.lines, gross, off)
    order.total = gross - off
    order.tax_free = 0
    for line in order.lines:
        if line.tax_free > line.amount:
            errors.append(RowError(line.row, f"면세금액({line.tax_free:,})이 할인 후 금액({line.amount:,})보다 큽니다"))
        order.tax_free += line.tax_free
    all_canceled = all(line.status == CANCELED for line in order.lines)
    if all_canceled:
        order.status = OrderStatus.CANCELED
        for line in order.lines:
            if line.refund_text and line.refund_text.translate(_INT_NOISE) != "0":
                errors.append(RowError(line.row, "취소된 주문(결제 전 취소)에는 환불금액을 적을 수 없습니다"))
        return errors
    for line in order.lines:
        try:
            line.refunded = _line_refund(order, line)
        except ValueError as exc:
            errors.append(RowError(line.row, str(exc)))
            continue
        if line.refunded:
            at = line.refunded_at or order.paid_at
            if at < order.paid_at:
                errors.append(RowError(line.row, "환불일시가 주문일시보다 빠릅니다"))
            suffix = "" if line.line_key == "1" else f":{line.line_key}"
            order.refunds.append(
                RefundDraft(line.row, order.number, f"import:{order.number}:refund{suffix}", line.refunded, at,
                            (line.row,))
            )
        elif line.refunded_at is not None and line.status not in (REFUNDED, PARTIAL, CANCELED):
            errors.append(RowError(line.row, "환불일시는 환불된 줄에만 적을 수 있습니다"))
    return errors


def _spread(lines: list[Line], gross: int, off: int) -> None:
    """Take `off` won from the lines in proportion to their amounts; the remainder goes won by won
    to the lines with the largest fractional share (ties: the earlier line)."""
    if gross == 0:
        return
    shares = [(off * line.amount) // gross for line in lines]
    rest = off - sum(shares)
    order = sorted(range(len(lines)), key=lambda i: (-((off * lines[i].amount) % gross), i))
    for i in order[:rest]:
        shares[i] += 1
    for line, share in zip(lines, shares, strict=True):
        line.amount -= share


def _attach(
    orders: dict[str, OrderDraft], refund_rows: list[RefundDraft], errors: list[RowError]
) -> list[RefundDraft]:
    """Refund rows of orders in the file join their order (checked there); the rest are returned
    for the store's orders."""
    rest: list[RefundDraft] = []
    seen: dict[str, int] = {}
    for refund in refund_rows:
        first = seen.setdefault(refund.key, refund.row)
        if first != refund.row:
            errors.append(RowError(refund.row, f"같은 환불이 {first}행과 중복됩니다 (원주문번호, 번호·시각·금액이 같음)"))
            continue
        order = orders.get(refund.order_number)
        if order is None:
            rest.append(refund)
        elif order.status == OrderStatus.CANCELED:
            errors.append(RowError(refund.row, f"주문 {refund.order_number}은(는) 결제 전에 취소된 주문입니다"))
        elif refund.at is not None and refund.at < order.paid_at:
            errors.append(RowError(refund.row, "환불일시가 원주문의 결제일시보다 빠릅니다"))
        else:
            order.refunds.append(refund)
    for order in orders.values():
        if order.status == OrderStatus.CANCELED:
            continue
        order.refunded = sum(refund.amount for refund in order.refunds)
        if order.refunded > order.total:
            rows = sorted({row for refund in order.refunds for row in refund.rows})
            errors += [
                RowError(row, f"주문 {order.number}의 환불 합계({order.refunded:,}원)가 결제 금액({order.total:,}원)보다 큽니다")
                for row in rows
            ]
        order.status = _status_of(order.total, order.refunded)
    return rest


def _status_of(total: int, refunded: int) -> OrderStatus:
    if refunded == 0:
        return OrderStatus.PAID
    return OrderStatus.REFUNDED if refunded >= total else OrderStatus.PARTIALLY_REFUNDED


def import_orders(
    session: Session,
    actor: Actor,
    data: bytes,
    *,
    source_name: str = "upload.csv",
    mapping: dict[str, str] | None = None,
) -> ImportResult:
    """All rows or none; order numbers already in the store are skipped and refunds already recorded
    are skipped, so re-importing adds nothing.

    Validation is one pass over the file; the writes are Core bulk inserts in chunks (no ORM
    objects, no RETURNING), and the ids they made are read back by their unique keys.
    """
    require_role(actor, Role.OWNER, Role.CS, Role.STAFF)
    with _no_gc_pauses():
        return _import(session, actor, data, source_name, mapping)


def _import(
    session: Session, actor: Actor, data: bytes, source_name: str, mapping: dict[str, str] | None
) -> ImportResult:
    parsed = parse_file(data, mapping)
    result = ImportResult()
    order_number = Order.__table__.c.order_number
    existing = set(_matching(session, order_number, list(parsed.orders)))
    store_refunds = list(parsed.refund_rows)
    drafts = list(parsed.orders.values())
    if existing:
        result.skipped_numbers = [d.number for d in drafts if d.number in existing]
        result.skipped_existing = len(result.skipped_numbers)
        for draft in drafts:
            if draft.number in existing:  # later refunds of an order imported before
                store_refunds += draft.refunds
        drafts = [d for d in drafts if d.number not in existing]
    stored_refunds = _check_store_refunds(session, store_refunds, result)
    products = _products(session, drafts, result)
    if drafts:
        _write_orders(session, actor, drafts, products, result)
    if stored_refunds:
        result.refunds_created += _write_store_refunds(session, actor, stored_refunds)
    audit.record(
        session,
        actor,
        "orders.import",
        "orders",
        None,
        file=source_name,
        created=result.created,
        lines=result.lines,
        skipped_existing=result.skipped_existing,
        customers_created=result.customers_created,
        products_created=len(result.products_created),
        refunds_created=result.refunds_created,
        refunds_skipped=result.refunds_skipped,
    )
    return result


@dataclass
class _StoredOrder:
    id: int
    number: str
    customer_id: int
    total: int
    refunded: int
    tax_free: int
    payment_id: int
    refunds: list[RefundDraft]


def _check_store_refunds(
    session: Session, refunds: list[RefundDraft], result: ImportResult
) -> list[_StoredOrder]:
    """Refunds for orders already stored: skip those recorded before (by key); the rest must name
    an imported, paid order and fit in what is left of it. Checked before anything is written."""
    if not refunds:
        return []
    known = set(_matching(session, Refund.__table__.c.idempotency_key, [r.key for r in refunds]))
    result.refunds_skipped += sum(1 for r in refunds if r.key in known)
    fresh = [r for r in refunds if r.key not in known]
    if not fresh:
        return []
    o = Order.__table__.c
    numbers = sorted({r.order_number for r in fresh})
    rows = {
        number: (order_id, customer_id, total, refunded, tax_free, source, status)
        for number, order_id, customer_id, total, refunded, tax_free, source, status in _matching(
            session, o.order_number, numbers, o.id, o.customer_id, o.total_amount, o.refunded_amount,
            o.tax_free_amount, o.source, o.status,
        )
    }
    payments = dict(
        _matching(session, Payment.__table__.c.idempotency_key, [f"import:{n}" for n in numbers],
                  Payment.__table__.c.id)
    )
    errors: list[RowError] = []
    stored: dict[str, _StoredOrder] = {}
    for refund in fresh:
        found = rows.get(refund.order_number)
        if found is None:
            errors.append(RowError(refund.row, f"환불할 주문 {refund.order_number}이(가) 파일에도 저장된 주문에도 없습니다"))
            continue
        order_id, customer_id, total, refunded, tax_free, source, status = found
        payment_id = payments.get(f"import:{refund.order_number}")
        if source != "import" or payment_id is None:
            errors.append(RowError(
                refund.row,
                f"주문 {refund.order_number}은(는) 여기서 결제된 주문입니다: 환불은 결제대행사를 거쳐야 하므로 주문 화면에서 하세요",
            ))
            continue
        if str(status) == OrderStatus.CANCELED.value:
            errors.append(RowError(refund.row, f"주문 {refund.order_number}은(는) 결제 전에 취소된 주문입니다"))
            continue
        entry = stored.setdefault(
            refund.order_number,
            _StoredOrder(order_id, refund.order_number, customer_id, total, refunded, tax_free, payment_id, []),
        )
        entry.refunds.append(refund)
    for entry in stored.values():
        new = sum(r.amount for r in entry.refunds)
        if entry.refunded + new > entry.total:
            errors += [
                RowError(r.row, f"주문 {entry.number}의 환불 합계({entry.refunded + new:,}원, 이미 환불 "
                                f"{entry.refunded:,}원 포함)가 결제 금액({entry.total:,}원)보다 큽니다")
                for r in entry.refunds
            ]
    if errors:
        raise ImportRejected(errors)
    return list(stored.values())


def _products(session: Session, drafts: list[OrderDraft], result: ImportResult) -> dict[tuple[str | None, str], int]:
    """(code, name) → product id: by code, then exact name; new ones created. A stored product
    whose code is in the file under another name refuses the file."""
    wanted: dict[tuple[str | None, str], Line] = {}
    for draft in drafts:
        for line in draft.lines:
            wanted.setdefault((line.product_code, line.product_name), line)
    if not wanted:
        return {}
    p = Product.__table__.c
    codes = sorted({code for code, _ in wanted if code is not None})
    by_code: dict[str, tuple[int, str]] = {
        code: (product_id, name) for code, product_id, name in _matching(session, p.code, codes, p.id, p.name)
    }
    errors: list[RowError] = []
    ids: dict[tuple[str | None, str], int] = {}
    for (code, name), line in wanted.items():
        if code is not None and code in by_code:
            product_id, stored_name = by_code[code]
            if _same_name(stored_name) != name:
                errors.append(RowError(
                    line.row, f"상품번호 {code}은(는) 이미 '{stored_name}' 상품입니다 (파일: '{name}')"
                ))
            ids[(code, name)] = product_id
    if errors:
        raise ImportRejected(errors)
    names = sorted({name for key, name in wanted.items() if key not in ids for name in [key[1]]})
    by_name: dict[str, tuple[int, str | None]] = {}
    for name, product_id, code in _matching(session, p.name, names, p.id, p.code):
        current = by_name.get(name)
        if current is None or (current[1] is not None and code is None) or (
            (current[1] is None) == (code is None) and product_id < current[0]
        ):
            by_name[name] = (product_id, code)
    give_code: dict[int, str] = {}
    for (code, name) in wanted:
        if (code, name) in ids or name not in by_name:
            continue
        product_id, stored_code = by_name[name]
        if code is None:
            ids[(code, name)] = product_id
        elif stored_code is None and product_id not in give_code:
            give_code[product_id] = code
            ids[(code, name)] = product_id
    if give_code:
        _set_codes(session, give_code)
    result.products_matched = len({ids[k] for k in ids})
    now = clock.now()
    new: dict[tuple[str | None, str], dict[str, Any]] = {}
    named_new: dict[str, tuple[str | None, str]] = {}
    for key, line in wanted.items():
        if key in ids:
            continue
        code, name = key
        if code is None and name in named_new:  # a code-less line of a product this file creates
            continue
        new[key] = {
            "name": name, "category": "기타", "price": max(line.unit_price, 0), "is_tax_free": False,
            "replenishment_days": None, "image_url": None, "is_subscription": False, "code": code,
            "is_active": True, "deleted_at": None, "created_at": now,
        }
        named_new.setdefault(name, key)
    if new:
        _bulk_insert(session, Product.__table__, list(new.values()))
        coded = [code for code, _ in new if code is not None]
        for code, product_id in _matching(session, p.code, coded, p.id):
            for key in new:
                if key[0] == code:
                    ids[key] = product_id
        plain = [name for code, name in new if code is None]
        for name, product_id in _matching(session, p.name, plain, p.id, where=p.code.is_(None)):
            if (None, name) in new:
                ids[(None, name)] = max(ids.get((None, name), 0), product_id)
        result.products_created = [name for _, name in new]
    for key in wanted:
        if key not in ids:  # a code-less line named like a product this file creates under a code
            ids[key] = ids[named_new[key[1]]]
    return ids


def _set_codes(session: Session, codes: dict[int, str]) -> None:
    """Give products found by name the file's product code (their first code)."""
    table = Product.__table__
    for product_id, code in codes.items():
        session.execute(update(table).where(table.c.id == product_id).values(code=code))


def _write_orders(
    session: Session,
    actor: Actor,
    drafts: list[OrderDraft],
    products: dict[tuple[str | None, str], int],
    result: ImportResult,
) -> None:
    rows = [{"customer_phone": d.customer_phone, "customer_name": d.customer_name} for d in drafts]
    customer_ids = _customers(session, rows, result)
    customer_of = [customer_ids[_customer_key(row)] for row in rows]
    now = clock.now()
    canceled = OrderStatus.CANCELED
    order_values = [
        {
            "order_number": d.number,
            "customer_id": customer_id,
            "total_amount": d.total,
            "tax_free_amount": d.tax_free,
            "source": "import",
            "status": d.status,
            "ordered_at": d.ordered_at,
            "paid_at": d.paid_at if d.status != canceled else None,
            "refunded_amount": d.refunded,
            "shipping_method": None,
            "expected_ship_date": None,
            "tracking_url": None,
            "delivered_at": None,
            "payment_link_id": None,
            "subscription_id": None,
        }
        for d, customer_id in zip(drafts, customer_of, strict=True)
    ]
    _bulk_insert(session, Order.__table__, order_values)
    order_ids = dict(_matching(session, Order.__table__.c.order_number, [d.number for d in drafts], Order.__table__.c.id))
    # Backdated sales and refunds: tell the sales rollups which days to re-read (core.analytics).
    analytics.record_sales_at(
        session,
        [(values["paid_at"], values["customer_id"]) for values in order_values]
        + [
            (refund.at, customer_id)
            for d, customer_id in zip(drafts, customer_of, strict=True)
            for refund in d.refunds
        ],
    )
    items = [
        {
            "order_id": order_ids[d.number],
            "product_id": products.get((line.product_code, line.product_name)),
            "product_name": line.product_name,
            "quantity": line.quantity,
            "unit_price": max(line.unit_price, 0),
            "amount": line.amount,
        }
        for d in drafts
        for line in d.lines
    ]
    _bulk_insert(session, OrderItem.__table__, items)
    _bulk_insert(
        session,
        Payment.__table__,
        [
            {
                "order_id": order_ids[d.number],
                "customer_id": customer_id,
                "gateway": "import",
                "gateway_tid": None,
                "method": d.method,
                "amount": d.total,
                "tax_free_amount": d.tax_free,
                "refunded_amount": d.refunded,
                "status": PAYMENT_STATUS_OF[d.status],
                "idempotency_key": f"import:{d.number}",
                "approved_at": d.paid_at,
                "failure_code": None,
                "failure_message": None,
                "routing_log": [],
                "created_at": now,
            }
            for d, customer_id in zip(drafts, customer_of, strict=True)
            if d.status != canceled
        ],
    )
    refunded = [d for d in drafts if d.refunds]
    if refunded:
        payment_ids = dict(
            _matching(
                session,
                Payment.__table__.c.idempotency_key,
                [f"import:{d.number}" for d in refunded],
                Payment.__table__.c.id,
            )
        )
        _insert_refunds(
            session,
            actor,
            [
                (refund, payment_ids[f"import:{d.number}"], order_ids[d.number], d.tax_free, d.total)
                for d in refunded
                for refund in d.refunds
            ],
        )
        result.refunds_created += sum(len(d.refunds) for d in refunded)
    customer_summary.refresh(session, set(customer_of))  # after payments: it reads paid_at
    result.created = len(drafts)
    result.lines = len(items)


def _insert_refunds(
    session: Session, actor: Actor, refunds: list[tuple[RefundDraft, int, int, int, int]]
) -> None:
    """Refund rows (refund, payment id, order id, order tax-free, order total): the tax-free part
    goes back in proportion (all of it when the whole order is refunded).

    Core's executemany, not _bulk_insert's COPY: it serialises the JSON column on every driver, and
    refunds are a small share of a file."""
    session.execute(
        insert(Refund.__table__),  # type: ignore[attr-defined]
        [
            {
                "payment_id": payment_id,
                "order_id": order_id,
                "amount": refund.amount,
                "tax_free_amount": tax_free * refund.amount // total if total else 0,
                "reason": IMPORT_REFUND_REASON,
                "status": RefundStatus.SUCCEEDED.value,
                "idempotency_key": refund.key,
                "requested_by": actor.id,
                "gateway_response": {},
                "created_at": refund.at,
                "completed_at": refund.at,
            }
            for refund, payment_id, order_id, tax_free, total in refunds
        ],
    )


def _write_store_refunds(session: Session, actor: Actor, stored: list[_StoredOrder]) -> int:
    """Refunds that arrived later for orders imported before: the refund rows, and the order's and
    its payment's refunded amount and status."""
    _insert_refunds(
        session,
        actor,
        [(refund, entry.payment_id, entry.id, entry.tax_free, entry.total) for entry in stored for refund in entry.refunds],
    )
    orders, payments = Order.__table__, Payment.__table__
    for entry in stored:
        refunded = entry.refunded + sum(r.amount for r in entry.refunds)
        status = _status_of(entry.total, refunded)
        session.execute(
            update(orders).where(orders.c.id == entry.id).values(refunded_amount=refunded, status=status.value)
        )
        session.execute(
            update(payments)
            .where(payments.c.id == entry.payment_id)
            .values(refunded_amount=refunded, status=PAYMENT_STATUS_OF[status].value)
        )
    analytics.record_sales_at(session, [(r.at, e.customer_id) for e in stored for r in e.refunds])
    customer_summary.refresh(session, {e.customer_id for e in stored})
    return sum(len(e.refunds) for e in stored)


def _bulk_insert(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    """Bulk insert inside the caller's transaction (all or nothing), in chunks.

    Each column's bind processor is applied here, column by column (SQLAlchemy's per-row parameter
    assembly was half the import's CPU time at 100,000 rows); then SQLite gets one compiled INSERT
    through executemany and PostgreSQL a COPY (a row-at-a-time INSERT costs a round trip each).
    """
    if not values:
        return
    connection = session.connection()
    dialect = connection.dialect
    keys = list(values[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup or []) if compiled.positional else keys
    if sorted(order) != sorted(keys):  # a column default we would have to fill: let Core do it
        for start in range(0, len(values), INSERT_CHUNK):
            session.execute(insert(table), values[start : start + INSERT_CHUNK])
        return
    processors = [table.c[key].type.bind_processor(dialect) for key in order]
    copy_sql = None
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer
        copy_sql = (
            f"COPY {quote.format_table(table)} ({', '.join(quote.quote(key) for key in order)}) FROM STDIN"
        )
    for start in range(0, len(values), INSERT_CHUNK):
        chunk = values[start : start + INSERT_CHUNK]
        columns = [
            _processed([row[key] for row in chunk], process)
            for key, process in zip(order, processors, strict=True)
        ]
        tuples = list(zip(*columns, strict=True))
        if copy_sql is not None:
            with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for row in tuples:
                    copy.write_row(row)
        else:
            params: Any = (
                tuples if compiled.positional else [dict(zip(order, row, strict=True)) for row in tuples]
            )
            connection.exec_driver_sql(compiled.string, params)


def _processed(column: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """Bind-process one column; repeated values (order times, statuses) are converted once."""

    def convert(value: Any) -> Any:
        value = value.value if isinstance(value, Enum) else value
        return value if process is None else process(value)

    memo: dict[Any, Any] = {None: None}
    try:
        return [memo[value] if value in memo else memo.setdefault(value, convert(value)) for value in column]
    except TypeError:  # unhashable values (JSON lists)
        return [None if value is None else convert(value) for value in column]


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """A 100,000-row import allocates ~1M small objects and no cycles: the cyclic collector would
    rescan them again and again (about a fifth of the CPU time); it runs once at the end instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _matching(
    session: Session, key: Column[Any], wanted: list[str], *extra: Any, where: Any = None
) -> Iterator[Any]:
    """Set-based lookup of stored keys (with `extra` columns): a chunked IN list on SQLite (at most
    999 bound parameters), one array parameter per 20,000 keys on PostgreSQL."""
    postgres = session.get_bind().dialect.name == "postgresql"
    size = PG_LOOKUP_CHUNK if postgres else CHUNK
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        test = key == any_(cast(literal(chunk, ARRAY(String)), ARRAY(String))) if postgres else key.in_(chunk)
        statement = select(key, *extra).where(test)
        if where is not None:
            statement = statement.where(where)
        if extra:
            yield from session.execute(statement)
        else:
            yield from session.execute(statement).scalars()


def run_import(
    engine: Engine,
    actor: Actor,
    data: bytes,
    *,
    source_name: str = "upload.csv",
    mapping: dict[str, str] | None = None,
) -> ImportResult:
    """What the 주문 page and the CLI call: the import in its own transaction, then, once it is
    committed, the repair of exactly the sales days and customers a backdated import changed
    (core.analytics.repair_dirty), so LTV and cohorts are current at once. If the repair cannot
    run now (the store is busy), the marks stay and the worker's rollup job repairs them."""
    with session_scope(engine) as session:
        result = import_orders(session, actor, data, source_name=source_name, mapping=mapping)
    if result.created or result.refunds_created:
        analyze(engine)  # planner statistics for the new rows (core.db.analyze says why)
        try:
            result.repaired = analytics.repair_dirty(engine)
        except SQLAlchemyError:
            result.repaired = {}
    return result


def _customer_key(row: dict[str, Any]) -> str:
    return row["customer_phone"] or f"name:{row['customer_name']}"


def _customers(session: Session, rows: list[dict[str, Any]], result: ImportResult) -> dict[str, int]:
    """Match customers by phone (else by exact name among customers without a phone); create the rest."""
    customer = Customer.__table__.c
    # By phone through identity: every typed form of one number is one customer (core.customers.service).
    names_by_phone: dict[str, str] = {}
    for row in rows:
        if row["customer_phone"]:
            names_by_phone.setdefault(row["customer_phone"], row["customer_name"])
    matched = customers.ids_for_phones(session, names_by_phone)
    ids: dict[str, int] = dict(matched.ids)
    names = sorted({row["customer_name"] for row in rows if not row["customer_phone"]})
    for name, customer_id in _matching(
        session, customer.name, names, customer.id, where=customer.phone.is_(None)
    ):
        ids.setdefault(f"name:{name}", customer_id)
    now = clock.now()
    new: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = _customer_key(row)
        if key not in ids and key not in new:
            new[key] = {
                "name": row["customer_name"],
                "phone": row["customer_phone"],
                "is_channel_friend": True,
                "public_id": _opaque_id(),
                "created_at": now,
                "ad_consent_at": None,
                "night_ad_consent_at": None,
                "ad_opt_out_at": None,
            }
    if new:
        _bulk_insert(session, Customer.__table__, list(new.values()))
        key_of = {values["public_id"]: key for key, values in new.items()}
        for public, customer_id in _matching(session, customer.public_id, list(key_of), customer.id):
            ids[key_of[public]] = customer_id
        result.customers_created = len(new)
    result.customers_created += matched.created
    return ids
