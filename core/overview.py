"""Read-side queries shared by the screens and the worker-health panel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock
from core.models import JobRun, StaffUser, WorkerHeartbeat

WORKER_STALE_AFTER_SECONDS = 30


def worker_health(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Is a worker alive, and how did each job's last run go (for 설정 → 워커 상태)."""
    now = now or clock.now()
    beat = session.exec(select(WorkerHeartbeat).order_by(col(WorkerHeartbeat.last_beat_at).desc())).first()
    seconds = None if beat is None else max(0, int((now - beat.last_beat_at).total_seconds()))
    latest = (
        select(JobRun.job_id, func.max(JobRun.id).label("last_id")).group_by(JobRun.job_id).subquery()
    )
    runs = session.exec(select(JobRun).join(latest, col(JobRun.id) == latest.c.last_id)).all()
    return {
        "alive": seconds is not None and seconds <= WORKER_STALE_AFTER_SECONDS,
        "seconds_since_beat": seconds,
        "worker_id": None if beat is None else beat.worker_id,
        "jobs": [
            {
                "job_id": run.job_id,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "outcome": run.outcome,
                "counts": run.counts,
                "error": run.error,
            }
            for run in sorted(runs, key=lambda r: r.job_id)
        ],
    }


def staff_users(session: Session) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.id))).all())


def recent_orders(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    from core.models import Customer, Order
    from core.models.orders import ORDER_STATUS_LABELS

    rows = session.exec(
        select(Order, Customer.name)
        .join(Customer, col(Customer.id) == col(Order.customer_id))
        .order_by(col(Order.ordered_at).desc())
        .limit(limit)
    ).all()
    return [
        {"주문번호": o.order_number, "고객": name, "금액": o.total_amount,
         "상태": ORDER_STATUS_LABELS.get(o.status, o.status), "주문 시각": o.ordered_at}
        for o, name in rows
    ]


def open_inquiries(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    from core.models import Customer, Inquiry, InquiryStatus
    from core.models.inquiries import INQUIRY_STATUS_LABELS, INQUIRY_TYPE_LABELS

    rows = session.exec(
        select(Inquiry, Customer.name)
        .join(Customer, col(Customer.id) == col(Inquiry.customer_id))
        .where(col(Inquiry.status) != InquiryStatus.RESOLVED)
        .order_by(col(Inquiry.resolution_due_at))
        .limit(limit)
    ).all()
    return [
        {"유형": INQUIRY_TYPE_LABELS.get(i.type, i.type), "고객": name, "제목": i.subject,
         "상태": INQUIRY_STATUS_LABELS.get(i.status, i.status), "기한": i.resolution_due_at}
        for i, name in rows
    ]


def subscriptions(session: Session, limit: int = 500) -> list[dict[str, Any]]:
    from core.models import Customer, Subscription, SubscriptionPlan
    from core.models.subscriptions import SUBSCRIPTION_STATUS_LABELS

    rows = session.exec(
        select(Subscription, Customer.name, SubscriptionPlan.name)
        .join(Customer, col(Customer.id) == col(Subscription.customer_id))
        .join(SubscriptionPlan, col(SubscriptionPlan.id) == col(Subscription.plan_id))
        .order_by(col(Subscription.next_charge_date))
        .limit(limit)
    ).all()
    return [
        {"고객": customer, "상품": plan, "금액": s.amount,
         "상태": SUBSCRIPTION_STATUS_LABELS.get(s.status, s.status), "다음 결제일": s.next_charge_date}
        for s, customer, plan in rows
    ]


def recent_messages(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    from core.models import Message
    from core.models.messaging import MESSAGE_STATUS_LABELS

    rows = session.exec(select(Message).order_by(col(Message.created_at).desc()).limit(limit)).all()
    return [
        {"종류": m.template_key, "상태": MESSAGE_STATUS_LABELS.get(m.status, m.status), "사유": m.reason or "",
         "내용": m.text, "생성": m.created_at}
        for m in rows
    ]


def campaigns(session: Session) -> list[dict[str, Any]]:
    from core.models import Campaign
    from core.models.campaigns import CAMPAIGN_STATUS_LABELS

    rows = session.exec(select(Campaign).order_by(col(Campaign.created_at).desc())).all()
    return [
        {"캠페인": c.name, "상태": CAMPAIGN_STATUS_LABELS.get(c.status, c.status), "생성": c.created_at}
        for c in rows
    ]


def sales_by_month(session: Session) -> list[dict[str, Any]]:
    """Paid order totals per KST month (the 매출 screen's first figure)."""
    from core.models import Order, OrderStatus

    rows = session.exec(
        select(Order.ordered_at, Order.total_amount, Order.refunded_amount).where(
            col(Order.status).in_([OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED])
        )
    ).all()
    months: dict[str, int] = {}
    for ordered_at, total, refunded in rows:
        key = clock.to_kst(ordered_at).strftime("%Y-%m")
        months[key] = months.get(key, 0) + total - refunded
    return [{"월": month, "순매출": amount} for month, amount in sorted(months.items())]
