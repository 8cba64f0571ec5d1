"""What the customer's checkout page shows for a payment link: a read model, and the refund policy.

The page (web/customer/pay.py) renders a CheckoutView and nothing else; every amount here comes
from the store (the link and its product), never from the browser. A link sells one item, quantity
1 (the gateway is asked for quantity 1): when the link's amount is below the product's list price
the difference is shown as the discount, so the customer sees 정가, 할인 and the total they pay.

The refund policy is the owner's text from 설정 (settings key `refund_policy`), with a default that
states the legal minimum (전자상거래법 제17조: 7 days from delivery for a change of mind) and how to
ask (the channel chat). It is the shop's one refund policy: /pay and /help show it, the order
confirmation, the welcome message and the 문의 macros (#{환불정책}) carry it. A message variable is
at most 500 characters (core.messaging.templates), so the policy is kept shorter than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core.accounts.actor import Actor, require_role
from core.errors import ValidationFailed
from core.models import (
    Coupon,
    Order,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    PointEntry,
    Product,
    Role,
)
from core.models.orders import Payment

REFUND_POLICY_KEY = "refund_policy"
REFUND_POLICY_MAX = 400  # it rides in AlimTalk variables (≤ 500 characters) and a 1,000-character message
DEFAULT_REFUND_POLICY = (
    "상품을 받은 날부터 7일 안에 교환·환불(청약철회)을 요청할 수 있습니다. "
    "단순 변심에 의한 반품은 왕복 배송비를 고객님이 부담합니다. "
    "상품에 문제가 있으면 받은 날부터 3개월 안에(문제를 안 날부터 30일 안에) 배송비 없이 교환·환불해 드립니다. "
    "결제 취소는 카카오페이로 결제한 수단으로 돌려드립니다. "
    "교환·환불은 카카오톡 채널 채팅으로 주문번호와 함께 말씀해 주세요."
)
METHOD_LABELS = {"CARD": "카드", "MONEY": "카카오머니"}


def refund_policy(session: Session) -> str:
    """The owner's refund policy, or the default when none was written."""
    from core import settings_store

    text = settings_store.get(session, REFUND_POLICY_KEY)
    return text.strip() if isinstance(text, str) and text.strip() else DEFAULT_REFUND_POLICY


def set_refund_policy(session: Session, actor: Actor, text: str) -> str:
    """Owner only, audited (settings_store.put); empty text goes back to the default."""
    from core import settings_store

    require_role(actor, Role.OWNER)
    text = (text or "").strip()
    if len(text) > REFUND_POLICY_MAX:
        raise ValidationFailed(f"환불 정책은 {REFUND_POLICY_MAX:,}자 이내로 입력하세요")
    settings_store.put(session, actor, REFUND_POLICY_KEY, text or None)
    return text or DEFAULT_REFUND_POLICY


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    quantity: int
    list_price: int  # per unit, before the discount
    discount: int  # on the line, >= 0
    amount: int  # what the line costs


@dataclass(frozen=True)
class Receipt:
    order_number: str
    paid_at: datetime | None
    method: str | None  # Korean label


@dataclass(frozen=True)
class CheckoutView:
    code: str
    status: str
    lines: tuple[CheckoutLine, ...]
    total: int
    memo: str | None
    expires_at: datetime | None
    needs_contact: bool
    checking: bool  # an approve's answer is being looked up: no new payment may start
    receipt: Receipt | None
    coupon_code: str | None = None  # a coupon taken off this checkout (core.rewards)
    coupon_discount: int = 0
    points_discount: int = 0

    @property
    def paid(self) -> bool:
        return self.status == PaymentLinkStatus.PAID

    @property
    def expired(self) -> bool:
        return self.status == PaymentLinkStatus.EXPIRED


def checkout_view(session: Session, link: PaymentLink) -> CheckoutView:
    """Everything the checkout, its states and the receipt show, read from the store.

    A coupon or points the customer applied (core.rewards) already lowered the link's amount (what
    the gateway is asked for); they are shown as their own lines under the item's price."""
    coupon = session.exec(
        select(Coupon).where(Coupon.payment_link_id == link.id, Coupon.redeemed_at.is_not(None))  # type: ignore[union-attr]
    ).first()
    points = -sum(session.exec(select(PointEntry.amount).where(PointEntry.payment_link_id == link.id)).all())
    before_rewards = link.amount + (coupon.amount if coupon else 0) + points
    list_price = before_rewards
    if link.product_id is not None:
        product = session.get(Product, link.product_id)
        if product is not None and product.price > before_rewards:
            list_price = product.price
    line = CheckoutLine(name=link.item_name, quantity=1, list_price=list_price,
                        discount=list_price - before_rewards, amount=before_rewards)
    payment = session.exec(select(Payment).where(Payment.idempotency_key == f"link:{link.code}")).first()
    receipt = None
    if link.status == PaymentLinkStatus.PAID and link.order_id is not None:
        order = session.get(Order, link.order_id)
        receipt = Receipt(
            order_number=order.order_number if order is not None else "-",
            paid_at=(payment.approved_at if payment is not None else None) or link.paid_at,
            method=METHOD_LABELS.get(payment.method or "", payment.method) if payment is not None else None,
        )
    checking = (link.status != PaymentLinkStatus.PAID and payment is not None
                and payment.status in (PaymentStatus.UNKNOWN, PaymentStatus.APPROVED))
    return CheckoutView(
        code=link.code,
        status=link.status,
        lines=(line,),
        total=link.amount,
        memo=link.memo,
        expires_at=link.expires_at,
        needs_contact=link.customer_id is None,
        checking=checking,
        receipt=receipt,
        coupon_code=coupon.code if coupon else None,
        coupon_discount=coupon.amount if coupon else 0,
        points_discount=points,
    )
