"""The demo generator: ids, customers, products, orders with payments, refunds, links and reviews."""

from __future__ import annotations

import bisect
import json
import random
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from core.customers.identity import identify
from core.demo.catalog import (
    GATEWAY,
    GIVEN_NAMES,
    LINK_TTL_S,
    PLANS,
    PRODUCTS,
    REFUND_REASONS,
    REVIEW_TEXT,
    SURNAMES,
    WINDOW_DAYS,
    cumulative,
)
from core.demo.inquiries import InquiriesPart
from core.demo.subscriptions import SubscriptionsPart
from core.demo.writer import (
    CHUNK,
    CUSTOMER_COLS,
    GATEWAY_STATUS,
    ITEM_COLS,
    KST_OFFSET_S,
    LINK_COLS,
    LINK_PAID,
    ORDER_CANCELED,
    ORDER_COLS,
    ORDER_PAID,
    ORDER_PARTIALLY_REFUNDED,
    ORDER_PENDING,
    ORDER_REFUNDED,
    PAY_APPROVED,
    PAY_FAILED,
    PAY_PARTIALLY_REFUNDED,
    PAY_REFUNDED,
    PAYMENT_COLS,
    PLAN_COLS,
    PRODUCT_COLS,
    REFUND_COLS,
    REVIEW_COLS,
    Buffers,
    Writer,
    iso,
    kst_date,
    kst_seconds,
)
from core.models import (
    PaymentLinkStatus,
)
from core.money import vat_of
from core.payments.gateways.sandbox import ONE_TIME_CID, PAYMENT_COLUMNS, RECURRING_CID
from core.payments.links import code_order_id

# Big loads drop these tables' secondary indexes and rebuild them at the end (same transaction).
BULK_TABLES = (
    "customer",
    "orders",
    "order_item",
    "payment",
    "refund",
    "payment_link",
    "review",
    "sandbox_payment",
)
BULK_INDEX_THRESHOLD = 50_000
# Store chunks from a second thread while the next chunk is built. Off by default: on this 2-core
# machine under load it cost ~15% more CPU and was slower (bench/seed.py --background-writer to compare).
BACKGROUND_WRITER = False

class Generator(SubscriptionsPart, InquiriesPart):
    def __init__(
        self, connection: Connection, rng: random.Random, now: datetime, progress: Callable[[str], None]
    ) -> None:
        self.w = Writer(connection)
        self.connection = connection
        self.rng = rng
        self.now = int(now.timestamp())
        self.today = kst_date(self.now)
        self.start = self.now - WINDOW_DAYS * 86400
        self.progress = progress
        self.counts: dict[str, int] = {}
        self.ids = {
            name: self._next_id(name)
            for name in (
                "customer",
                "product",
                "subscription_plan",
                "orders",
                "order_item",
                "payment",
                "refund",
                "payment_link",
                "review",
                "subscription",
                "subscription_charge",
                "subscription_event",
                "inquiry",
                "inquiry_event",
            )
        }
        self.staff_ids = self._staff_ids()
        # KakaoPay ids are 20 chars and grow with time; a seeded base keeps them unique and ordered.
        self.tid_base = rng.randrange(10**17, 9 * 10**18)
        self._order_prefixes: dict[int, str] = {}
        self._ship_days: dict[int, Any] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _next_id(self, table: str) -> int:
        return int(
            self.connection.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"').scalar_one()
        )

    def _staff_ids(self) -> list[int | None]:
        rows = self.connection.exec_driver_sql("SELECT id FROM staff_user ORDER BY id").all()
        return [row[0] for row in rows] or [None]

    def _take(self, table: str, n: int = 1) -> int:
        first = self.ids[table]
        self.ids[table] += n
        return first

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _tid(self, payment_id: int) -> str:
        # 20 chars like KakaoPay's; a bijection of the id, so unique without a lookup.
        return f"T{self.tid_base + payment_id:019d}"

    def _staff(self) -> int | None:
        return self.rng.choice(self.staff_ids)

    def _gateway_payment(
        self,
        buf: Buffers,
        payment: tuple[Any, ...],
        partner_order_id: str,
        item_name: str,
        quantity: int,
        *,
        cancel: tuple[int, int, int, int, str, str] | None = None,
        sid: str | None = None,
    ) -> None:
        """The sandbox's row of a seeded payment (a PAYMENT_COLS tuple), so the gateway knows it.

        `cancel` is the seeded refund (id, amount, tax-free part, instant, our key, reason); the
        gateway records it under the key core.payments.refunds sends (refund:{key}), so a repeat is a no-op.
        `sid` marks a subscription charge: recurring CID, the SID, and the charge key billing sends.
        Times are the payment's own (created, approved), already in the driver's shape.
        """
        pid, total, tax_free, status, key, approved_at = (
            payment[0], payment[6], payment[7], payment[9], payment[10], payment[11],
        )  # fmt: skip
        aid = actions = None
        if approved_at is None:
            actions = "[]"
        else:
            aid = f"A{self.tid_base + pid:019d}"
            actions = (
                f'[{{"aid": "{aid}", "approved_at": "{iso(approved_at)}", "amount": {total}, '
                '"payment_action_type": "PAYMENT"}'
            )
            if cancel is not None:
                refund_id, amount, _tax_free, at, refund_key, reason = cancel
                canceled_at = iso(self.w.ts(at))
                actions += ", " + json.dumps(
                    {
                        "aid": f"A{refund_id:019d}",
                        "approved_at": canceled_at,
                        "amount": amount,
                        "payment_action_type": "CANCEL",
                        "idempotency_key": f"refund:{refund_key}",
                        "canceled_at": canceled_at,
                        "reason": reason,
                    },
                    ensure_ascii=False,
                )
            actions += "]"
        buf.gateway.append((
            payment[4], ONE_TIME_CID if sid is None else RECURRING_CID, partner_order_id,
            self.public_ids[payment[2] - self.customer_first], item_name, quantity, total, tax_free,
            vat_of(total, tax_free), GATEWAY_STATUS[status], payment[5], aid, sid,
            key if (sid is not None and aid is not None) else None, payment[8],
            cancel[2] if cancel is not None else 0, actions, payment[15], approved_at,
        ))  # fmt: skip

    # -- run -----------------------------------------------------------------------------------
    def run(self, n_customers: int, n_orders: int) -> dict[str, int]:
        # Filling a table and then building its indexes once (a sort) beats updating every index
        # row by row; the definitions are read back from the database, so they come back exactly.
        indexes = self._drop_indexes(BULK_TABLES) if n_orders >= BULK_INDEX_THRESHOLD else []
        if BACKGROUND_WRITER:
            self.w.start_background()
        try:
            self._products()
            self._customers(n_customers)
            self._subscriptions()
            self._orders(n_orders)
            self._unpaid_links(n_orders)
            self._inquiries(n_orders)
        finally:
            self.w.finish()  # on an error too: the writer must stop before the rollback
        if indexes:
            self.progress(f"rebuilding {len(indexes)} indexes")
        for _name, definition in indexes:
            self.connection.exec_driver_sql(definition)
        return dict(self.counts)

    def _drop_indexes(self, tables: Sequence[str]) -> list[tuple[str, str]]:
        names = ", ".join(f"'{t}'" for t in tables)
        if self.w.postgres:
            rows = self.connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                f"AND tablename IN ({names}) AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)"
            ).all()
        else:
            rows = self.connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({names}) ORDER BY name"
            ).all()
        indexes = [(row[0], row[1]) for row in rows]
        for name, _definition in indexes:
            self.connection.exec_driver_sql(f'DROP INDEX "{name}"')
        return indexes

    # -- catalogue -----------------------------------------------------------------------------
    def _products(self) -> None:
        w, created = self.w, self.w.ts(self.start - 30 * 86400)
        first = self._take("product", len(PRODUCTS))
        self.product_ids = [first + i for i in range(len(PRODUCTS))]
        w.insert(
            "product",
            PRODUCT_COLS,
            [
                (
                    first + i,
                    p.name,
                    p.category,
                    p.price,
                    w.true if p.is_tax_free else w.false,
                    p.replenishment_days,
                    None,
                    w.true if p.is_subscription else w.false,
                    w.true,
                    None,
                    created,
                )
                for i, p in enumerate(PRODUCTS)
            ],
        )
        self._count("products", len(PRODUCTS))
        first_plan = self._take("subscription_plan", len(PLANS))
        self.plan_ids = [first_plan + i for i in range(len(PLANS))]
        w.insert(
            "subscription_plan",
            PLAN_COLS,
            [
                (first_plan + i, name, self.product_ids[product], amount, 0, unit, count, w.true)
                for i, (name, product, amount, unit, count, _weight) in enumerate(PLANS)
            ],
        )
        self._count("subscription_plans", len(PLANS))
        self.sale_products = [i for i, p in enumerate(PRODUCTS) if p.weight]
        cum, total = [], 0
        for i in self.sale_products:
            total += PRODUCTS[i].weight
            cum.append(total)
        self.sale_cum = cum

    # -- customers -----------------------------------------------------------------------------
    def _customers(self, n: int) -> None:
        rng, w = self.rng, self.w
        surnames = [s for s, _ in SURNAMES]
        surname_cum = list(cumulative([weight for _, weight in SURNAMES]))
        # 40% joined before the window (some over 2 years ago: consent reconfirmation is due), the rest
        # join through the window. Sorted, so id order is join order and "who existed at t" is a prefix.
        n_before = max(1, int(n * 0.4))
        joined = sorted(
            [self.start - rng.randint(1, 3 * 365) * 86400 + rng.randint(0, 86399) for _ in range(n_before)]
            + [rng.randint(self.start, self.now - 3600) for _ in range(n - n_before)]
        )
        phones = rng.sample(range(10**8), n)
        first = self._take("customer", n)
        self.customer_first = first
        self.customer_joined = joined
        # Heavy-tailed appetite: a few loyal regulars, many one-time buyers.
        weights = [rng.lognormvariate(0.0, 1.25) for _ in range(n)]
        self.customer_cum = list(cumulative(weights))
        # The partner_user_id the gateway knows each customer by (the sandbox rows carry it).
        self.public_ids = public_ids = [f"{rng.getrandbits(80):020x}" for _ in range(n)]
        rows = []
        for i in range(n):
            name = rng.choices(surnames, cum_weights=surname_cum)[0] + rng.choice(GIVEN_NAMES)
            # Through identity like every path in: the display form and the canonical mobile (unique:
            # the sampled numbers are distinct); a number outside the mobile plan is kept, never sent to.
            found = identify(f"010-{phones[i] // 10000:04d}-{phones[i] % 10000:04d}")
            phone = found.display
            created = joined[i]
            consent = night = opt_out = None
            roll = rng.random()
            if roll < 0.62:
                consent = created + rng.randint(0, 3 * 86400)
                if consent > self.now:
                    consent = self.now - 60
                if rng.random() < 0.25:
                    night = consent
                if rng.random() < 0.12:
                    opt_out = consent + rng.randint(86400, max(86401, self.now - consent))
                    opt_out = min(opt_out, self.now - 60)
            rows.append(
                (
                    first + i,
                    name,
                    phone,
                    found.mobile,
                    w.true if rng.random() < 0.86 else w.false,
                    public_ids[i],
                    w.ts(consent),
                    w.ts(night),
                    w.ts(opt_out),
                    w.ts(created),
                )
            )
            if len(rows) >= CHUNK:
                w.insert("customer", CUSTOMER_COLS, rows)
                rows = []
        w.insert("customer", CUSTOMER_COLS, rows)
        self._count("customers", n)

    def _pick_customer(self, at: int) -> int:
        """A customer who had joined by `at`, weighted by appetite (repeat buyers)."""
        k = bisect.bisect_right(self.customer_joined, at) or 1
        index = bisect.bisect_right(self.customer_cum, self.rng.random() * self.customer_cum[k - 1], 0, k - 1)
        return self.customer_first + index

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
                self.progress(f"orders {done:,}/{n:,}")
        self._count("orders", n)

    def _flush(self, buf: Buffers) -> None:
        w = self.w
        w.insert("payment_link", LINK_COLS, buf.links)
        w.insert("orders", ORDER_COLS, buf.orders)
        w.insert("order_item", ITEM_COLS, buf.items)
        w.insert("payment", PAYMENT_COLS, buf.payments)
        w.insert("refund", REFUND_COLS, buf.refunds)
        w.insert("review", REVIEW_COLS, buf.reviews)
        w.insert("sandbox_payment", PAYMENT_COLUMNS, buf.gateway)
        for name, rows in (
            ("payment_links", buf.links),
            ("order_items", buf.items),
            ("payments", buf.payments),
            ("refunds", buf.refunds),
            ("reviews", buf.reviews),
            ("sandbox_payments", buf.gateway),
        ):
            self._count(name, len(rows))

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
        link_id = paid_at = delivered_at = shipping = ship_date = tracking = None
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
                    self._staff(), ts(link_created), ts(t - 30), ts(paid_at), ts(link_created + LINK_TTL_S), None,
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
                f"pay:{oid}", ts(paid_at), None, None, "[]", ts(t + 2),
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
            ship_date, tracking, source, status, ts(t), ts(paid_at), ts(delivered_at), refunded, link_id, None,
        ))  # fmt: skip
        return entry

    def _order_prefix(self, kst_day_number: int) -> str:
        prefix = self._order_prefixes.get(kst_day_number)
        if prefix is None:
            day = date(1970, 1, 1) + timedelta(days=kst_day_number)
            prefix = self._order_prefixes[kst_day_number] = f"CD{day.strftime('%y%m%d')}-"
        return prefix

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

    # -- subscriptions -------------------------------------------------------------------------
