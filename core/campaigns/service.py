"""What staff do to a campaign: create, plan (count and cost), preview, schedule, cancel, start the
smart test, send the winner, save a segment and the price per message (role-checked, audited).

A campaign is sent once: every start is a conditional UPDATE of its status (only one caller, worker
or double click, wins); the queueing is in sending.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select, update
from sqlmodel import Session

from core import clock, settings_store
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.campaigns.content import _Renderer, _variable_values, validate_variants
from core.campaigns.queries import _get, product_categories
from core.campaigns.reach import _members, count_segment, is_night_kst, next_ad_window
from core.campaigns.results import results
from core.campaigns.segments import segment_condition
from core.campaigns.sending import Progress, _queue
from core.campaigns.smart_test import DEFAULT_OPTIONS, WINNER_RULES, assign_groups, choose_winner
from core.campaigns.tables import R
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Campaign, CampaignStatus, RecipientGroup, Role, Segment

DEFAULT_PRICE_PER_MESSAGE = 15  # KRW per FriendTalk message; owner setting campaign_price_per_message


def save_segment(session: Session, actor: Actor, *, name: str, rules: dict[str, Any]) -> Segment:
    """Keep the rules (not the members): the segment is evaluated again when a campaign is sent."""
    require_role(actor, Role.STAFF, Role.OWNER)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("세그먼트 이름을 입력하세요")
    segment_condition(session, rules, clock.now())  # validates
    segment = Segment(name=name[:120], rules=rules, created_by=actor.id)
    session.add(segment)
    session.flush()
    audit.record(session, actor, "segment.save", "segment", segment.id, name=name, rules=rules)
    return segment


def _validate_link(url: str | None) -> str | None:
    if not url:
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed(f"링크는 http:// 또는 https:// 주소여야 합니다: {url!r}")
    return url.strip()


def create_campaign(
    session: Session,
    actor: Actor,
    *,
    name: str,
    bodies: Sequence[str],
    rules: dict[str, Any] | None = None,
    segment_id: int | None = None,
    test_share: float = 0.1,
    holdout_share: float = 0.0,
    options: dict[str, Any] | None = None,
) -> Campaign:
    """A draft campaign; its segment is evaluated only when it starts."""
    require_role(actor, Role.STAFF, Role.OWNER)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("캠페인 이름을 입력하세요")
    if segment_id is not None:
        segment = session.get(Segment, segment_id)
        if segment is None:
            raise NotFound("세그먼트를 찾을 수 없습니다")
        rules = segment.rules
    if not rules:
        raise ValidationFailed("세그먼트 조건을 정하세요")
    segment_condition(session, rules, clock.now())
    merged = {**DEFAULT_OPTIONS, **(options or {})}
    merged["link_url"] = _validate_link(merged.get("link_url"))
    if merged["winner_rule"] not in WINNER_RULES:
        raise ValidationFailed(f"알 수 없는 승자 규칙입니다: {merged['winner_rule']!r}")
    if int(merged["attribution_days"]) < 1 or int(merged["test_window_hours"]) < 1:
        raise ValidationFailed("테스트 시간과 귀속 기간은 1 이상이어야 합니다")
    merged["advertised_category"] = (merged.get("advertised_category") or "").strip() or None
    if merged["advertised_category"] and merged["advertised_category"] not in product_categories(session):
        raise ValidationFailed(f"없는 상품 분류입니다: {merged['advertised_category']!r}")
    variants = validate_variants(bodies, link_url=merged["link_url"])
    if len(variants) > 1 and not 0 < test_share <= 0.5:
        raise ValidationFailed("테스트 비율은 0%보다 크고 50% 이하여야 합니다")
    if not 0 <= holdout_share <= 0.5:
        raise ValidationFailed("대조군 비율은 0~50%여야 합니다")
    campaign = Campaign(
        name=name[:120],
        segment_id=segment_id,
        segment_rules=rules,
        variants=variants,
        test_share=test_share if len(variants) > 1 else 0.0,
        holdout_share=holdout_share,
        options=merged,
        created_by=actor.id,
    )
    session.add(campaign)
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.create",
        "campaign",
        campaign.id,
        name=name,
        variants=len(variants),
        test_share=test_share,
        holdout_share=holdout_share,
    )
    return campaign


def _transition(
    session: Session, campaign_id: int, sources: Iterable[str], target: str, **values: Any
) -> bool:
    """Move the status only if it is still one of `sources`: the one winner of a race gets True."""
    result = session.execute(
        update(Campaign.__table__)
        .where(Campaign.__table__.c.id == campaign_id, Campaign.__table__.c.status.in_(list(sources)))
        .values(status=target, **values)
    )
    session.expire_all()
    return result.rowcount == 1


PRICE_SETTING = "campaign_price_per_message"
MAX_PRICE_PER_MESSAGE = 1000  # KRW: above any Kakao/SMS rate, so a larger number is a typo


def price_per_message(session: Session) -> int:
    """What the provider charges per message (KRW), for the cost shown before sending."""
    value = settings_store.get(session, PRICE_SETTING)
    return DEFAULT_PRICE_PER_MESSAGE if value is None else int(value)


def set_price_per_message(session: Session, actor: Actor, value: Any) -> int:
    """The owner sets the price per message; validated, audited with the old value (settings_store)."""
    require_role(actor, Role.OWNER)
    text_value = str(value).replace(",", "").replace("원", "").strip() if value is not None else ""
    try:
        price = int(text_value)
    except ValueError:
        raise ValidationFailed(f"건당 비용은 원 단위 정수여야 합니다: {value!r}") from None
    if not 0 <= price <= MAX_PRICE_PER_MESSAGE:
        raise ValidationFailed(
            f"건당 비용은 0원 이상 {MAX_PRICE_PER_MESSAGE:,}원 이하여야 합니다: {price:,}원"
        )
    settings_store.put(session, actor, PRICE_SETTING, price)
    return price


@dataclass
class SendPlan:
    """What the confirmation dialog shows before anything is queued."""

    reachable: int
    excluded: dict[str, int]
    test: int
    holdout: int
    rest: int
    messages_now: int
    price: int
    cost: int
    held_until: datetime | None
    message: str | None
    by_purchase_exception: int = 0  # reachable without consent through a recent same-kind purchase


def plan(session: Session, campaign_id: int, *, now: datetime | None = None) -> SendPlan:
    now = now or clock.now()
    campaign = _get(session, campaign_id)
    counted = count_segment(
        session,
        campaign.segment_rules,
        now=now,
        sample_size=0,
        advertised_category=campaign.options.get("advertised_category"),
    )
    holdout = int(counted.reachable * campaign.holdout_share)
    test = int(counted.reachable * campaign.test_share) if len(campaign.variants) > 1 else 0
    rest = counted.reachable - holdout - test
    messages_now = test if test else rest
    return SendPlan(
        reachable=counted.reachable,
        excluded=counted.excluded,
        test=test,
        holdout=holdout,
        rest=rest,
        messages_now=messages_now,
        price=price_per_message(session),
        cost=messages_now * price_per_message(session),
        held_until=next_ad_window(now) if is_night_kst(now) else None,
        message=counted.message,
        by_purchase_exception=counted.by_purchase_exception,
    )


@dataclass
class PreviewLine:
    customer_id: int
    name: str
    variant: str
    text: str | None
    skipped_reason: str | None
    send_after: datetime


def preview(
    session: Session, campaign_id: int, *, now: datetime | None = None, limit: int = 3
) -> list[PreviewLine]:
    """Each variant rendered for a few real members, with the advertising frame applied."""
    now = now or clock.now()
    campaign = _get(session, campaign_id)
    members = _members(session, campaign, now, limit=limit)
    renderer = _Renderer(campaign, now)
    extra = _variable_values(session, [m[0] for m in members], renderer.needed)
    lines = []
    for variant in campaign.variants:
        for member in members:
            text, reason, send_after = renderer.message(variant["key"], member, extra)
            lines.append(PreviewLine(member[0], member[1], variant["key"], text, reason, send_after))
    return lines


def schedule(session: Session, actor: Actor, campaign_id: int, at: datetime) -> Campaign:
    require_role(actor, Role.STAFF, Role.OWNER)
    if at.tzinfo is None:
        raise ValidationFailed("예약 시각에 시간대가 없습니다")
    if at <= clock.now():
        raise ValidationFailed("예약 시각은 지금 이후여야 합니다")
    if not _transition(
        session,
        campaign_id,
        [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED],
        CampaignStatus.SCHEDULED,
        scheduled_at=at,
    ):
        raise Conflict("이미 시작되었거나 취소된 캠페인은 예약할 수 없습니다")
    audit.record(session, actor, "campaign.schedule", "campaign", campaign_id, at=at.isoformat())
    return _get(session, campaign_id)


def cancel(session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """Until it starts (or, during a test, before the rest is sent); queued messages are not recalled."""
    require_role(actor, Role.STAFF, Role.OWNER)
    if not _transition(
        session,
        campaign_id,
        [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.TESTING],
        CampaignStatus.CANCELED,
        finished_at=clock.now(),
    ):
        raise Conflict("이미 발송이 시작된 캠페인은 취소할 수 없습니다")
    audit.record(session, actor, "campaign.cancel", "campaign", campaign_id)
    return _get(session, campaign_id)


def start(
    session: Session,
    actor: Actor,
    campaign_id: int,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Send now: the test to the sample (2+ variants) or the one message to everyone.

    The status moves first with a conditional UPDATE: a double click, a rerun or a second worker
    finds it already moved and gets Conflict. Everything below is in the same transaction.
    """
    require_role(actor, Role.STAFF, Role.OWNER)
    now = now or clock.now()
    campaign = _get(session, campaign_id)
    testing = len(campaign.variants) > 1
    target = CampaignStatus.TESTING if testing else CampaignStatus.SENDING
    if not _transition(
        session,
        campaign_id,
        [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED],
        target,
        started_at=now,
        test_sent_at=now if testing else None,
    ):
        raise Conflict("이미 시작되었거나 취소된 캠페인입니다")
    campaign = _get(session, campaign_id)
    members = _members(session, campaign, now)
    if not members:
        raise ValidationFailed("광고를 받을 수 있는 고객이 없습니다. 세그먼트를 확인하세요.")
    keys = [v["key"] for v in campaign.variants]
    assignments = assign_groups(
        members,
        seed=f"{campaign.options.get('seed', 0)}:{campaign.id}",
        keys=keys,
        test_share=campaign.test_share,
        holdout_share=campaign.holdout_share,
    )
    counts = _queue(session, campaign, assignments, now, progress)
    audit.record(session, actor, "campaign.start", "campaign", campaign_id, test=testing, **counts)
    return counts


def send_winner(
    session: Session,
    actor: Actor,
    campaign_id: int,
    *,
    variant: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """The chosen variant (or the rule's pick when `variant` is None) to everyone not yet reached."""
    require_role(actor, Role.STAFF, Role.OWNER)
    now = now or clock.now()
    campaign = _get(session, campaign_id)
    keys = [v["key"] for v in campaign.variants]
    explanation = "담당자 선택"
    if variant is None:
        variant, explanation = choose_winner(
            results(session, campaign_id, now=now).variants, campaign.options.get("winner_rule", "click_rate")
        )
    if variant not in keys:
        raise ValidationFailed(f"없는 안입니다: {variant!r}")
    if not _transition(
        session, campaign_id, [CampaignStatus.TESTING], CampaignStatus.SENDING, winner_variant=variant
    ):
        raise Conflict("테스트 중인 캠페인만 나머지에게 보낼 수 있습니다 (이미 보냈거나 취소됨)")
    campaign = _get(session, campaign_id)
    campaign.options = {**campaign.options, "rest_sent_at": now.isoformat(), "winner_reason": explanation}
    session.add(campaign)
    reached = select(R.customer_id).where(R.campaign_id == campaign_id)
    # Everyone in the plan: those over today's ad limit are queued too, and the sender holds them
    # to their next free day (visible on 메시지 and counted on the results), never dropped.
    members = _members(session, campaign, now, pressure=False)
    under_limit = {m[0] for m in _members(session, campaign, now)}
    already = {row[0] for row in session.execute(reached).all()}
    rest = [(m, RecipientGroup.REST, variant) for m in members if m[0] not in already]
    counts = _queue(session, campaign, rest, now, progress)
    counts["over_limit"] = sum(1 for m, _, _ in rest if m[0] not in under_limit)
    audit.record(
        session,
        actor,
        "campaign.send_winner",
        "campaign",
        campaign_id,
        variant=variant,
        reason=explanation,
        **counts,
    )
    return counts
