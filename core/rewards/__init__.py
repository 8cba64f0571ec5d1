"""Rewards: coupons, the points ledger and referrals (issue 20; seed 004 "지인에게 추천하기").

    rules.py     the pure rules: codes, what a coupon or points may take off, who a referral credits
    referral.py  a customer's personal referral code and its /r/ link (the order confirmation uses it)
    service.py   what changes the store: settings, grants, discounts held and settled, referrals
    queries.py   the read models: a customer's rewards, the 매출 referral panel, the coupon list
    jobs.py      the worker's entry point: discounts of abandoned checkouts are released

Importing this package registers the payment-link hooks: a checkout's discount is released when
the gateway refuses its approve, and settled (with the referral credit) in the paid order's
transaction.
"""

from sqlmodel import Session

from core.models import PaymentLink
from core.payments.gateways.base import PaymentError
from core.payments.link_approval import LinkHooks, register_link_hooks
from core.rewards.discounts import release_discounts
from core.rewards.service import settle_checkout


def _claim(_session: Session, _link: PaymentLink) -> None:
    """Nothing to claim: a held discount stays held while the approve is out (release_discounts
    refuses to act once the payment left READY)."""


def _release(session: Session, link: PaymentLink, _error: PaymentError) -> None:
    release_discounts(session, link)


register_link_hooks(LinkHooks(claim=_claim, release=_release, settle=settle_checkout))
