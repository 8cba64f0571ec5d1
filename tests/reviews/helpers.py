"""Builders for the review tests: a paid order with items and their review links (through the service)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image
from sqlalchemy import Engine
from sqlmodel import select

from core import clock
from core.db import read_scope, session_scope
from core.models import Customer, Order, OrderItem, Product, Review
from core.reviews import service


@dataclass
class Shop:
    customer_id: int
    order_id: int
    product_ids: list[int]
    tokens: list[str]  # one per item, in item order
    paid_at: datetime


_numbers = iter(range(1, 1_000_000))


def paid_order(
    engine: Engine,
    *,
    paid_at: datetime | None = None,
    names: tuple[str, ...] = ("원두 1kg", "드립백"),
    customer_id: int | None = None,
    product_ids: list[int] | None = None,
) -> Shop:
    """A paid order of `names` (one product each) and its review links, issued as the request does."""
    paid_at = paid_at or clock.now() - timedelta(days=5)
    with session_scope(engine) as s:
        if customer_id is None:
            n = next(_numbers)
            kim = Customer(name="김후기", phone=f"010-5555-{n:04d}", mobile=f"0105555{n:04d}")
            s.add(kim)
            s.flush()
            customer_id = kim.id
        if product_ids is None:
            products = [Product(name=name, price=15_000) for name in names]
            s.add_all(products)
            s.flush()
            product_ids = [p.id for p in products]  # type: ignore[misc]
        order = Order(
            order_number=f"CD-R-{next(_numbers)}",
            customer_id=customer_id,
            total_amount=30_000,
            status="paid",
            paid_at=paid_at,
            ordered_at=paid_at,
        )
        s.add(order)
        s.flush()
        for name, pid in zip(names, product_ids, strict=True):
            s.add(
                OrderItem(
                    order_id=order.id,
                    product_id=pid,
                    product_name=name,
                    quantity=1,
                    unit_price=15_000,
                    amount=15_000,
                )
            )
        s.flush()
        service.issue_links(s, [order], clock.now())
        order_id = order.id
    with read_scope(engine) as s:
        tokens = s.exec(
            select(Review.token)
            .join(OrderItem, OrderItem.id == Review.order_item_id)
            .where(OrderItem.order_id == order_id)
            .order_by(OrderItem.id)
        ).all()
    return Shop(customer_id, order_id, list(product_ids), [t for t in tokens if t], paid_at)  # type: ignore[arg-type]


def review_of(engine: Engine, token: str) -> Review:
    with read_scope(engine) as s:
        return s.exec(select(Review).where(Review.token == token)).one()


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (40, 30), exif_gps: bool = False) -> bytes:
    """A real small image; with exif_gps, a JPEG carrying a GPS block (what a phone writes)."""
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 120, 40))
    if exif_gps:
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}
        image.save(out, "JPEG", exif=exif)
    else:
        image.save(out, kind)
    return out.getvalue()
