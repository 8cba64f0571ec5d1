"""Shared helpers for the payments tests: a paid order through the sandbox, without the UI."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.models import Customer, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Role, StaffUser
from core.payments.gateways.base import ApproveRequest, ReadyRequest
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.sandbox import SandboxGateway


def stored_actors(engine: Engine) -> dict[str, Actor]:
    """One staff row per role (owner1, cs1, staff1) that cannot log in: for tests that need who did
    something, not a login. Hashing three passwords (argon2, ~0.6 s CPU) was most of each refund
    store test's time, and the mutation run repeats those tests for every mutant."""
    with Session(engine) as session:
        users = [
            StaffUser(
                username=f"{role.value}1",
                display_name=f"{role.value} 담당",
                role=role.value,
                password_hash="!",
            )
            for role in Role
        ]
        session.add_all(users)
        session.commit()
        return {u.role: Actor(id=u.id, name=u.display_name, role=Role(u.role)) for u in users}


def sandbox_router(engine: Engine) -> tuple[SandboxGateway, PaymentRouter]:
    sandbox = SandboxGateway(engine)
    return sandbox, PaymentRouter(sandbox, sleep=lambda _s: None)


def paid_order(
    engine: Engine,
    sandbox: SandboxGateway,
    *,
    amount: int = 30_000,
    tax_free: int = 0,
    number: str = "T-0001",
    name: str = "김민지",
    phone: str = "01012345678",
) -> Payment:
    """A customer, an order and an approved sandbox payment, as a paid link leaves them."""
    with Session(engine, expire_on_commit=False) as session:
        customer = Customer(name=name, phone=phone)
        session.add(customer)
        session.commit()  # the sandbox writes on its own connection: hold no write lock meanwhile
        ready = sandbox.ready(ReadyRequest(
            partner_order_id=number,
            partner_user_id=customer.public_id,
            item_name="상품",
            quantity=1,
            total_amount=amount,
            tax_free_amount=tax_free,
            approval_url="a",
            cancel_url="c",
            fail_url="f",
        ))
        token = sandbox.select_method(ready.tid, "CARD")
        approved = sandbox.approve(ApproveRequest(
            tid=ready.tid, partner_order_id=number, partner_user_id=customer.public_id, pg_token=token
        ))
        order = Order(
            order_number=number,
            customer_id=customer.id,
            total_amount=amount,
            tax_free_amount=tax_free,
            status=OrderStatus.PAID,
            paid_at=clock.now(),
        )
        session.add(order)
        session.flush()
        session.add(
            OrderItem(order_id=order.id, product_name="상품", quantity=1, unit_price=amount, amount=amount)
        )
        payment = Payment(
            order_id=order.id,
            customer_id=customer.id,
            gateway="sandbox",
            gateway_tid=approved.tid,
            method="CARD",
            amount=amount,
            tax_free_amount=tax_free,
            status=PaymentStatus.APPROVED,
            idempotency_key=f"pay:{number}",
            approved_at=approved.approved_at,
        )
        session.add(payment)
        session.commit()
        return payment
