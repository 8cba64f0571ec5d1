"""All tables; importing this package registers them on SQLModel.metadata (Alembic reads it)."""

from core.models.analytics import (
    AnalyticsDirtyCustomer,
    AnalyticsDirtyDay,
    AnalyticsState,
    CohortRetention,
    CohortValue,
    CustomerMonth,
    CustomerProductLast,
    CustomerSales,
    DailyProductSales,
    DailySales,
    ProductRepurchase,
    RepurchaseGap,
)
from core.models.campaign_recipient import CampaignClick, CampaignRecipient, RecipientGroup
from core.models.campaigns import Campaign, CampaignStatus, Segment
from core.models.customer_summary import CustomerProductSummary, CustomerSummary
from core.models.customers import Customer, CustomerCreate, CustomerUpdate, Product, ProductCreate
from core.models.inbound import InboundRequest
from core.models.inquiries import (
    ClosedDay,
    Inquiry,
    InquiryCreate,
    InquiryEvent,
    InquiryStatus,
    InquiryType,
    SlaPolicy,
    StaffNotification,
)
from core.models.messaging import AdSendSlot, Message, MessageKind, MessageStatus, Template
from core.models.orders import (
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Refund,
    RefundStatus,
    Review,
    ReviewPhoto,
)
from core.models.rewards import Coupon, PointEntry, Referral, ReferralCode, ReferralStatus, RewardReason
from core.models.sandbox import SandboxInstrument, SandboxPayment
from core.models.staff import AuditLog, LoginThrottle, Role, StaffSession, StaffUser, StaffUserCreate
from core.models.subscriptions import (
    ChargeAttemptVia,
    ChargeStatus,
    IntervalUnit,
    Subscription,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionEvent,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.models.system import JobRun, Setting, WorkerHeartbeat

__all__ = [
    "AdSendSlot",
    "AnalyticsDirtyCustomer", "AnalyticsDirtyDay", "AnalyticsState", "CohortRetention", "CohortValue", "CustomerMonth", "CustomerProductLast", "CustomerSales",
    "DailyProductSales", "DailySales", "ProductRepurchase", "RepurchaseGap",
    "AuditLog", "Campaign", "CampaignClick", "CampaignRecipient", "RecipientGroup", "CampaignStatus", "ChargeAttemptVia", "ChargeStatus", "ClosedDay", "Customer",
    "CustomerCreate", "CustomerProductSummary", "CustomerSummary", "CustomerUpdate", "InboundRequest", "Inquiry", "InquiryCreate", "InquiryEvent", "InquiryStatus",
    "InquiryType", "IntervalUnit", "JobRun", "LoginThrottle", "Message", "MessageKind", "MessageStatus", "Order",
    "OrderItem", "OrderStatus", "Payment", "PaymentLink", "PaymentLinkStatus", "PaymentStatus",
    "Coupon", "PointEntry", "Product", "ProductCreate", "Referral", "ReferralCode", "ReferralStatus", "Refund",
    "RefundStatus", "Review", "ReviewPhoto", "RewardReason", "Role", "SandboxInstrument",
    "SandboxPayment", "Segment", "Setting",
    "SlaPolicy", "StaffNotification", "StaffSession", "StaffUser", "StaffUserCreate", "Subscription",
    "SubscriptionCharge", "SubscriptionChargeAttempt", "SubscriptionEvent", "SubscriptionPlan", "SubscriptionStatus", "Template",
    "WorkerHeartbeat",
]
