"""The demo's inquiries: open and resolved ones of every type, and the one open 이중 결제 (part of the generator)."""

from __future__ import annotations

import bisect
import json

from core.demo.catalog import GATEWAY, INQUIRY_TEXT, PRODUCTS, REPLIES, SLA_TARGET_MINUTES, WINDOW_DAYS
from core.demo.writer import EVENT_COLS, INQUIRY_COLS, KST_OFFSET_S, ORDER_PAID, PAY_APPROVED, Buffers
from core.models import (
    InquiryStatus,
    InquiryType,
)


class InquiriesPart:
    """Mixed into the generator: uses its ids, buffers, writer and random source."""

    def _inquiries(self, n_orders: int) -> None:
        rng, w, now = self.rng, self.w, self.now
        cs_ids = self.staff_ids
        inquiries, events = [], []
        buf = Buffers.empty()
        recent = [entry for entry in self.recent_paid if entry[4] == 0]
        # Open ones: each type at several ages (minutes to days), some waiting on the customer.
        open_ages_min = (2, 8, 25, 50, 3 * 60, 20 * 60, 2 * 24 * 60)
        plans: list[tuple[InquiryType, int, str]] = []
        for kind in InquiryType:
            if kind is InquiryType.DOUBLE_CHARGE:
                # A double charge minutes old: the sentinel (every minute) finds it on the worker's
                # first tick and refunds it, well within its 1-hour target. An older open one would
                # be a double charge the sentinel missed for hours: not what the product does.
                plans.append((kind, rng.randint(120, 240), InquiryStatus.OPEN))
                continue
            for age in open_ages_min:
                plans.append((kind, age * 60 + rng.randint(0, 59), InquiryStatus.OPEN))
            plans.append((kind, rng.randint(2 * 3600, 30 * 3600), InquiryStatus.WAITING_CUSTOMER))
        n_resolved = max(20, min(3000, n_orders // 40))
        for _ in range(n_resolved):
            kind = rng.choices(list(InquiryType), weights=(30, 8, 30, 20, 12))[0]
            plans.append((kind, rng.randint(3 * 3600, WINDOW_DAYS * 86400), InquiryStatus.RESOLVED))
        first = self._take("inquiry", len(plans))
        for i, (kind, age_s, status) in enumerate(plans):
            iid = first + i
            created = now - age_s
            dedupe_key = None
            if kind is InquiryType.DOUBLE_CHARGE and status is not InquiryStatus.RESOLVED:
                order = self._double_charged_order(buf, created)
                # The sentinel's key: it takes this inquiry over (refund, reply, resolve), not a second one.
                dedupe_key = f"double_charge:{order[2]}"
            else:
                order = self._order_for(kind, status, recent)
            cid = order[1] if order else self._pick_customer(created)
            order_id = order[0] if order else None
            payment_id = order[2] if order else None
            subject, body = rng.choice(INQUIRY_TEXT[kind])
            first_target, resolution_target = SLA_TARGET_MINUTES[kind]
            assignee = first_response = resolved = None
            events.append(
                (self._take("inquiry_event"), iid, w.ts(created), "customer_message", None, body, "{}")
            )
            if status is InquiryStatus.OPEN:
                if age_s > 20 * 60 and rng.random() < 0.6:
                    assignee = rng.choice(cs_ids)
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(created + 300),
                            "assign",
                            assignee,
                            "",
                            json.dumps({"assignee_id": assignee}),
                        )
                    )
            else:
                assignee = rng.choice(cs_ids)
                first_response = created + rng.randint(60, max(61, min(age_s - 60, first_target * 120)))
                events.append(
                    (
                        self._take("inquiry_event"),
                        iid,
                        w.ts(first_response),
                        "reply",
                        assignee,
                        REPLIES[kind],
                        "{}",
                    )
                )
                if status is InquiryStatus.WAITING_CUSTOMER:
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(first_response + 1),
                            "state_change",
                            assignee,
                            "",
                            json.dumps({"from": "open", "to": "waiting_customer"}),
                        )
                    )
                else:
                    resolved = min(first_response + rng.randint(60, resolution_target * 90), now - 60)
                    resolved = max(resolved, first_response + 1)
                    if kind is InquiryType.RECEIPT_REQUEST:
                        events.append(
                            (
                                self._take("inquiry_event"),
                                iid,
                                w.ts(resolved - 1),
                                "receipt",
                                assignee,
                                "",
                                json.dumps({"payment_id": payment_id}),
                            )
                        )
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(resolved),
                            "state_change",
                            assignee,
                            "",
                            json.dumps({"from": "open", "to": "resolved"}),
                        )
                    )
            inquiries.append(
                (
                    iid,
                    cid,
                    kind.value,
                    subject,
                    order_id,
                    payment_id,
                    status.value,
                    assignee,
                    "staff",
                    dedupe_key,
                    w.ts(created),
                    w.ts(first_response),
                    w.ts(resolved),
                    w.ts(created + first_target * 60),
                    w.ts(created + resolution_target * 60),
                    None,
                    None,
                )
            )
        self._flush(buf)
        self._count("orders", len(buf.orders))
        w.insert("inquiry", INQUIRY_COLS, inquiries)
        w.insert("inquiry_event", EVENT_COLS, events)
        self._count("inquiries", len(inquiries))
        self._count("inquiry_events", len(events))

    def _double_charged_order(self, buf: Buffers, complained_at: int) -> tuple[int, int, int, int, int, int]:
        """A one-item order paid twice a minute apart, minutes before the customer wrote in.

        Both payments exist at the sandbox, so the sentinel's refund of the later one goes through.
        Returns (order, customer, later payment, total, 0, tax-free) like the paid-order entries.
        """
        rng, w = self.rng, self.w
        t = complained_at - rng.randint(300, 480)
        cid = self._pick_customer(t)
        index = self.sale_products[bisect.bisect_right(self.sale_cum, rng.random() * self.sale_cum[-1])]
        spec = PRODUCTS[index]
        total, tax_free = spec.price, (spec.price if spec.is_tax_free else 0)
        oid, item_id = self._take("orders"), self._take("order_item")
        number = f"{self._order_prefix((t + KST_OFFSET_S) // 86400)}{oid:07d}"
        first_paid, later_paid = t + 20, t + 80
        buf.orders.append((
            oid, number, cid, total, tax_free, "택배" if spec.shipped else None, None, None, "chat",
            ORDER_PAID, w.ts(t), w.ts(first_paid), None, 0, None, None,
        ))  # fmt: skip
        buf.items.append((item_id, oid, self.product_ids[index], spec.name, 1, total, total))
        later = 0
        for key, paid_at in ((f"pay:{oid}", first_paid), (f"pay:{oid}:dup", later_paid)):
            later = self._take("payment")
            payment = (
                later, oid, cid, GATEWAY, self._tid(later), "CARD", total, tax_free, 0, PAY_APPROVED,
                key, w.ts(paid_at), None, None, "[]", w.ts(paid_at - 3),
            )  # fmt: skip
            buf.payments.append(payment)
            self._gateway_payment(buf, payment, number, spec.name, 1)
        return (oid, cid, later, total, 0, tax_free)

    def _order_for(
        self, kind: InquiryType, status: str, recent: list[tuple[int, int, int, int, int, int]]
    ) -> tuple[int, int, int, int, int, int] | None:
        rng = self.rng
        if kind is InquiryType.OTHER and rng.random() < 0.5:
            return None
        if status is InquiryStatus.RESOLVED:
            if kind is InquiryType.REFUND_REQUEST and self.sample_refunded:
                return rng.choice(self.sample_refunded)
            pool = self.sample_paid
        else:
            pool = recent or self.sample_paid
        return rng.choice(pool) if pool else None
