"""Short names for the table columns the campaign SQL is written against (customer, orders, ...).
"""

from __future__ import annotations

from core.models import (
    AdSendSlot,
    CampaignClick,
    CampaignRecipient,
    Customer,
    CustomerProductSummary,
    CustomerSummary,
    Message,
    Order,
    OrderItem,
    Product,
    Subscription,
)

C = Customer.__table__.c
ORD = Order.__table__.c
OI = OrderItem.__table__.c
P = Product.__table__.c
S = Subscription.__table__.c
M = Message.__table__.c
R = CampaignRecipient.__table__.c
K = CampaignClick.__table__.c
CS = CustomerSummary.__table__.c
CPS = CustomerProductSummary.__table__.c
SLOT = AdSendSlot.__table__.c
