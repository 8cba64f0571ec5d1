"""The demo generator: ids, products and customers, and the parts that add orders, subscriptions and
inquiries (orders.py, subscriptions.py, inquiries.py, mixed in)."""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from core.customers.identity import identify
from core.demo.catalog import (
    GIVEN_NAMES,
    PLANS,
    PRODUCTS,
    SURNAMES,
    WINDOW_DAYS,
    cumulative,
)
from core.demo.inquiries import InquiriesPart
from core.demo.orders import OrdersPart
from core.demo.subscriptions import SubscriptionsPart
from core.demo.writer import (
    CHUNK,
    CUSTOMER_COLS,
    GATEWAY_STATUS,
    ITEM_COLS,
    LINK_COLS,
    ORDER_COLS,
    PAYMENT_COLS,
    PLAN_COLS,
    PRODUCT_COLS,
    REFUND_COLS,
    REVIEW_COLS,
    Buffers,
    Writer,
    create_indexes,
    drop_indexes,
    iso,
    kst_date,
)
from core.money import vat_of
from core.payments.gateways.sandbox import ONE_TIME_CID, PAYMENT_COLUMNS, RECURRING_CID

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
# The customer summaries, rebuilt from the loaded orders (core.customers.summary); same treatment.
SUMMARY_TABLES = ("customer_summary", "customer_product_summary")
# Store chunks from a second thread while the next chunk is built. Off by default: on this 2-core
# machine under load it cost ~15% more CPU and was slower (bench/seed.py --background-writer to compare).
BACKGROUND_WRITER = False


class Generator(OrdersPart, SubscriptionsPart, InquiriesPart):
    """One demo data set: ids taken in order, rows built as tuples and handed to the writer in chunks."""

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
        indexes = drop_indexes(self.connection, BULK_TABLES) if n_orders >= BULK_INDEX_THRESHOLD else []
        if BACKGROUND_WRITER:
            self.w.start_background()
        try:
            self.progress("상품, 고객 (products, customers)")
            self._products()
            self._customers(n_customers)
            self.progress("정기결제 (subscriptions)")
            self._subscriptions()
            self.progress("주문 (orders)")
            self._orders(n_orders)
            self.progress("미결제 링크, 문의 (unpaid links, inquiries)")
            self._unpaid_links(n_orders)
            self._inquiries(n_orders)
        finally:
            self.w.finish()  # on an error too: the writer must stop before the rollback
        if indexes:
            self.progress(f"색인 {len(indexes)}개 만들기 (rebuilding {len(indexes)} indexes)")
        create_indexes(self.connection, indexes)
        return dict(self.counts)

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

    def _order_prefix(self, kst_day_number: int) -> str:
        prefix = self._order_prefixes.get(kst_day_number)
        if prefix is None:
            day = date(1970, 1, 1) + timedelta(days=kst_day_number)
            prefix = self._order_prefixes[kst_day_number] = f"CD{day.strftime('%y%m%d')}-"
        return prefix
