"""Benchmark: N subscriptions due the same day: D-1 notices, then every charge through the sandbox.

    .venv/bin/python -m bench.billing                       # 100,000 on a fresh SQLite file
    .venv/bin/python -m bench.billing --workers 4                                 # four workers at once
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_billing .venv/bin/python -m bench.billing

Targets (issue 6): all notices queued in under 10 s; charges at 500 or more a second; no double
charge. Prints the figures and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import date, timedelta

from sqlalchemy import Engine, func, insert, text
from sqlmodel import Session, select

from core import billing, clock
from core.billing.dates import kst_instant
from core.customers.identity import canonical_mobile
from core.db import is_postgres, make_engine, upgrade
from core.models import Customer, Message, Payment, Subscription, SubscriptionCharge, SubscriptionPlan
from core.models.sandbox import SandboxInstrument, SandboxPayment
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.sandbox import SandboxGateway

DUE = date(2027, 3, 31)


def seed(engine: Engine, count: int) -> None:
    """Customers, SIDs and subscriptions in bulk (the setup is not what we measure)."""
    now = clock.now()
    with Session(engine) as session:
        plan = SubscriptionPlan(name="월회비", amount=39000)
        session.add(plan)
        session.commit()
        plan_id = plan.id
        step = 10_000
        for start in range(0, count, step):
            ids = range(start + 1, min(count, start + step) + 1)
            session.execute(
                insert(Customer),
                [
                    {
                        "id": i,
                        "name": f"고객{i}",
                        "phone": f"010{i:08d}",
                        "mobile": canonical_mobile(f"010{i:08d}"),
                        "is_channel_friend": True,
                        "public_id": f"u{i:019d}",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(SandboxInstrument),
                [
                    {
                        "sid": f"S{i:019d}",
                        "partner_user_id": f"u{i:019d}",
                        "status": "ACTIVE",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(Subscription),
                [
                    {
                        "id": i,
                        "customer_id": i,
                        "plan_id": plan_id,
                        "amount": 39000,
                        "status": "active",
                        "anchor_day": 31,
                        "next_charge_date": DUE,
                        "instrument_gateway": "sandbox",
                        "instrument_ref": f"S{i:019d}",
                        "cancel_at_period_end": False,
                        "started_at": now,
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
        session.commit()
        if is_postgres(engine):
            for table in ("customer", "subscription"):
                session.execute(text(f"SELECT setval('{table}_id_seq', {count})"))
            session.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="default: BENCH_DATABASE_URL, else a fresh SQLite file in a temp folder (PostgreSQL: schema dropped)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="charge workers (threads, each its own claims)"
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--notices-only", action="store_true", help="measure the notices and stop")
    args = parser.parse_args(argv)

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-billing-')}/bench.db"
    engine = make_engine(url)
    if is_postgres(engine):
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    started = time.perf_counter()
    seed(engine, args.count)
    print(
        f"store: {engine.url.get_backend_name()}  subscriptions: {args.count:,}  "
        f"(seeded in {time.perf_counter() - started:.1f} s)"
    )

    notice_at = kst_instant(DUE - timedelta(days=1), 10)
    started, cpu_started = time.perf_counter(), time.process_time()
    with clock.frozen(notice_at):
        counts = billing.run_notices(engine, notice_at)
    notice_seconds = time.perf_counter() - started
    print(
        f"notices: {counts['notices_queued']:,} queued in {notice_seconds:.2f} s wall "
        f"({counts['notices_queued'] / notice_seconds:,.0f}/s), {time.process_time() - cpu_started:.2f} s CPU; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    started = time.perf_counter()
    with clock.frozen(notice_at):
        again = billing.run_notices(engine, notice_at)
    print(
        f"notices, retried tick: {again['notices_queued']} new, {again['notices_already']:,} already "
        f"({time.perf_counter() - started:.2f} s)"
    )

    # On the charge day, before the charge hour, the worker checks every due charge was told in time
    # (core.billing.notices.hold_unnoticed, every minute): it must be cheap when all notices went out.
    hold_at = kst_instant(DUE, 8)
    started, cpu_started = time.perf_counter(), time.process_time()
    with clock.frozen(hold_at):
        held = billing.hold_unnoticed(engine, hold_at)
    hold_seconds = time.perf_counter() - started
    print(
        f"notice check on the charge day: {held} moved in {hold_seconds:.2f} s wall, "
        f"{time.process_time() - cpu_started:.2f} s CPU"
    )

    if args.notices_only:
        ok = notice_seconds < 10 and counts["notices_queued"] == args.count and held == 0
        print(f"  {'PASS' if ok else 'FAIL'}  notices under 10 s, none held")
        return 0 if ok else 1

    charge_at = kst_instant(DUE, 9)
    router = PaymentRouter(SandboxGateway(engine))
    totals: dict[str, int] = {}
    lock = threading.Lock()

    def work() -> None:
        result = billing.run_charges(engine, charge_at, gateway=router, batch_size=args.batch)
        with lock:
            for key, value in result.items():
                totals[key] = totals.get(key, 0) + value

    started, cpu_started = time.perf_counter(), time.process_time()
    with clock.frozen(charge_at):
        threads = [threading.Thread(target=work) for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        charge_seconds = time.perf_counter() - started
        charge_cpu = time.process_time() - cpu_started
        billing.run_charges(engine, charge_at, gateway=router)  # a retried tick: must change nothing
    rate = totals.get("succeeded", 0) / charge_seconds
    print(
        f"charges: {totals.get('succeeded', 0):,} succeeded in {charge_seconds:.2f} s wall ({rate:,.0f}/s), "
        f"{charge_cpu:.2f} s CPU in this process, with {args.workers} worker(s); "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; counts {totals}"
    )

    with Session(engine) as session:
        gateway_payments = session.exec(select(func.count()).select_from(SandboxPayment)).one()
        distinct_orders = session.exec(
            select(func.count(func.distinct(SandboxPayment.partner_order_id)))
        ).one()
        payments = session.exec(select(func.count()).select_from(Payment)).one()
        charges = session.exec(
            select(func.count())
            .select_from(SubscriptionCharge)
            .where(SubscriptionCharge.status == "succeeded")
        ).one()
        notices = session.exec(
            select(func.count()).select_from(Message).where(Message.template_key == billing.NOTICE_TEMPLATE)
        ).one()
    print(
        f"check: gateway payments {gateway_payments:,}, distinct orders {distinct_orders:,}, "
        f"our payments {payments:,}, succeeded charges {charges:,}, notices {notices:,}"
    )
    checks = {
        "notices under 10 s": notice_seconds < 10 and notices == args.count,
        "every charge told in time (none held)": held == 0,
        "charges >= 500/s": rate >= 500,
        "every subscription charged": charges == args.count == payments,
        "no double charge": gateway_payments == distinct_orders == args.count,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
