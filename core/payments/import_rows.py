"""Reading a shop's export (CSV or XLSX) into orders, validated whole: the import's rules, no
database (core.payments.order_import writes what this reads, all or nothing).

The fields and every rule (one order per 주문번호, discount lines spread over the products, refunds
and refund rows, idempotency) are written down in docs/order-import.md (the README points there);
a rule changed here is changed there. Cells are read by core.payments.import_cells.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from core import clock
from core.errors import ValidationFailed
from core.models import OrderStatus, PaymentStatus
from core.payments import import_mapping, import_source
from core.payments.import_cells import (
    CANCELED,
    INT_NOISE,
    METHODS,
    PAID,
    PARTIAL,
    REFUNDED,
    STATUSES,
    choice,
    instant,
    parse_instant,
    phone_cell,
    same_name,
    whole_number,
)
from core.payments.orders import MAX_AMOUNT

COLUMNS = {f.key: (f.key, f.label) for f in import_mapping.FIELDS}
REQUIRED = import_mapping.REQUIRED
IMPORT_REFUND_REASON = "가져오기"
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
        ordered_at = instant(cell["ordered_at"], instants)
        paid_at = instant(cell["paid_at"], instants) if cell["paid_at"] else ordered_at
        if paid_at < ordered_at:
            problems.append("결제일시가 주문일시보다 빠릅니다")
    except ValueError as exc:
        problems.append(str(exc))
    phone = None
    try:
        phone_text = cell["customer_phone"]
        phone = _PHONES[phone_text] if phone_text in _PHONES else phone_cell(phone_text)
        if len(_PHONES) < 100_000:
            _PHONES[phone_text] = phone
    except ValueError as exc:
        problems.append(str(exc))
    known, method = choice(cell["payment_method"], METHODS)
    if not known:
        problems.append(f"결제수단은 CARD 또는 MONEY여야 합니다: {cell['payment_method'][:20]!r}")
    known, status = choice(cell["status"], STATUSES)
    if not known:
        problems.append(
            f"상태는 paid, refunded, partially_refunded, canceled 중 하나여야 합니다: {cell['status'][:20]!r}"
        )
    amount = unit_price = quantity = 0
    try:
        quantity_text = cell["quantity"]
        quantity = whole_number(quantity_text, "수량", low=-10_000, high=10_000)
        if quantity <= 0:
            raise ValueError(
                "수량은 1~10,000이어야 합니다"
                + (" (반품·취소는 원주문번호를 적은 환불 행으로)" if quantity < 0 else f": {quantity}")
            )
        unit_price = whole_number(cell["unit_price"], "상품가격(단가)", low=-MAX_AMOUNT, high=MAX_AMOUNT)
        listed = quantity * unit_price
        if abs(listed) > MAX_AMOUNT:
            raise ValueError(f"주문 금액이 너무 큽니다: {listed:,}원")
        amount = (
            whole_number(cell["line_amount"], "결제금액", low=-MAX_AMOUNT, high=MAX_AMOUNT) if cell["line_amount"] else listed
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
            tax_free = whole_number(cell["tax_free_amount"], "면세금액", low=0, high=MAX_AMOUNT)
        except ValueError as exc:
            problems.append(str(exc))
    refunded_at = None
    if cell["refunded_at"]:
        try:
            refunded_at = parse_instant(cell["refunded_at"], "환불일시")
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
    amount = abs(whole_number(cell["refunded_amount"], "환불금액", low=-MAX_AMOUNT, high=MAX_AMOUNT))
    if amount == 0:
        raise ValueError("환불금액은 1원 이상이어야 합니다")
    when_text = cell["refunded_at"] or cell["ordered_at"]
    if not when_text:
        raise ValueError("환불 행에는 환불일시(또는 주문일시)가 필요합니다")
    at = parse_instant(when_text, "환불일시") if cell["refunded_at"] else instant(when_text, instants)
    own = cell["line_number"] or (cell["order_number"] if cell["order_number"] != original else "")
    tag = own[:40] if own else f"{at.strftime('%Y%m%d%H%M%S')}:{amount}"
    return RefundDraft(row, original, f"import:{original}:refund:row:{tag}", amount, at, (row,))


def _line_refund(order: OrderDraft, line: Line) -> int:
    """The line's refund from its status and 환불금액 (checked against the line's amount after
    discounts). Raises ValueError."""
    text, status = line.refund_text, line.status
    amount = whole_number(text, "환불금액", low=0, high=MAX_AMOUNT) if text else None
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
            if line.refund_text and line.refund_text.translate(INT_NOISE) != "0":
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


