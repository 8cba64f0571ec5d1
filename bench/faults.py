"""Faults and load (issue 9). Each scenario prints its figures and exits non-zero when a goal is missed.

    .venv/bin/python -m bench.faults workers [--workers 2 4] [--messages 10000] [--charges 1000]
    .venv/bin/python -m bench.faults kill [--kills 20]
    .venv/bin/python -m bench.faults flaky [--messages 2000] [--charges 100]
    .venv/bin/python -m bench.faults sqlite [--minutes 5]
    .venv/bin/python -m bench.faults browsers [--sessions 20]
    .venv/bin/python -m bench.faults money [--links 1000] [--charges 1000] [--refunds 500] [--database-url URL]

money (issue 13): 30% of money-moving calls (approve, charge, cancel) are performed at the sandbox
gateway and then answered with an HTML 502; link payments (pay_link), subscription charges (the
router) and partial refunds (refund_payment) run on two threads, then the reconciliation; counted in
the gateway's own tables: 0 double charges, 0 double refunds, 0 unresolved.

workers / kill / flaky run real worker processes (`python -m core.worker --once --now ...`) against
PostgreSQL (`--database-url`, default postgresql+psycopg://postgres@127.0.0.1:5432/bench_faults) with
the message provider and the payment gateway as real HTTP servers on 127.0.0.1 (tests/fault_support.py)
that count, provider side, every message taken and every card charged.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import fault_support as fs  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_faults"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _verdict(name: str, ledger: fs.Ledger, extra: list[str] | None = None) -> bool:
    problems = ledger.problems + (extra or [])
    print(f"  {ledger.line()}")
    print(f"  {'PASS' if not problems else 'FAIL'}  {name}" + (f": {'; '.join(problems)}" if problems else ""))
    return not problems


def workers(args: argparse.Namespace) -> bool:
    ok = True
    for count in args.workers:
        engine = fs.fresh_store(args.database_url)
        fs.seed(engine, messages=args.messages, charges=args.charges)
        with fs.servers() as (solapi, _):
            cpu = _cpu()
            run = fs.drive(engine, fs.worker_env(args.database_url, solapi), workers=count)
            cpu = _cpu() - cpu
            print(
                f"[workers] {count} worker processes on {engine.dialect.name}: {args.messages:,} messages + "
                f"{args.charges:,} due charges final in {run.rounds} round(s), {run.wall:.1f} s wall, "
                f"{cpu:.1f} s CPU (all processes), {fs.load_average()}"
            )
            first = run.per_worker[:count]
            print(f"  first round, per worker (messages claimed, charges attempted): {first}")
            ok &= _verdict(f"{count} workers: zero duplicates, zero lost", fs.ledger(engine, solapi))
        engine.dispose()
    return ok


def _kill_moments(rng: random.Random, kills: int, engine, solapi: fs.FaultySolapi, fallback: float) -> list:  # type: ignore[no-untyped-def]
    """Per kill, a random point of the work counted at the providers since the worker started: the
    first half after 1-60 cards charged (mid charge batch), the second half after 1-15 send
    requests (mid sending), whatever the machine's load; after `fallback` seconds, kill anyway."""
    from sqlalchemy import func, select

    from core.models.sandbox import SandboxPayment

    def charged() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(SandboxPayment)).scalar_one()

    def sends() -> int:
        return solapi.requests["POST send"]

    moments = []
    for k in range(kills):
        state: dict[str, float] = {}
        progress, units = (charged, rng.randint(1, 60)) if k < kills // 2 else (sends, rng.randint(1, 15))

        def moment(state: dict[str, float] = state, progress=progress, units: int = units) -> bool:  # type: ignore[no-untyped-def]
            started = state.setdefault("t", time.monotonic())
            base = state.setdefault("n", progress())
            return time.monotonic() - started >= fallback or progress() - base >= units

        moments.append(moment)
    return moments


def kill(args: argparse.Namespace) -> bool:
    engine = fs.fresh_store(args.database_url)
    fs.seed(engine, messages=args.messages, charges=args.charges, batch_size=50)
    with fs.servers(delay=args.provider_delay) as (solapi, _):
        cpu = _cpu()
        run = fs.drive_with_kills(
            engine,
            fs.worker_env(args.database_url, solapi),
            kills=args.kills,
            rng=random.Random(args.seed),
            kill_when=_kill_moments(random.Random(args.seed), args.kills, engine, solapi, args.fallback),
        )
        cpu = _cpu() - cpu
        print(
            f"[kill] {run.kills} SIGKILLs at random moments (seed {args.seed}), {run.rounds} worker starts, "
            f"{run.wall:.1f} s wall, {cpu:.1f} s CPU; kills that caught work in flight: "
            f"{dict(run.kills_mid_work)} (rows in flight, summed: {dict(run.in_flight_at_kill)}); {fs.load_average()}"
        )
        ledger = fs.ledger(engine, solapi)
    extra = [] if run.kills == args.kills else [f"only {run.kills} kills landed"]
    return _verdict("killed and restarted: zero duplicates, zero lost", ledger, extra)


def flaky(args: argparse.Namespace) -> bool:
    engine = fs.fresh_store(args.database_url)
    fs.seed(engine, messages=args.messages, charges=args.charges, gateway="toss", batch_size=50)
    faults = fs.Faults(error_rate=0.30, timeout_rate=0.10, seed=args.seed)
    with fs.servers(faults, toss=True) as (solapi, toss):
        assert toss is not None
        cpu = _cpu()
        run = fs.drive(engine, fs.worker_env(args.database_url, solapi, toss), workers=args.processes)
        cpu = _cpu() - cpu
        print(
            f"[flaky] 30% HTTP 500 + 10% timeouts on Solapi and Toss: {args.messages:,} messages + "
            f"{args.charges:,} charges final after {run.rounds} rounds ({args.processes} workers), clock "
            f"moved to {run.until:%Y-%m-%d %H:%M} UTC, {run.wall:.1f} s wall, {cpu:.1f} s CPU; {fs.load_average()}"
        )
        print(
            f"  provider requests {dict(solapi.requests)} outcomes {dict(solapi.outcomes)}; gateway requests "
            f"{dict(toss.requests)} outcomes {dict(toss.outcomes)}"
        )
        print(
            "  send requests per message: "
            f"{dict(sorted(Counter(solapi.attempts.values()).items()))}; charge requests per order: "
            f"{dict(sorted(Counter(toss.attempts.values()).items()))}"
        )
        ledger = fs.ledger(engine, solapi, toss)
        reasons = fs.failure_reasons(engine)
    for reason, n in reasons.most_common(6):
        print(f"  failed ({n:,}): {reason}")
    extra = []
    if ledger.max_message_attempts > args.max_message_attempts:
        extra.append(f"a message was sent {ledger.max_message_attempts} times (bound {args.max_message_attempts})")
    if ledger.max_charge_attempts > args.max_charge_attempts:
        extra.append(f"an order was charged {ledger.max_charge_attempts} times (bound {args.max_charge_attempts})")
    return _verdict("every item done or failed with its reason, none duplicated, retries bounded", ledger, extra)


def sqlite(args: argparse.Namespace) -> bool:
    from tests.fault_ui import run_ui_and_worker

    return run_ui_and_worker(minutes=args.minutes, seed=args.seed)


def browsers(args: argparse.Namespace) -> bool:
    from tests.fault_browsers import run_sessions

    return run_sessions(sessions=args.sessions, seconds=args.seconds)


def money(args: argparse.Namespace) -> bool:
    """Issue 13's fault scenario, in process (threads for workers), counted at the sandbox gateway."""
    import tempfile
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from sqlalchemy import func
    from sqlmodel import Session, select

    import core.payments.jobs as jobs
    from core import clock
    from core.accounts.actor import Actor
    from core.errors import ValidationFailed
    from core.models import Customer, Payment, Refund, Role
    from core.models.sandbox import SandboxInstrument, SandboxPayment
    from core.payments.gateways.base import ChargeRequest, PaymentError
    from core.payments.gateways.router import PaymentRouter
    from core.payments.gateways.sandbox import SandboxGateway
    from core.payments.link_approval import pay_link
    from core.payments.link_checkout import select_method, start_payment
    from core.payments.links import create_payment_link
    from core.payments.refunds import refund_payment
    from core.payments.templates import ensure_template

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/money.db"
    engine = fs.fresh_store(url)
    rng, lock = random.Random(args.seed), threading.Lock()
    injected: Counter[str] = Counter()

    class BadDay(SandboxGateway):
        def _fault(self, operation: str) -> str | None:
            kind = super()._fault(operation)
            with lock:
                bad = operation in ("approve", "charge", "cancel") and rng.random() < args.fault_rate
                injected[operation] += bad
            return "html" if bad else kind

    router = PaymentRouter(BadDay(engine), sleep=lambda _s: None)
    jobs._router = lambda _engine: router  # type: ignore[assignment]  # the reconciliation's gateway
    owner = Actor(None, "벤치", Role.OWNER)
    with Session(engine) as session:
        for key in ("refund_completed",):
            ensure_template(session, key)  # created up front: two first refunds at once collide on it
        session.commit()
        customers = [Customer(name=f"고객{i}", phone=f"010{i:08d}") for i in range(args.links)]
        session.add_all(customers)
        session.commit()
        customer_ids = [c.id for c in customers]
        for i in range(args.charges):
            session.add(SandboxInstrument(sid=f"S{i:019d}", partner_user_id=f"u{i}"))
        session.commit()

    def pay(i: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            link = create_payment_link(
                session, owner, item_name="원두 1kg", amount=39_000, customer_id=customer_ids[i], router=router
            )
            start = start_payment(session, link.code, router=router)
            token = select_method(session, link.code, "CARD", router=router, tid=start.tid)
            with contextlib.suppress(ValidationFailed):  # UNKNOWN: the reconciliation settles it
                pay_link(session, link.code, pg_token=token, attempt=start.attempt, router=router)

    def charge(i: int) -> None:
        with contextlib.suppress(PaymentError):  # unknown: judged below by the gateway's own rows
            router.charge(
                [],
                ChargeRequest(
                    instrument_ref=f"S{i:019d}",
                    partner_order_id=f"SUB-{i}",
                    partner_user_id=f"u{i}",
                    item_name="월회비",
                    total_amount=29_000,
                    tax_free_amount=0,
                    idempotency_key=f"charge:{i}",
                ),
                instruments={"sandbox": f"S{i:019d}"},
            )

    def refund(payment_id: int) -> None:
        with Session(engine, expire_on_commit=False) as session, contextlib.suppress(ValidationFailed):
            refund_payment(
                session, owner, payment_id=payment_id, amount=3_000, reason="부분 환불",
                idempotency_key=f"refund:{payment_id}", router=router,
            )

    started, cpu = time.perf_counter(), _cpu()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(pay, range(args.links)))
        list(pool.map(charge, range(args.charges)))
        with Session(engine) as session:
            paid = session.exec(select(Payment.id).where(Payment.status == "approved").limit(args.refunds)).all()
        list(pool.map(refund, paid))
    later = clock.now() + timedelta(minutes=5)
    rounds = 0
    while rounds < 10:
        rounds += 1
        counts = jobs.reconcile_payments(engine, later)
        if counts["still_unknown"] == 0 and counts["refunds_settled"] == 0:
            break
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    with Session(engine) as session:
        double_charges = session.exec(
            select(func.count()).select_from(
                select(SandboxPayment.partner_order_id)
                .where(SandboxPayment.status.in_(("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")))  # type: ignore[attr-defined]
                .group_by(SandboxPayment.partner_order_id)
                .having(func.count() > 1)
                .subquery()
            )
        ).one()
        charged = session.exec(
            select(func.count()).where(SandboxPayment.partner_order_id.like("SUB-%"))  # type: ignore[attr-defined]
        ).one()
        recorded = dict(
            session.exec(
                select(Payment.gateway_tid, Payment.refunded_amount).where(Payment.refunded_amount > 0)
            ).all()
        )
        at_gateway = dict(
            session.exec(select(SandboxPayment.tid, SandboxPayment.canceled_amount).where(SandboxPayment.canceled_amount > 0)).all()
        )
        double_refunds = sum(1 for tid, amount in at_gateway.items() if amount > recorded.get(tid, 0))
        unresolved = session.exec(select(func.count()).where(Payment.status == "unknown")).one() + session.exec(
            select(func.count()).where(Refund.status.in_(("requested", "unknown")))  # type: ignore[attr-defined]
        ).one()
        mismatched = sum(1 for tid, amount in recorded.items() if at_gateway.get(tid, 0) != amount)
        approved = session.exec(select(func.count()).where(Payment.status.in_(("approved", "partially_refunded")))).one()  # type: ignore[attr-defined]
        refunds_done = session.exec(select(func.count()).where(Refund.status == "succeeded")).one()
    print(
        f"[money] {engine.dialect.name}, {args.threads} threads, fault rate {args.fault_rate:.0%}: {args.links:,} links "
        f"({approved:,} paid), {args.charges:,} charges ({charged:,} at the gateway), {len(paid):,} partial refunds "
        f"({refunds_done:,} done); {rounds} reconciliation round(s); {wall:.1f} s wall, {cpu:.1f} s CPU; "
        f"{fs.load_average()}"
    )
    print(f"  performed, then answered with an HTML 502: {dict(injected)}")
    print(
        f"  double charges {double_charges}, double refunds {double_refunds}, refund totals differing "
        f"{mismatched}, unresolved {unresolved}"
    )
    engine.dispose()
    return double_charges == 0 and double_refunds == 0 and unresolved == 0 and mismatched == 0 and charged == args.charges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    for name, func in (("workers", workers), ("kill", kill), ("flaky", flaky)):
        p = sub.add_parser(name)
        p.set_defaults(func=func)
        p.add_argument("--database-url", default=PG_URL)
        p.add_argument("--seed", type=int, default=9)
    sub.choices["workers"].add_argument("--workers", type=int, nargs="+", default=[2, 4])
    sub.choices["workers"].add_argument("--messages", type=int, default=10_000)
    sub.choices["workers"].add_argument("--charges", type=int, default=1_000)
    sub.choices["kill"].add_argument("--kills", type=int, default=20)
    sub.choices["kill"].add_argument("--messages", type=int, default=10_000)
    sub.choices["kill"].add_argument("--charges", type=int, default=1_000)
    sub.choices["kill"].add_argument(
        "--fallback", type=float, default=120.0, help="kill after this many seconds if the work point never came"
    )
    sub.choices["kill"].add_argument("--provider-delay", type=float, default=0.05, help="seconds per send request")
    sub.choices["flaky"].add_argument("--messages", type=int, default=2_000)
    sub.choices["flaky"].add_argument("--charges", type=int, default=100)
    sub.choices["flaky"].add_argument("--processes", type=int, default=4, help="worker processes per round")
    sub.choices["flaky"].add_argument("--max-message-attempts", type=int, default=5)
    sub.choices["flaky"].add_argument("--max-charge-attempts", type=int, default=40)
    p = sub.add_parser("sqlite")
    p.set_defaults(func=sqlite)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=9)
    p = sub.add_parser("money")
    p.set_defaults(func=money)
    p.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    p.add_argument("--links", type=int, default=1_000)
    p.add_argument("--charges", type=int, default=1_000)
    p.add_argument("--refunds", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fault-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=9)
    p = sub.add_parser("browsers")
    p.set_defaults(func=browsers)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0, help="how long the sessions stay open")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ok = args.func(args)
    print(f"[{args.scenario}] {'PASS' if ok else 'FAIL'} in {time.perf_counter() - started:.1f} s; {fs.load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
