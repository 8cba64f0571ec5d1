"""The demo's subscriptions: plans, charges with their history, dunning, notices (part of the generator)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from core.billing import charge_key
from core.billing import order_number as subscription_order_number
from core.demo.catalog import GATEWAY, PLANS, PRODUCTS
from core.demo.writer import (
    CHARGE_COLS,
    INSTRUMENT_COLS,
    SUB_COLS,
    SUB_EVENT_COLS,
    Buffers,
    add_months,
    kst_date,
    kst_seconds,
)
from core.models import (
    ChargeStatus,
    OrderStatus,
    PaymentStatus,
    SubscriptionStatus,
)


class SubscriptionsPart:
    """Mixed into the generator: uses its ids, buffers, writer and random source."""

    def _subscriptions(self) -> None:
        rng, w, now, today = self.rng, self.w, self.now, self.today
        n_customers = len(self.customer_joined)
        n = max(8, n_customers * 6 // 100)
        n = min(n, n_customers)
        customers = sorted(rng.sample(range(n_customers), n))
        statuses = [
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAUSED,
            SubscriptionStatus.PAST_DUE,
            SubscriptionStatus.CANCELED,
        ]
        forced = [*statuses, SubscriptionStatus.ACTIVE, SubscriptionStatus.ACTIVE]
        plan_weights = [p[5] for p in PLANS]
        first = self._take("subscription", n)
        subs, charges, events, instruments = [], [], [], []
        buf = Buffers.empty()
        for i, customer_index in enumerate(customers):
            sid = first + i
            cid = self.customer_first + customer_index
            plan_index = rng.choices(range(len(PLANS)), weights=plan_weights)[0]
            name, product_index, amount, unit, count, _ = PLANS[plan_index]
            status = forced[i] if i < len(forced) else rng.choices(statuses, weights=(70, 8, 7, 15))[0]
            earliest = max(self.customer_joined[customer_index], now - 200 * 86400)
            started = rng.randint(min(earliest, now - 5 * 86400), now - 4 * 86400)
            if i == 4:  # one charges tomorrow: the billing notice shows on the first worker run
                tomorrow = today + timedelta(days=1)
                started = kst_seconds(add_months(tomorrow, -2, tomorrow.day), 10)
            start_day = kst_date(started)
            anchor = start_day.day

            def period(
                k: int,
                start_day: date = start_day,
                unit: str = unit,
                count: int = count,
                anchor: int = anchor,
            ) -> date:
                if unit == "month":
                    return add_months(start_day, k * count, anchor)
                return start_day + timedelta(days=(7 if unit == "week" else 1) * count * k)

            stop = today
            canceled_at = paused_until = None
            if status is SubscriptionStatus.CANCELED:
                canceled_at = rng.randint(started + 86400, now - 3600)
                stop = kst_date(canceled_at)
            elif status is SubscriptionStatus.PAUSED:
                paused_until = today + timedelta(days=rng.randint(3, 40))
            k = 0
            periods = []
            while period(k) <= stop and k < 400:
                periods.append(period(k))
                k += 1
            if status is SubscriptionStatus.PAUSED and len(periods) > 1:
                periods = periods[: max(1, len(periods) - 1)]  # the last period was skipped by the pause
            next_day: date | None = period(k)
            failed_last = status is SubscriptionStatus.PAST_DUE
            if status is SubscriptionStatus.PAUSED:
                while next_day is not None and next_day < paused_until:  # type: ignore[operator]
                    k += 1
                    next_day = period(k)
            elif status is SubscriptionStatus.CANCELED:
                next_day = None
            elif failed_last:
                next_day = periods[-1]
            sid_ref = f"S{(sid * 104_729_000_007 + 97) % 10**19:019d}"
            for j, day in enumerate(periods):
                charge_at = min(max(kst_seconds(day, 9, rng.randint(0, 20)), started + 60), now - 60)
                charge_id = self._take("subscription_charge")
                key = charge_key(sid, day)
                partner_order_id = subscription_order_number(sid, day)
                if failed_last and j == len(periods) - 1:
                    pid = self._take("payment")
                    attempts = rng.randint(1, 3)
                    payment = (
                        pid,
                        None,
                        cid,
                        GATEWAY,
                        self._tid(pid),
                        "CARD",
                        amount,
                        0,
                        0,
                        PaymentStatus.FAILED.value,
                        f"{key}:{attempts}",
                        None,
                        "INSUFFICIENT_FUNDS",
                        "잔액 부족",
                        "[]",
                        w.ts(charge_at),
                    )
                    buf.payments.append(payment)
                    self._gateway_payment(
                        buf,
                        payment,
                        partner_order_id,
                        name,
                        1,
                        sid=sid_ref,
                    )
                    charges.append(
                        (
                            charge_id,
                            sid,
                            w.day(day),
                            amount,
                            ChargeStatus.FAILED.value,
                            attempts,
                            w.ts(now + rng.randint(3600, 2 * 86400)),
                            key,
                            pid,
                            None,
                            "INSUFFICIENT_FUNDS",
                            "잔액 부족",
                            w.ts(charge_at),
                            w.ts(charge_at),
                        )
                    )
                    events.append(
                        (
                            self._take("subscription_event"),
                            sid,
                            w.ts(charge_at),
                            "charge_failed",
                            None,
                            json.dumps({"period": day.isoformat(), "attempts": attempts}),
                        )
                    )
                    continue
                oid, pid, item_id = self._take("orders"), self._take("payment"), self._take("order_item")
                buf.orders.append(
                    (
                        oid,
                        f"CD{day.strftime('%y%m%d')}-S{oid:07d}",
                        cid,
                        amount,
                        0,
                        "택배" if PRODUCTS[product_index].shipped else None,
                        None,
                        None,
                        "subscription",
                        OrderStatus.PAID.value,
                        w.ts(charge_at),
                        w.ts(charge_at + 3),
                        None,
                        0,
                        None,
                        sid,
                    )
                )
                buf.items.append((item_id, oid, self.product_ids[product_index], name, 1, amount, amount))
                payment = (
                    pid,
                    oid,
                    cid,
                    GATEWAY,
                    self._tid(pid),
                    "CARD",
                    amount,
                    0,
                    0,
                    PaymentStatus.APPROVED.value,
                    key,
                    w.ts(charge_at + 3),
                    None,
                    None,
                    "[]",
                    w.ts(charge_at),
                )
                buf.payments.append(payment)
                self._gateway_payment(
                    buf,
                    payment,
                    partner_order_id,
                    name,
                    1,
                    sid=sid_ref,
                )
                charges.append(
                    (
                        charge_id,
                        sid,
                        w.day(day),
                        amount,
                        ChargeStatus.SUCCEEDED.value,
                        1,
                        None,
                        key,
                        pid,
                        oid,
                        None,
                        None,
                        w.ts(charge_at),
                        w.ts(charge_at + 3),
                    )
                )
            events.append(
                (
                    self._take("subscription_event"),
                    sid,
                    w.ts(started),
                    "created",
                    None,
                    json.dumps({"plan": name, "amount": amount}),
                )
            )
            if status is SubscriptionStatus.PAUSED:
                events.append(
                    (
                        self._take("subscription_event"),
                        sid,
                        w.ts(now - rng.randint(3600, 10 * 86400)),
                        "paused",
                        self._staff(),
                        json.dumps({"until": paused_until.isoformat()}),
                    )
                )  # type: ignore[union-attr]
            if canceled_at is not None:
                events.append(
                    (
                        self._take("subscription_event"),
                        sid,
                        w.ts(canceled_at),
                        "canceled",
                        self._staff(),
                        json.dumps({"reason": rng.choice(("이사", "가격 부담", "이용 빈도 낮음"))}),
                    )
                )
            # The SID exists at the sandbox: active while the subscription lives, inactive once canceled.
            instruments.append(
                (
                    sid_ref,
                    self.public_ids[customer_index],
                    "INACTIVE" if canceled_at is not None else "ACTIVE",
                    w.ts(started),
                    w.ts(canceled_at),
                )
            )
            subs.append(
                (
                    sid,
                    cid,
                    self.plan_ids[plan_index],
                    amount,
                    None,
                    status.value,
                    anchor,
                    w.day(next_day),
                    GATEWAY,
                    sid_ref,
                    None,
                    None,
                    w.day(paused_until),
                    w.true if (status is SubscriptionStatus.ACTIVE and rng.random() < 0.05) else w.false,
                    w.ts(started),
                    w.ts(canceled_at),
                    w.ts(started),
                )
            )
        w.insert("subscription", SUB_COLS, subs)
        w.insert("sandbox_instrument", INSTRUMENT_COLS, instruments)
        self._flush(buf)
        w.insert("subscription_charge", CHARGE_COLS, charges)
        w.insert("subscription_event", SUB_EVENT_COLS, events)
        self._count("orders", len(buf.orders))
        self._count("subscriptions", n)
        self._count("subscription_charges", len(charges))
        self._count("subscription_events", len(events))
        self._count("sandbox_instruments", len(instruments))

    # -- inquiries -----------------------------------------------------------------------------
