"""Reading a shop's export (CSV or XLSX) into orders, validated whole: the import's rules, no
database (core.payments.order_import writes what this reads, all or nothing).

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

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from core import clock
from core.customers.identity import MAX_RAW_LENGTH
from core.errors import ValidationFailed
from core.models import (
    OrderStatus,
    PaymentStatus,
)
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


def same_name(name: str) -> str:
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
    product = same_name(cell["product_name"])
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
        order.status = status_of(order.total, order.refunded)
    return rest


def status_of(total: int, refunded: int) -> OrderStatus:
    if refunded == 0:
        return OrderStatus.PAID
    return OrderStatus.REFUNDED if refunded >= total else OrderStatus.PARTIALLY_REFUNDED


