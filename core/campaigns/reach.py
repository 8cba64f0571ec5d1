"""Who of a segment can be reached by an advertising message (Korean ad law and consents, the
daily ad limit, night hours 21:00~08:00, the (광고) frame), the count the 캠페인 page shows, and
the members a send is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, not_, or_, select, text
from sqlmodel import Session

from core import clock
from core.campaigns.segments import EXCLUSION_LABELS, segment_condition
from core.campaigns.tables import CPS, SLOT, C, M, P
from core.config import get_settings
from core.messaging import compliance
from core.messaging.sender import messaging_settings
from core.models import Campaign, Customer

# ---------------------------------------------------------------------------------------------
# Reachability: who may receive advertising. Kept in one place so it can follow core/messaging.
# ---------------------------------------------------------------------------------------------


def daily_ad_limit(session: Session) -> int:
    """The sender's pressure limit (ads per customer per KST day), so counts match what it sends."""
    return int(messaging_settings(session)["daily_ad_limit"])


def purchase_exception(now: datetime, advertised_category: str | None) -> ColumnElement[bool]:
    """Customers a purchase stands in for ad consent for (정보통신망법 제50조①1, CONTRACTS.md): they
    paid for goods of the advertised kind (the product category the campaign advertises) within
    the last 6 months as the law counts them (compliance.earliest_excepting_purchase). Read from the
    per-product summaries, by the same last paid_at the sender checks message by message."""
    if not advertised_category:
        return false()
    return C.id.in_(
        select(CPS.customer_id).where(
            CPS.product_id.in_(select(P.id).where(P.category == advertised_category)),
            CPS.last_paid_at >= compliance.earliest_excepting_purchase(now),
            CPS.last_paid_at <= now,
        )
    )


def exclusion_reason(
    session: Session,
    now: datetime,
    *,
    campaign_id: int | None = None,
    advertised_category: str | None = None,
    pressure: bool = True,
) -> ColumnElement[str | None]:
    """The first reason a customer may not get an ad now, NULL when they may (SQL CASE).

    The same rules as core.messaging.compliance.check, as SQL over all members at once: opt-out
    (unless consented again after it), consent or the same-kind purchase exception, a Korean
    mobile number (Customer.mobile), a KakaoTalk channel friend, and the sender's pressure limit. The night ban is not an
    exclusion: those messages are held to 08:00. With `pressure=False` the daily limit is not one
    either (the smart test's winner: whoever is over today's limit is held to their next free day
    by the sender, never dropped).
    """
    # The sender's ledger of today's (KST) ad slots: a customer whose slots are all taken gets
    # this campaign's ad held to tomorrow, so today's reach leaves them out.
    recent_ads = (
        select(SLOT.customer_id)
        .where(SLOT.kst_day == clock.today_kst(now))
        .group_by(SLOT.customer_id)
        .having(func.count() >= daily_ad_limit(session))
    )
    if campaign_id is not None:
        recent_ads = recent_ads.where(
            SLOT.message_id.not_in(select(M.id).where(M.campaign_id == campaign_id))
        )
    return case(
        (
            and_(
                C.ad_opt_out_at.is_not(None),
                or_(C.ad_consent_at.is_(None), C.ad_opt_out_at >= C.ad_consent_at),
            ),
            literal("opted_out"),
        ),
        (
            and_(C.ad_consent_at.is_(None), not_(purchase_exception(now, advertised_category))),
            literal("no_consent"),
        ),
        (C.mobile.is_(None), literal("not_mobile")),  # no phone, a landline, a short number, text
        (C.is_channel_friend.is_(False), literal("not_friend")),
        (and_(literal(pressure), C.id.in_(recent_ads)), literal("pressure")),
        else_=None,
    )


def is_night_kst(at: datetime) -> bool:
    return compliance.in_night_ban(at)


def next_ad_window(at: datetime) -> datetime:
    """08:00 KST after a night instant (ads are held, not dropped); `at` itself by day."""
    return compliance.next_day_start(at) if compliance.in_night_ban(at) else at


def shop() -> compliance.Shop:
    settings = get_settings()
    return compliance.Shop(
        name=settings.shop_name, opt_out_number=settings.opt_out_number, phone=settings.shop_phone
    )


def ad_text(body: str, shop_info: compliance.Shop | None = None) -> str:
    """The advertising frame the law asks for ("(광고)" + shop first, contact, free opt-out last)."""
    return compliance.advertising_text(body, shop_info or shop())


# ---------------------------------------------------------------------------------------------
# Counting and sampling
# ---------------------------------------------------------------------------------------------


@dataclass
class SegmentCount:
    total: int
    reachable: int
    excluded: dict[str, int]
    sample: list[dict[str, Any]]
    message: str | None = None  # shown when nobody matches or nobody is reachable
    by_purchase_exception: int = 0  # reachable without consent: a same-kind purchase in 6 months

    @property
    def excluded_labels(self) -> dict[str, int]:
        return {EXCLUSION_LABELS[k]: v for k, v in self.excluded.items() if v}


def count_segment(
    session: Session,
    rules: dict[str, Any],
    *,
    now: datetime | None = None,
    sample_size: int = 10,
    advertised_category: str | None = None,
) -> SegmentCount:
    """Live count: members, how many may get an ad, how many are excluded and why, and a sample.

    `advertised_category`: the kind of goods the ad is about; customers who bought that kind in the
    last 6 months count as reachable without consent (the law's one exception)."""
    now = now or clock.now()
    condition = segment_condition(session, rules, now)
    _roomy_aggregates(session)
    why_not = exclusion_reason(session, now, advertised_category=advertised_category)
    reason = why_not.label("reason")
    without_consent = func.sum(case((C.ad_consent_at.is_(None), 1), else_=0))
    rows = session.execute(
        select(reason, func.count(), without_consent)
        .select_from(Customer.__table__)
        .where(condition)
        .group_by(reason)
    ).all()
    excluded = {key: 0 for key in EXCLUSION_LABELS}
    reachable = by_exception = 0
    for why, count, no_consent in rows:
        if why is None:
            reachable += count
            by_exception += int(no_consent or 0)
        else:
            excluded[why] = count
    total = reachable + sum(excluded.values())
    sample = []
    if sample_size and reachable:
        sample_rows = session.execute(
            select(C.id, C.name, C.mobile.label("phone"))
            .where(condition, why_not.is_(None))
            .order_by(C.id.desc())
            .limit(sample_size)
        ).all()
        sample = [{"id": r.id, "name": r.name, "phone": _mask_phone(r.phone)} for r in sample_rows]
    message = None
    if total == 0:
        message = "조건에 맞는 고객이 없습니다. 조건을 완화해 보세요."
    elif reachable == 0:
        message = f"조건에 맞는 고객 {total:,}명 중 광고를 받을 수 있는 고객이 없습니다."
    return SegmentCount(total, reachable, excluded, sample, message, by_exception)


def _roomy_aggregates(session: Session) -> None:
    """PostgreSQL: let this transaction's GROUP BYs over a million orders hash in memory, not spill."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def _mask_phone(phone: str | None) -> str:
    if not phone:
        return "-"
    digits = phone.replace("-", "")
    return digits[:3] + "-****-" + digits[-4:] if len(digits) >= 8 else "****"


Member = tuple[int, str, str, bool, str | None]  # id, name, public_id, night consent, mobile (canonical)


def _members(
    session: Session, campaign: Campaign, now: datetime, *, limit: int | None = None, pressure: bool = True
) -> list[Member]:
    condition = segment_condition(session, campaign.segment_rules, now)
    _roomy_aggregates(session)
    query = (
        select(C.id, C.name, C.public_id, C.night_ad_consent_at.is_not(None), C.mobile)
        .where(
            condition,
            exclusion_reason(
                session,
                now,
                campaign_id=campaign.id,
                advertised_category=campaign.options.get("advertised_category"),
                pressure=pressure,
            ).is_(None),
        )
        .order_by(C.id)
    )
    if limit:
        query = query.limit(limit)
    return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]
