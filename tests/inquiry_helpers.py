"""Small builders for inquiry tests (customers, orders, payments) straight through the models."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlmodel import Session

from core.clock import KST
from core.models import Customer, Order, OrderItem, Payment, PaymentStatus, Product


def k(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST).astimezone(UTC)


_NUMBERS = itertools.count(1000)


def make_customer(session: Session, name: str = "김고객", phone: str | None = None) -> Customer:
    """A customer; without a phone, a number of their own (one customer per number: a unique index)."""
    if phone is None:
        phone = f"010{next(_NUMBERS) % 9000 + 1000:04d}5678"
    customer = Customer(name=name, phone=phone)
    session.add(customer)
    session.flush()
    return customer


def make_product(session: Session, name: str = "원두 1kg", price: int = 39000) -> Product:
    product = Product(name=name, price=price)
    session.add(product)
    session.flush()
    return product


def make_order(
    session: Session,
    customer: Customer,
    product: Product | None = None,
    amount: int = 39000,
    number: str | None = None,
) -> Order:
    order = Order(
        order_number=number or f"ORD-{customer.id}-{datetime.now().timestamp()}",
        customer_id=customer.id,
        total_amount=amount,
        status="paid",
    )
    session.add(order)
    session.flush()
    if product is not None:
        session.add(
            OrderItem(
                order_id=order.id,
                product_id=product.id,
                product_name=product.name,
                quantity=1,
                unit_price=amount,
                amount=amount,
            )
        )
        session.flush()
    return order


def make_payment(
    session: Session,
    customer: Customer,
    order: Order | None,
    amount: int,
    approved_at: datetime,
    key: str,
    status: str = PaymentStatus.APPROVED,
) -> Payment:
    payment = Payment(
        order_id=order.id if order else None,
        customer_id=customer.id,
        gateway="sandbox",
        gateway_tid=f"T{key}",
        amount=amount,
        status=status,
        idempotency_key=key,
        approved_at=approved_at,
    )
    session.add(payment)
    session.flush()
    return payment
