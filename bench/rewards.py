"""Rewards benchmark (issue 20): what referral attribution and reward issuing add to a payment's
completion path (`core.payments.links.complete_link_payment`: the order, its payment, the confirmation,
the link hooks, in one transaction), measured before and after on the same store, in CPU time.

    cp /work/stores/1m.db /tmp/rewards_1m.db          # a 1M-order store at revision 0004
    .venv/bin/python bench/rewards.py --path /tmp/rewards_1m.db --runs 60

The copy is migrated (0006: coupon, point_entry, referral tables; orders.discount_amount). Each run
prepares checkouts untimed (a new customer, a readied payment; for "after" a referral visit behind the
link and a coupon held on it), then times the completion alone with time.process_time. "before" runs
the completion as before issue 20: the rewards hooks unregistered (billing's only) and no referral
link made for the order confirmation; "after" with both: the buyer's referral code made for the
confirmation, the held coupon settled on the order, the referral credited, a reward coupon granted
and the thank-you queued (the worst case: most payments have no referral and no coupon). The two kinds alternate, so the machine's load falls on both alike.

Goal: after - before < 5 ms (median CPU).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.billing  # noqa: E402,F401 (the dunning-link hooks, as the server has them)
import core.rewards  # noqa: E402,F401 (the rewards hooks)
from core import clock  # noqa: E402
from core.accounts.actor import Actor  # noqa: E402
from core.customers.service import find_by_phone  # noqa: E402
from core.db import make_engine, upgrade  # noqa: E402
from core.messaging import automations  # noqa: E402
from core.models import Customer, Payment, PaymentStatus, Product, Referral, RewardReason, Role  # noqa: E402
from core.payments import links  # noqa: E402
from core.rewards import discounts, rules, service  # noqa: E402
from core.rewards.referral import referral_code_for  # noqa: E402

OWNER = Actor(id=None, name="bench", role=Role.OWNER)
REWARD_HOOKS = [h for h in links._LINK_HOOKS if h.settle is service.settle_checkout]


def prepare(engine: Engine, n: int, *, referral: bool, coupon: bool = False, tag: str) -> list[str]:
    """n checkouts ready to complete (untimed): a new customer each, a READY payment, optionally a
    referral visit behind the link and a 3,000원 coupon of the buyer held on it."""
    codes = []
    with Session(engine, expire_on_commit=False) as session:
        product = session.scalars(
            select(Product).where(Product.is_active.is_(True), Product.price > 5_000)
        ).first()
        referrer = session.scalars(select(Customer.id).order_by(Customer.id)).first()
        assert product is not None and referrer is not None
        referral_code_for(session, referrer)
        session.commit()
        for i in range(n):
            link = links.create_payment_link(session, OWNER, product_id=product.id)
            if referral:
                session.add(Referral(referrer_id=referrer, payment_link_id=link.id, visited_at=clock.now()))
            phone = f"010{random.randrange(10**8):08d}"
            while find_by_phone(session, phone) is not None:  # a phone never seen: a new customer
                phone = f"010{random.randrange(10**8):08d}"
            buyer = Customer(name="벤치", phone=phone)
            session.add(buyer)
            session.flush()
            session.add(
                Payment(
                    customer_id=buyer.id,
                    gateway="sandbox",
                    amount=link.amount,
                    status=PaymentStatus.READY,
                    idempotency_key=f"link:{link.code}",
                )
            )
            if coupon:
                session.commit()
                choice = rules.reward_choice({"kind": "coupon", "amount": 3_000, "valid_days": 30})
                held = service.grant(
                    session,
                    customer_id=buyer.id,
                    choice=choice,
                    reason=RewardReason.MANUAL,
                    source_key=f"bench:{tag}:{i}:{time.time_ns()}",
                    now=clock.now(),
                )
                discounts.apply_discounts(
                    session,
                    link.code,
                    coupon_code=held.code,
                    use_points=False,  # type: ignore[union-attr]
                    customer_phone=buyer.phone,
                    now=clock.now(),
                )
            session.commit()
            codes.append(link.code)
    return codes


def complete(engine: Engine, code: str) -> float:
    """CPU seconds of one completion (the approve's answer recorded)."""
    with Session(engine, expire_on_commit=False) as session:
        link = links.get_link(session, code)
        payment = session.scalars(select(Payment).where(Payment.idempotency_key == f"link:{code}")).one()
        started = time.process_time()
        links.complete_link_payment(session, link, payment, method="CARD", approved_at=clock.now())
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", required=True, help="a copy of the 1M-order SQLite store (it is migrated)")
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    engine = make_engine(f"sqlite:///{args.path}")
    started = time.process_time()
    upgrade(engine)
    print(f"migrated to head in {time.process_time() - started:.1f} s CPU")
    with Session(engine) as session:
        service.save_reward_settings(
            session, OWNER, review={}, referral={"kind": "coupon", "amount": 5_000, "valid_days": 60}
        )
        session.commit()
    before_codes = prepare(engine, args.runs, referral=False, tag="before")
    after_codes = prepare(engine, args.runs, referral=True, tag="after")
    coupon_codes = prepare(engine, args.runs, referral=True, coupon=True, tag="coupon")
    before: list[float] = []
    after: list[float] = []
    with_coupon: list[float] = []
    for plain, referred, couponed in zip(before_codes, after_codes, coupon_codes, strict=True):
        for hooks in REWARD_HOOKS:  # before issue 20: no rewards hooks, no referral link in the confirmation
            links._LINK_HOOKS.remove(hooks)
        automations.referral_code_for = lambda _session, _customer_id: ""
        before.append(complete(engine, plain))
        links._LINK_HOOKS.extend(REWARD_HOOKS)
        automations.referral_code_for = referral_code_for
        after.append(complete(engine, referred))
        with_coupon.append(complete(engine, couponed))
    with Session(engine) as session:
        credited = session.scalar(select(Referral.id).where(Referral.status == "credited").limit(1))
    assert credited is not None, "no referral was credited: the 'after' runs did not take the rewards path"
    b, a, c = (statistics.median(runs) * 1000 for runs in (before, after, with_coupon))
    p90 = [sorted(runs)[int(0.9 * len(runs))] * 1000 for runs in (before, after, with_coupon)]
    print(f"completion path, median CPU over {args.runs} runs each (load {os.getloadavg()[0]:.1f}):")
    print(f"  before (as before issue 20)                                    {b:.2f} ms (p90 {p90[0]:.2f})")
    print(f"  after: referral code, referral credited, reward coupon, thanks {a:.2f} ms (p90 {p90[1]:.2f})")
    print(f"  the same and a held coupon settled on the order                {c:.2f} ms (p90 {p90[2]:.2f})")
    print(
        f"  added by referral attribution and reward issuing: {a - b:.2f} ms (goal < 5 ms); with a coupon: {c - b:.2f} ms"
    )


if __name__ == "__main__":
    main()
