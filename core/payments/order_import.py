"""Import orders from a shop's export: read and validated whole by core.payments.import_rows (the
fields and the rules: docs/order-import.md), then written all or nothing: customers found by phone
through core.customers (every typed form of one number is one customer), products by code or name,
orders, items, payments and refunds in bulk, the store's refunds checked; idempotent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from core import analytics, clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers import service as customers
from core.customers import summary as customer_summary
from core.db import analyze, session_scope
from core.models import (
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    Product,
    Refund,
    RefundStatus,
    Role,
)
from core.payments.import_cells import same_name
from core.payments.import_rows import (
    IMPORT_REFUND_REASON,
    PAYMENT_STATUS_OF,
    ImportRejected,
    Line,
    OrderDraft,
    RefundDraft,
    RowError,
    parse_file,
    status_of,
)
from core.payments.import_store import bulk_insert, matching, no_gc_pauses


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
    repaired: dict[str, int] = field(default_factory=dict)  # days and customers run_import's rollup repaired
    rollup: dict[str, int] = field(default_factory=dict)  # core.analytics.refresh_rollups' counts after the commit
    rollup_failed: str | None = None  # why the rollup could not run now (the worker's job does it later)

    @property
    def rolled_up(self) -> int:
        """Sales the rollup step after the commit added to the 매출 rollups (all of a first build)."""
        return self.rollup.get("orders", 0)


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
    with no_gc_pauses():
        return _import(session, actor, data, source_name, mapping)


def _import(
    session: Session, actor: Actor, data: bytes, source_name: str, mapping: dict[str, str] | None
) -> ImportResult:
    parsed = parse_file(data, mapping)
    result = ImportResult()
    order_number = Order.__table__.c.order_number
    existing = set(matching(session, order_number, list(parsed.orders)))
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
    known = set(matching(session, Refund.__table__.c.idempotency_key, [r.key for r in refunds]))
    result.refunds_skipped += sum(1 for r in refunds if r.key in known)
    fresh = [r for r in refunds if r.key not in known]
    if not fresh:
        return []
    o = Order.__table__.c
    numbers = sorted({r.order_number for r in fresh})
    rows = {
        number: (order_id, customer_id, total, refunded, tax_free, source, status)
        for number, order_id, customer_id, total, refunded, tax_free, source, status in matching(
            session, o.order_number, numbers, o.id, o.customer_id, o.total_amount, o.refunded_amount,
            o.tax_free_amount, o.source, o.status,
        )
    }
    payments = dict(
        matching(session, Payment.__table__.c.idempotency_key, [f"import:{n}" for n in numbers],
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
        code: (product_id, name) for code, product_id, name in matching(session, p.code, codes, p.id, p.name)
    }
    errors: list[RowError] = []
    ids: dict[tuple[str | None, str], int] = {}
    for (code, name), line in wanted.items():
        if code is not None and code in by_code:
            product_id, stored_name = by_code[code]
            if same_name(stored_name) != name:
                errors.append(RowError(
                    line.row, f"상품번호 {code}은(는) 이미 '{stored_name}' 상품입니다 (파일: '{name}')"
                ))
            ids[(code, name)] = product_id
    if errors:
        raise ImportRejected(errors)
    names = sorted({name for key, name in wanted.items() if key not in ids for name in [key[1]]})
    by_name: dict[str, tuple[int, str | None]] = {}
    for name, product_id, code in matching(session, p.name, names, p.id, p.code):
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
        bulk_insert(session, Product.__table__, list(new.values()))
        coded = [code for code, _ in new if code is not None]
        for code, product_id in matching(session, p.code, coded, p.id):
            for key in new:
                if key[0] == code:
                    ids[key] = product_id
        plain = [name for code, name in new if code is None]
        for name, product_id in matching(session, p.name, plain, p.id, where=p.code.is_(None)):
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
    bulk_insert(session, Order.__table__, order_values)
    order_ids = dict(matching(session, Order.__table__.c.order_number, [d.number for d in drafts], Order.__table__.c.id))
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
    bulk_insert(session, OrderItem.__table__, items)
    bulk_insert(
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
            matching(
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

    Core's executemany, not bulk_insert's COPY: it serialises the JSON column on every driver, and
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
        status = status_of(entry.total, refunded)
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


def run_import(
    engine: Engine,
    actor: Actor,
    data: bytes,
    *,
    source_name: str = "upload.csv",
    mapping: dict[str, str] | None = None,
) -> ImportResult:
    """What the 주문 page and the CLI call: the import in its own transaction, then, once it is
    committed, the 매출 rollups brought up to date the way the worker does
    (core.analytics.catch_up: a store never rolled up is built from its first sale, else the days
    and customers a backdated import marked are repaired and the new sales rolled forward), so
    the 매출 page reads rollups, not the whole imported history, from the first minute. If that
    step cannot run now (the store busy, the worker moving the watermark), the import stays
    committed, `rollup_failed` says why, and the worker's rollup job finishes it. A re-import
    that added nothing leaves the rollups alone (cheap)."""
    with session_scope(engine) as session:
        result = import_orders(session, actor, data, source_name=source_name, mapping=mapping)
    if result.created or result.refunds_created:
        # Planner statistics for the new rows (core.db.analyze says why); if the store is busy,
        # only slower plans until the next ANALYZE: the rollup below is still right.
        with contextlib.suppress(SQLAlchemyError):
            analyze(engine)
        outcome = analytics.catch_up(engine, clock.now())
        result.rollup = outcome.counts
        result.rollup_failed = outcome.failed
        result.repaired = {k: outcome.counts[k] for k in ("repaired_days", "repaired_customers") if k in outcome.counts}
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
    for name, customer_id in matching(
        session, customer.name, names, customer.id, where=customer.phone.is_(None)
    ):
        ids.setdefault(f"name:{name}", customer_id)
    now = clock.now()
    new: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = _customer_key(row)
        if key not in ids and key not in new:
            new[key] = customers.new_row(row["customer_name"], row["customer_phone"], None, now)
    if new:
        bulk_insert(session, Customer.__table__, list(new.values()))
        key_of = {values["public_id"]: key for key, values in new.items()}
        for public, customer_id in matching(session, customer.public_id, list(key_of), customer.id):
            ids[key_of[public]] = customer_id
        result.customers_created = len(new)
    result.customers_created += matched.created
    return ids
