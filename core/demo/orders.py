"""The demo's one-off orders (with items, payment, refund, link and review) and its unpaid payment links
(part of the generator)."""

from __future__ import annotations

import bisect
import json
from collections import deque
from datetime import date, timedelta
from typing import Any

from core.demo.catalog import GATEWAY, LINK_TTL_S, PRODUCTS, REFUND_REASONS, REVIEW_TEXT, WINDOW_DAYS
from core.demo.writer import (
    CHUNK,
    KST_OFFSET_S,
    LINK_COLS,
    LINK_PAID,
    ORDER_CANCELED,
    ORDER_PAID,
    ORDER_PARTIALLY_REFUNDED,
    ORDER_PENDING,
    ORDER_REFUNDED,
    PAY_APPROVED,
    PAY_FAILED,
    PAY_PARTIALLY_REFUNDED,
    PAY_REFUNDED,
    Buffers,
    kst_date,
    kst_seconds,
)
from core.models import PaymentLinkStatus
from core.payments.links import code_order_id


class OrdersPart:
    """Mixed into the generator: uses its ids, buffers, writer and random source."""

    # -- one-off orders ------------------------------------------------------------------------
    def _order_times(self, n: int) -> list[int]:
        """Order instants over the window: growing shop, busier weekends, evening peak (KST)."""
        rng = self.rng
        days = WINDOW_DAYS
        first_day = kst_date(self.start)
        day_weights = []
        for d in range(days + 1):
            day = first_day + timedelta(days=d)
            weight = 1.0 + 0.6 * d / days  # growth
            if day.weekday() >= 5:
                weight *= 1.25
            day_weights.append(weight)
        hour_weights = [3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 10, 8, 7, 7, 8, 10, 13, 15, 16, 13, 7]
        day_pick = rng.choices(range(days + 1), weights=day_weights, k=n)
        hour_pick = rng.choices(range(24), weights=hour_weights, k=n)
        base = kst_seconds(first_day, 0)
        times = []
        low, high = self.start, self.now - 60
        for d, h in zip(day_pick, hour_pick, strict=True):
            t = base + d * 86400 + h * 3600 + int(rng.random() * 3600)
            if t < low or t > high:
                t = rng.randint(max(low, high - 14 * 86400), high)
            times.append(t)
        times.sort()
        return times

    def _orders(self, n: int) -> None:
        rng, now = self.rng, self.now
        times = self._order_times(n)
        self.recent_paid: deque[tuple[int, int, int, int, int, int]] = deque(maxlen=4000)
        self.sample_paid: list[tuple[int, int, int, int, int, int]] = []
        self.sample_refunded: list[tuple[int, int, int, int, int, int]] = []
        self.paid_links = 0
        sample_p = min(1.0, 4000 / max(n, 1))
        order_first = self._take("orders", n)
        self.last_order_id = order_first + n - 1
        for chunk_start in range(0, n, CHUNK):
            buf = Buffers.empty()
            for offset, t in enumerate(times[chunk_start : chunk_start + CHUNK]):
                oid = order_first + chunk_start + offset
                entry = self._one_order(buf, oid, t, now)
                if entry is not None:
                    if t > now - 14 * 86400:
                        self.recent_paid.append(entry)
                    if rng.random() < sample_p:
                        (self.sample_refunded if entry[4] else self.sample_paid).append(entry)
            self._flush(buf)
            done = min(chunk_start + CHUNK, n)
            if done % 100_000 == 0 or done == n:
                self.progress(f"주문 {done:,}/{n:,} (orders)")
        self._count("orders", n)

    def _one_order(
        self, buf: Buffers, oid: int, t: int, now: int
    ) -> tuple[int, int, int, int, int, int] | None:
        """Build one order with its items, payment, refund, link and review; return it if paid.

        The hot loop of a million-order seed: plain tuples, cached strings, no enums or objects.
        """
        rng, ts = self.rng, self.w.ts
        random_ = rng.random
        cid = self._pick_customer(t)
        roll = random_()
        n_items = 1 if roll < 0.7 else (2 if roll < 0.92 else 3)
        sale_products, sale_cum = self.sale_products, self.sale_cum
        top = sale_cum[-1]
        chosen: list[int] = []
        for _ in range(n_items):
            index = sale_products[bisect.bisect_right(sale_cum, random_() * top)]
            if index not in chosen:
                chosen.append(index)
        total = tax_free = units = 0
        shipped = False
        item_id = first_item = self.ids["order_item"]
        self.ids["order_item"] = item_id + len(chosen)
        last_unit = 0
        last_tax_free = False
        items = buf.items
        for index in chosen:
            spec = PRODUCTS[index]
            q = random_()
            limit = spec.max_quantity
            quantity = 1 if (q < 0.8 or limit == 1) else (2 if (q < 0.95 or limit == 2) else 3)
            price = spec.price
            amount = price * quantity
            total += amount
            units += quantity
            if spec.is_tax_free:
                tax_free += amount
            shipped = shipped or spec.shipped
            last_unit, last_tax_free = price, spec.is_tax_free
            items.append((item_id, oid, self.product_ids[index], spec.name, quantity, price, amount))
            item_id += 1

        age = now - t
        roll = random_()
        if roll < 0.015:
            status = ORDER_CANCELED
        elif (age < 2 * 86400 and roll < 0.2) or oid == self.last_order_id:
            status = ORDER_PENDING  # not paid yet (the newest order always, so even a tiny demo has one)
        else:
            status = ORDER_PAID
        source = "chat"
        link_id = paid_at = paid_ts = delivered_at = shipping = ship_date = tracking = None
        refunded = 0
        entry = None
        number = f"{self._order_prefix((t + KST_OFFSET_S) // 86400)}{oid:07d}"
        first_name = PRODUCTS[chosen[0]].name
        item_name = first_name if len(chosen) == 1 else f"{first_name} 외 {len(chosen) - 1}건"
        if status is ORDER_CANCELED:
            if random_() < 0.5:  # a declined card before the customer gave up
                pid = self._take("payment")
                payment = (
                    pid, oid, cid, GATEWAY, self._tid(pid), "CARD", total, tax_free, 0, PAY_FAILED,
                    f"pay:{oid}", None, "CARD_DECLINED", "카드사 승인 거절", "[]", ts(t + 30),
                )  # fmt: skip
                buf.payments.append(payment)
                self._gateway_payment(buf, payment, number, item_name, units)
        elif status is ORDER_PAID:
            pid = self._take("payment")
            paid_at = min(t + 5 + int(random_() * 300), now)
            paid_ts = ts(paid_at)  # on the order, its payment and its link
            method = "CARD" if random_() < 0.65 else "MONEY"
            pay_status = PAY_APPROVED
            if shipped:
                shipping = "택배"
                ship_date = self._ship_day((paid_at + KST_OFFSET_S) // 86400 + 1)
                if age > 86400:
                    tracking = f"https://tracking.example.com/cj/{(oid * 9_973_331) % 10**12:012d}"
                delivered = paid_at + 86400 + int(random_() * 2 * 86400)
                if delivered < now:
                    delivered_at = delivered
            partner_order_id = number
            if len(chosen) == 1 and random_() < 0.1:
                source = "link"
                link_id = self._take("payment_link")
                link_created = t - 60 - int(random_() * 20 * 3600)
                code = f"L{link_id:07d}{rng.getrandbits(24):06x}"
                partner_order_id = code_order_id(code)
                buf.links.append((
                    link_id, code, self.product_ids[chosen[0]], cid, None,
                    PRODUCTS[chosen[0]].name, total, tax_free, None, LINK_PAID, GATEWAY, self._tid(pid),
                    self._staff(), ts(link_created), ts(t - 30), paid_ts, ts(link_created + LINK_TTL_S), None,
                    oid,
                ))  # fmt: skip
            refund_roll = random_()
            cancel = None
            if refund_roll < 0.035 and age > 86400:
                refund_at = paid_at + 3600 + int(random_() * 7 * 86400)
                if refund_at < now:
                    if refund_roll < 0.02 or units == 1:
                        amount, refund_tax_free = total, tax_free
                        status, pay_status, gateway_status = ORDER_REFUNDED, PAY_REFUNDED, "CANCEL_PAYMENT"
                    else:  # one unit back
                        amount, refund_tax_free = last_unit, (last_unit if last_tax_free else 0)
                        status, pay_status = ORDER_PARTIALLY_REFUNDED, PAY_PARTIALLY_REFUNDED
                        gateway_status = "PART_CANCEL_PAYMENT"
                    refunded = amount
                    refund_id, reason = self._take("refund"), rng.choice(REFUND_REASONS)
                    buf.refunds.append((
                        refund_id, pid, oid, amount, refund_tax_free, reason,
                        "succeeded", f"refund:{pid}:1", self._staff(),
                        json.dumps({"status": gateway_status, "approved_cancel_amount": {"total": amount}}),
                        ts(refund_at), ts(refund_at + 2),
                    ))  # fmt: skip
                    cancel = (refund_id, amount, refund_tax_free, refund_at + 1, f"refund:{pid}:1", reason)
            payment = (
                pid, oid, cid, GATEWAY, self._tid(pid), method, total, tax_free, refunded, pay_status,
                f"pay:{oid}", paid_ts, None, None, "[]", ts(t + 2),
            )  # fmt: skip
            buf.payments.append(payment)
            self._gateway_payment(
                buf,
                payment,
                partner_order_id,
                item_name,
                units,
                cancel=cancel,
            )
            entry = (oid, cid, pid, total, refunded, tax_free)
            if delivered_at is not None and refunded == 0 and random_() < 0.12:
                review_at = delivered_at + int(random_() * 10 * 86400)
                if review_at < now:
                    rating = rng.choices((1, 2, 3, 4, 5), cum_weights=(2, 5, 13, 38, 100))[0]
                    at = ts(review_at)
                    buf.reviews.append((
                        self._take("review"), oid, cid, self.product_ids[chosen[0]], first_item, rating,
                        rng.choice(REVIEW_TEXT[rating]), at, at, at,
                    ))  # fmt: skip
        buf.orders.append((
            oid, number, cid, total, tax_free, shipping,
            ship_date, tracking, source, status, ts(t), paid_ts, ts(delivered_at), refunded, link_id, None,
        ))  # fmt: skip
        return entry

    def _ship_day(self, kst_day_number: int) -> Any:
        value = self._ship_days.get(kst_day_number)
        if value is None:
            value = self._ship_days[kst_day_number] = self.w.day(
                date(1970, 1, 1) + timedelta(days=kst_day_number)
            )
        return value

    # -- payment links that were not paid ------------------------------------------------------
    def _unpaid_links(self, n_orders: int) -> None:
        rng, w, now = self.rng, self.w, self.now
        n = max(12, n_orders // 60)
        first = self._take("payment_link", n)
        rows = []
        # The first few are recent and still in the funnel, so every status shows on a small demo.
        forced = [
            PaymentLinkStatus.CREATED,
            PaymentLinkStatus.OPENED,
            PaymentLinkStatus.METHOD_SELECTED,
            PaymentLinkStatus.QUIT,
            PaymentLinkStatus.FAILED,
            PaymentLinkStatus.EXPIRED,
        ]
        for i in range(n):
            lid = first + i
            product_index = self.sale_products[
                bisect.bisect_right(self.sale_cum, rng.random() * self.sale_cum[-1])
            ]
            spec = PRODUCTS[product_index]
            status = forced[i] if i < len(forced) else None
            if status in (
                PaymentLinkStatus.CREATED,
                PaymentLinkStatus.OPENED,
                PaymentLinkStatus.METHOD_SELECTED,
            ):
                created = now - rng.randint(600, 2 * 86400)
            elif status is PaymentLinkStatus.EXPIRED:
                created = now - rng.randint(4 * 86400, WINDOW_DAYS * 86400)
            else:
                created = rng.randint(self.start, now - 600)
            expires = created + LINK_TTL_S
            if status is None:
                roll = rng.random()
                funnel = (
                    PaymentLinkStatus.CREATED
                    if roll < 0.4
                    else PaymentLinkStatus.OPENED
                    if roll < 0.75
                    else PaymentLinkStatus.METHOD_SELECTED
                )
                quit_roll = rng.random()
                if quit_roll < 0.2:
                    status = PaymentLinkStatus.QUIT
                elif quit_roll < 0.28:
                    status = PaymentLinkStatus.FAILED
                else:
                    status = funnel if expires > now else PaymentLinkStatus.EXPIRED
            opened = None
            if status is not PaymentLinkStatus.CREATED and (
                status is not PaymentLinkStatus.EXPIRED or rng.random() < 0.5
            ):
                opened = min(created + rng.randint(60, 6 * 3600), now - 1)
            reminder = None
            if status is not PaymentLinkStatus.CREATED and created + 86400 < now and rng.random() < 0.5:
                reminder = created + 86400
            rows.append(
                (
                    lid,
                    f"L{lid:07d}{rng.getrandbits(24):06x}",
                    self.product_ids[product_index],
                    self._pick_customer(created),
                    None,
                    spec.name,
                    spec.price,
                    spec.price if spec.is_tax_free else 0,
                    None,
                    status.value,
                    GATEWAY if opened else None,
                    None,
                    self._staff(),
                    w.ts(created),
                    w.ts(opened),
                    None,
                    w.ts(expires),
                    w.ts(reminder),
                    None,
                )
            )
        w.insert("payment_link", LINK_COLS, rows)
        self._count("payment_links", n)
