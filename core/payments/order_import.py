"""Import orders from a CSV file (a spreadsheet export): validate every row, then write all or nothing.

Columns (a header row; English or Korean names, any order):

| column | 한국어 | required | example |
|---|---|---|---|
| order_number | 주문번호 | yes | 20261101-0001 (unique; a number already imported is skipped) |
| ordered_at | 주문일시 | yes | 2026-11-01 14:30 (KST when no offset), 2026-11-01, 2026/11/01 14:30 |
| customer_name | 고객명 | yes | 김민지 |
| customer_phone | 연락처 | no | 010-1234-5678 (customers are matched by phone) |
| product_name | 상품명 | yes | 수분크림 50ml |
| quantity | 수량 | yes | 1..10000 |
| unit_price | 단가 | yes | 32000 or 32,000 (whole won) |
| tax_free_amount | 면세금액 | no | 0 |
| payment_method | 결제수단 | no | CARD / MONEY (카드, 카카오머니) |
| status | 상태 | no | paid (default), refunded, partially_refunded, canceled (결제 완료, 환불 완료, 부분 환불, 취소) |
| refunded_amount | 환불금액 | partially_refunded: yes | 12000 (refunded: the whole amount when empty) |
| refunded_at | 환불일시 | no | 2026-11-03 10:00 (default: the order time) |

A refunded or partially refunded row also writes its refund (reason "가져오기", completed at the
refund time), like a refund made here: 매출, segments, LTV and the order page all count it.

Encodings: UTF-8 with or without BOM, and CP949 (what Korean Excel saves). One row is one order
with one item. Nothing is written unless the whole file is valid; errors name the row number (the
header is row 1).
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import ARRAY, Column, Engine, String, Table, any_, cast, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from core import analytics, clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers import service as customers
from core.customers import summary as customer_summary
from core.customers.identity import MAX_RAW_LENGTH
from core.db import session_scope
from core.errors import ValidationFailed
from core.models import (
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
)
from core.models.customers import _opaque_id
from core.payments.orders import MAX_AMOUNT

COLUMNS = {
    "order_number": ("order_number", "주문번호"),
    "ordered_at": ("ordered_at", "주문일시", "주문일"),
    "customer_name": ("customer_name", "고객명", "이름"),
    "customer_phone": ("customer_phone", "연락처", "전화번호", "휴대폰"),
    "product_name": ("product_name", "상품명"),
    "quantity": ("quantity", "수량"),
    "unit_price": ("unit_price", "단가", "가격"),
    "tax_free_amount": ("tax_free_amount", "면세금액"),
    "payment_method": ("payment_method", "결제수단"),
    "status": ("status", "상태"),
    "refunded_amount": ("refunded_amount", "환불금액"),
    "refunded_at": ("refunded_at", "환불일시"),
}
IMPORT_REFUND_REASON = "가져오기"
REQUIRED = ("order_number", "ordered_at", "customer_name", "product_name", "quantity", "unit_price")
METHODS = {"": None, "CARD": "CARD", "카드": "CARD", "MONEY": "MONEY", "카카오머니": "MONEY", "머니": "MONEY"}
STATUSES = {
    "": OrderStatus.PAID,
    "paid": OrderStatus.PAID,
    "결제 완료": OrderStatus.PAID,
    "결제완료": OrderStatus.PAID,
    "refunded": OrderStatus.REFUNDED,
    "환불 완료": OrderStatus.REFUNDED,
    "환불완료": OrderStatus.REFUNDED,
    "partially_refunded": OrderStatus.PARTIALLY_REFUNDED,
    "partially refunded": OrderStatus.PARTIALLY_REFUNDED,
    "부분 환불": OrderStatus.PARTIALLY_REFUNDED,
    "부분환불": OrderStatus.PARTIALLY_REFUNDED,
    "canceled": OrderStatus.CANCELED,
    "취소": OrderStatus.CANCELED,
}
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
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
        shown = "\n".join(str(e) for e in errors[:10])
        more = f"\n… 외 {len(errors) - 10}건" if len(errors) > 10 else ""
        super().__init__(
            f"가져오기 실패: {len(errors)}건의 오류, 아무것도 저장하지 않았습니다\n{shown}{more}"
        )
        self.errors = errors


@dataclass
class ImportResult:
    created: int = 0
    skipped_existing: int = 0
    customers_created: int = 0
    skipped_numbers: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)  # what run_import's rollup repair recomputed


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then CP949; anything else is a clear error."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected(
        [RowError(1, "파일 인코딩을 읽을 수 없습니다. UTF-8 또는 CP949(엑셀 CSV)로 저장하세요")]
    )


_INT_NOISE = str.maketrans("", "", ",원")


def _int(text: str, label: str, *, low: int, high: int) -> int:
    cleaned = text.translate(_INT_NOISE)
    if not (cleaned.isascii() and cleaned.isdigit()) and not re.fullmatch(r"-?\d+", cleaned):
        raise ValueError(f"{label}은(는) 정수여야 합니다: {text!r}")
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


def _parse_instant(text: str) -> datetime:
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
    raise ValueError(f"주문일시 형식이 올바르지 않습니다: {text!r} (예: 2026-11-01 14:30)")


def _phone(text: str) -> str | None:
    """As given (bounded): core.customers.identity finds the person; a non-mobile is kept, never sent to."""
    return text.strip()[:MAX_RAW_LENGTH] or None


def _choice(text: str, choices: dict[str, Any]) -> tuple[bool, Any]:
    for key in (text, text.upper(), text.lower()):
        if key in choices:
            return True, choices[key]
    return False, None


def _header_index(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    names = [h.strip().lower() for h in header]
    for key, aliases in COLUMNS.items():
        for alias in aliases:
            if alias.lower() in names:
                index[key] = names.index(alias.lower())
                break
    missing = [COLUMNS[key][0] + f"({COLUMNS[key][1]})" for key in REQUIRED if key not in index]
    if missing:
        raise ImportRejected([RowError(1, f"필수 열이 없습니다: {', '.join(missing)}")])
    return index


def parse(data: bytes) -> list[dict[str, Any]]:
    """Validate the whole file in one pass; return clean rows or raise ImportRejected with every row's errors."""
    try:
        return _parse(data)
    except csv.Error as exc:  # a stray carriage return or NUL: not a CSV file we can read row by row
        raise ImportRejected([RowError(1, f"CSV 형식이 올바르지 않습니다: {exc}")]) from exc


def _parse(data: bytes) -> list[dict[str, Any]]:
    text = decode(data)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ImportRejected([RowError(1, "빈 파일입니다 (머리글 행이 필요합니다)")])
    index = _header_index(header)
    keys = list(COLUMNS)
    positions = [index.get(key, -1) for key in keys]
    errors: list[RowError] = []
    rows: list[dict[str, Any]] = []
    first_row_of: dict[str, int] = {}
    instants: dict[str, datetime] = {}
    for row_number, cells in enumerate(reader, start=2):
        width = len(cells)
        (
            number,
            ordered_at,
            name,
            phone,
            product,
            quantity_text,
            price_text,
            tax_free_text,
            method,
            status,
            refunded_text,
            refunded_at_text,
        ) = (cells[p].strip() if 0 <= p < width else "" for p in positions)
        if not "".join(cells).strip():
            continue
        problems: list[str] = []
        values: dict[str, Any] = {"row": row_number, "order_number": number}
        if not number or len(number) > 40:
            problems.append("주문번호는 1~40자여야 합니다")
        elif number in first_row_of:
            problems.append(f"주문번호 {number}이(가) {first_row_of[number]}행과 중복됩니다")
        else:
            first_row_of[number] = row_number
        if not name or len(name) > 64:
            problems.append("고객명은 1~64자여야 합니다")
        values["customer_name"] = name
        if not product or len(product) > 120:
            problems.append("상품명은 1~120자여야 합니다")
        values["product_name"] = product
        try:
            values["ordered_at"] = _instant(ordered_at, instants)
        except ValueError as exc:
            problems.append(str(exc))
        try:
            values["customer_phone"] = _phone(phone)
        except ValueError as exc:
            problems.append(str(exc))
        try:
            quantity = _int(quantity_text, "수량", low=1, high=10_000)
            unit_price = _int(price_text, "단가", low=0, high=MAX_AMOUNT)
            total = quantity * unit_price
            if total > MAX_AMOUNT:
                raise ValueError(f"주문 금액이 너무 큽니다: {total:,}원")
            tax_free = _int(tax_free_text, "면세금액", low=0, high=MAX_AMOUNT) if tax_free_text else 0
            if tax_free > total:
                raise ValueError(f"면세금액({tax_free:,})이 주문 금액({total:,})보다 큽니다")
            values.update(quantity=quantity, unit_price=unit_price, total=total, tax_free=tax_free)
        except ValueError as exc:
            problems.append(str(exc))
        known, values["method"] = _choice(method, METHODS)
        if not known:
            problems.append(f"결제수단은 CARD 또는 MONEY여야 합니다: {method!r}")
        known, values["status"] = _choice(status, STATUSES)
        if not known:
            problems.append(
                f"상태는 paid, refunded, partially_refunded, canceled 중 하나여야 합니다: {status!r}"
            )
        elif "total" in values:
            try:
                values["refunded"], values["refunded_at"] = _refund_of(
                    values["status"],
                    values["total"],
                    values.get("ordered_at"),
                    refunded_text,
                    refunded_at_text,
                )
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            errors += [RowError(row_number, problem) for problem in problems]
            if len(errors) >= MAX_ERRORS_SHOWN:
                break
        else:
            rows.append(values)
    if errors:
        raise ImportRejected(errors)
    if not rows:
        raise ImportRejected([RowError(2, "가져올 주문이 없습니다")])
    return rows


def _refund_of(
    status: OrderStatus, total: int, ordered_at: datetime | None, amount_text: str, at_text: str
) -> tuple[int, datetime | None]:
    """(refunded amount, when) of one row: the whole total for refunded, a part for partially
    refunded, nothing otherwise. The refund cannot precede the order (the default is the order time)."""
    if status not in (OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED):
        if amount_text and amount_text.translate(_INT_NOISE) != "0":
            raise ValueError("환불금액은 환불 또는 부분 환불 주문에만 적을 수 있습니다")
        return 0, None
    if status == OrderStatus.REFUNDED:
        amount = _int(amount_text, "환불금액", low=0, high=MAX_AMOUNT) if amount_text else total
        if amount != total:
            raise ValueError(
                f"환불 완료 주문의 환불금액({amount:,}원)은 주문 금액({total:,}원)과 같아야 합니다"
            )
    else:
        if not amount_text:
            raise ValueError("부분 환불 주문에는 환불금액이 필요합니다")
        amount = _int(amount_text, "환불금액", low=1, high=MAX_AMOUNT)
        if amount >= total:
            raise ValueError(f"부분 환불금액({amount:,}원)은 주문 금액({total:,}원)보다 작아야 합니다")
    at = _parse_instant(at_text) if at_text else ordered_at
    if at is not None and ordered_at is not None and at < ordered_at:
        raise ValueError("환불일시가 주문일시보다 빠릅니다")
    return amount, at


def import_orders(
    session: Session, actor: Actor, data: bytes, *, source_name: str = "upload.csv"
) -> ImportResult:
    """All rows or none; order numbers already in the store are skipped, so re-importing adds nothing.

    Validation is one pass over the file; the writes are Core bulk inserts in chunks (no ORM
    objects, no RETURNING), and the ids they made are read back by their unique keys.
    """
    require_role(actor, Role.OWNER, Role.CS, Role.STAFF)
    with _no_gc_pauses():
        return _import(session, actor, data, source_name)


def _import(session: Session, actor: Actor, data: bytes, source_name: str) -> ImportResult:
    rows = parse(data)
    result = ImportResult()
    order_number = Order.__table__.c.order_number
    existing = set(_matching(session, order_number, [row["order_number"] for row in rows]))
    if existing:
        result.skipped_numbers = [row["order_number"] for row in rows if row["order_number"] in existing]
        result.skipped_existing = len(result.skipped_numbers)
        rows = [row for row in rows if row["order_number"] not in existing]
    if rows:
        customer_ids = _customers(session, rows, result)
        customer_of = [customer_ids[_customer_key(row)] for row in rows]
        now = clock.now()
        canceled = OrderStatus.CANCELED
        order_values = [
            {
                "order_number": row["order_number"],
                "customer_id": customer_id,
                "total_amount": row["total"],
                "tax_free_amount": row["tax_free"],
                "source": "import",
                "status": row["status"],
                "ordered_at": row["ordered_at"],
                "paid_at": row["ordered_at"] if row["status"] != canceled else None,
                "refunded_amount": row["refunded"],
                "shipping_method": None,
                "expected_ship_date": None,
                "tracking_url": None,
                "delivered_at": None,
                "payment_link_id": None,
                "subscription_id": None,
            }
            for row, customer_id in zip(rows, customer_of, strict=True)
        ]
        _bulk_insert(session, Order.__table__, order_values)
        order_ids = dict(
            _matching(session, order_number, [row["order_number"] for row in rows], Order.__table__.c.id)
        )
        # Backdated sales and refunds: tell the sales rollups which days to re-read (core.analytics).
        analytics.record_sales_at(
            session,
            [(values["paid_at"], values["customer_id"]) for values in order_values]
            + [
                (row["refunded_at"], customer_id)
                for row, customer_id in zip(rows, customer_of, strict=True)
                if row["refunded"]
            ],
        )
        _bulk_insert(
            session,
            OrderItem.__table__,
            [
                {
                    "order_id": order_ids[row["order_number"]],
                    "product_id": None,
                    "product_name": row["product_name"],
                    "quantity": row["quantity"],
                    "unit_price": row["unit_price"],
                    "amount": row["total"],
                }
                for row in rows
            ],
        )
        _bulk_insert(
            session,
            Payment.__table__,
            [
                {
                    "order_id": order_ids[row["order_number"]],
                    "customer_id": customer_id,
                    "gateway": "import",
                    "gateway_tid": None,
                    "method": row["method"],
                    "amount": row["total"],
                    "tax_free_amount": row["tax_free"],
                    "refunded_amount": row["refunded"],
                    "status": PAYMENT_STATUS_OF[row["status"]],
                    "idempotency_key": f"import:{row['order_number']}",
                    "approved_at": row["ordered_at"],
                    "failure_code": None,
                    "failure_message": None,
                    "routing_log": [],
                    "created_at": now,
                }
                for row, customer_id in zip(rows, customer_of, strict=True)
                if row["status"] != canceled
            ],
        )
        _refunds(session, actor, rows, order_ids)
        customer_summary.refresh(session, set(customer_of))  # after payments: it reads paid_at
        result.created = len(rows)
    audit.record(
        session,
        actor,
        "orders.import",
        "orders",
        None,
        file=source_name,
        created=result.created,
        skipped_existing=result.skipped_existing,
        customers_created=result.customers_created,
    )
    return result


def _refunds(session: Session, actor: Actor, rows: list[dict[str, Any]], order_ids: dict[str, int]) -> None:
    """The refund rows of the refunded and partially refunded rows (what 매출 and LTV count), on
    the payments just written; the tax-free part goes back in proportion (all of it when full)."""
    refunded = [row for row in rows if row["refunded"]]
    if not refunded:
        return
    payment_ids = dict(
        _matching(
            session,
            Payment.__table__.c.idempotency_key,
            [f"import:{row['order_number']}" for row in refunded],
            Payment.__table__.c.id,
        )
    )
    # Core's executemany, not _bulk_insert's COPY: it serialises the JSON column on every driver,
    # and refunded rows are a small share of a file.
    session.execute(
        insert(Refund.__table__),  # type: ignore[attr-defined]
        [
            {
                "payment_id": payment_ids[f"import:{row['order_number']}"],
                "order_id": order_ids[row["order_number"]],
                "amount": row["refunded"],
                "tax_free_amount": row["tax_free"] * row["refunded"] // row["total"],
                "reason": IMPORT_REFUND_REASON,
                "status": RefundStatus.SUCCEEDED.value,
                "idempotency_key": f"import:{row['order_number']}:refund",
                "requested_by": actor.id,
                "gateway_response": {},
                "created_at": row["refunded_at"],
                "completed_at": row["refunded_at"],
            }
            for row in refunded
        ],
    )


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


def run_import(engine: Engine, actor: Actor, data: bytes, *, source_name: str = "upload.csv") -> ImportResult:
    """What the 주문 page and the CLI call: the import in its own transaction, then, once it is
    committed, the repair of exactly the sales days and customers a backdated import changed
    (core.analytics.repair_dirty), so LTV and cohorts are current at once. If the repair cannot
    run now (the store is busy), the marks stay and the worker's rollup job repairs them."""
    with session_scope(engine) as session:
        result = import_orders(session, actor, data, source_name=source_name)
    if result.created:
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
