"""Where the SLA engine's inputs live: policies (sla_policy), business hours (settings), closed days.

Reading is for everyone (services, worker, pages); changing is owner-only and audited. A change
must re-time the open inquiries so cached deadlines never disagree with the policy on screen: the
inquiry service does that (core.inquiries.service.save_policy and friends store here, then
recompute), so this module stays below the service and never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, select

from core import settings_store
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers.identity import NOT_MOBILE, identify
from core.errors import ValidationFailed
from core.inquiries import sla
from core.models import ClosedDay, InquiryType, Role, SlaPolicy

# The SLA's settings (in settings_store) and their defaults.
SETTING_DEFAULTS: dict[str, Any] = {
    # Business hours per ISO weekday (1=Mon..7=Sun) as [["HH:MM","HH:MM"], ...] windows in KST.
    "business_hours": {
        "1": [["09:00", "12:00"], ["13:00", "18:00"]],
        "2": [["09:00", "12:00"], ["13:00", "18:00"]],
        "3": [["09:00", "12:00"], ["13:00", "18:00"]],
        "4": [["09:00", "12:00"], ["13:00", "18:00"]],
        "5": [["09:00", "12:00"], ["13:00", "18:00"]],
        "6": [],
        "7": [],
    },
    "observe_public_holidays": True,
    # SLA alerts also by message (AlimTalk/SMS through the outbox) to the CS lead's phone; see
    # AlertMessage below.
    "sla_alert_message": {"enabled": False, "phone": "", "thresholds": ["at_risk", "breached"]},
    # Shorter targets for VIP customers' inquiries (core.customers.vip), in minutes; None: the type's.
    "vip_sla": {"first_response_minutes": None, "resolution_minutes": None},
}


def setting(session: Session, key: str) -> Any:
    """One of the SLA's settings (SETTING_DEFAULTS' keys), the default when never set."""
    return settings_store.get(session, key, SETTING_DEFAULTS[key])


@dataclass(frozen=True)
class SlaConfig:
    policies: dict[str, sla.Policy]
    business_calendar: sla.Calendar
    vip_first_response: timedelta | None = None
    vip_resolution: timedelta | None = None

    def policy(self, inquiry_type: str, vip: bool = False) -> sla.Policy:
        found = self.policies.get(inquiry_type) or self.policies.get("other") or sla.DEFAULT_POLICIES["other"]
        return sla.vip_policy(found, self.vip_first_response, self.vip_resolution) if vip else found

    def calendar_for(self, inquiry_type: str) -> sla.Calendar:
        return sla.calendar_for(self.policy(inquiry_type), self.business_calendar)


def load(session: Session) -> SlaConfig:
    policies = dict(sla.DEFAULT_POLICIES)
    for row in session.exec(select(SlaPolicy)).all():
        policies[row.inquiry_type] = sla.policy_minutes(
            row.inquiry_type,
            row.first_response_minutes,
            row.resolution_minutes,
            row.calendar,
            row.at_risk_share,
        )
    closed = [row.day for row in session.exec(select(ClosedDay)).all()]
    calendar = sla.business(
        setting(session, "business_hours"),
        observe_public_holidays=bool(setting(session, "observe_public_holidays")),
        closed_days=closed,
    )
    vip_first, vip_resolution = _vip_minutes(setting(session, "vip_sla"))
    return SlaConfig(
        policies,
        calendar,
        timedelta(minutes=vip_first) if vip_first else None,
        timedelta(minutes=vip_resolution) if vip_resolution else None,
    )


def _vip_minutes(stored: Any) -> tuple[int | None, int | None]:
    stored = stored if isinstance(stored, dict) else {}
    return stored.get("first_response_minutes"), stored.get("resolution_minutes")


def store_vip_sla(
    session: Session, actor: Actor, *, first_response_minutes: int | None, resolution_minutes: int | None
) -> None:
    """The VIP targets (owner only, audited; None: the type's target); the caller re-times open inquiries."""
    require_role(actor, Role.OWNER)
    for label, minutes in (("VIP 첫 응답", first_response_minutes), ("VIP 해결", resolution_minutes)):
        if minutes is None:
            continue
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_POLICY_MINUTES:
            raise ValidationFailed(f"{label} 목표는 1~{MAX_POLICY_MINUTES:,}분 사이의 정수여야 합니다: {minutes!r}")
    settings_store.put(
        session,
        actor,
        "vip_sla",
        {"first_response_minutes": first_response_minutes, "resolution_minutes": resolution_minutes},
    )


MAX_POLICY_MINUTES = 366 * 24 * 60  # a target over a year is a typo, and timedelta math stays small


def store_policy(
    session: Session,
    actor: Actor,
    *,
    inquiry_type: str,
    first_response_minutes: int,
    resolution_minutes: int,
    calendar: str = "business",
    at_risk_share: float = sla.DEFAULT_AT_RISK_SHARE,
) -> SlaPolicy:
    """Create or change one type's targets (owner only); the caller re-times open inquiries."""
    require_role(actor, Role.OWNER)
    if inquiry_type not in {t.value for t in InquiryType}:
        raise ValidationFailed(f"알 수 없는 문의 유형입니다: {inquiry_type!r}")
    for label, minutes in (("첫 응답", first_response_minutes), ("해결", resolution_minutes)):
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes > MAX_POLICY_MINUTES:
            raise ValidationFailed(f"{label} 목표는 {MAX_POLICY_MINUTES:,}분 이하의 정수여야 합니다: {minutes!r}")
    if isinstance(at_risk_share, bool) or not isinstance(at_risk_share, (int, float)):
        raise ValidationFailed(f"임박 비율은 0과 1 사이의 숫자여야 합니다: {at_risk_share!r}")
    sla.validate_policy(
        timedelta(minutes=first_response_minutes),
        timedelta(minutes=resolution_minutes),
        calendar,
        at_risk_share,
    )
    row = session.exec(select(SlaPolicy).where(SlaPolicy.inquiry_type == inquiry_type)).first()
    old: dict[str, Any] | None = None
    if row is None:
        row = SlaPolicy(
            inquiry_type=inquiry_type,
            first_response_minutes=first_response_minutes,
            resolution_minutes=resolution_minutes,
        )
    else:
        old = {
            "first": row.first_response_minutes,
            "resolution": row.resolution_minutes,
            "calendar": row.calendar,
            "share": row.at_risk_share,
        }
    row.first_response_minutes = first_response_minutes
    row.resolution_minutes = resolution_minutes
    row.calendar = calendar
    row.at_risk_share = at_risk_share
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "sla.policy_change",
        "sla_policy",
        inquiry_type,
        old=old,
        new={
            "first": first_response_minutes,
            "resolution": resolution_minutes,
            "calendar": calendar,
            "share": at_risk_share,
        },
    )
    return row


def store_business_hours(
    session: Session, actor: Actor, business_hours: dict[str, list[list[str]]], observe_public_holidays: bool
) -> None:
    """Validate (windows, at least one open hour) before storing; the caller re-times open inquiries."""
    require_role(actor, Role.OWNER)
    sla.business(business_hours, observe_public_holidays=observe_public_holidays)  # raises on bad input
    settings_store.put(session, actor, "business_hours", business_hours)
    settings_store.put(session, actor, "observe_public_holidays", observe_public_holidays)


def store_closed_day(session: Session, actor: Actor, day: date, reason: str = "") -> ClosedDay:
    require_role(actor, Role.OWNER)
    if session.exec(select(ClosedDay).where(ClosedDay.day == day)).first():
        raise ValidationFailed(f"이미 휴무일입니다: {day.isoformat()}")
    row = ClosedDay(day=day, reason=reason.strip()[:200])
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "sla.closed_day_add", "closed_day", row.id, day=day.isoformat(), reason=reason
    )
    return row


def delete_closed_day(session: Session, actor: Actor, day: date) -> None:
    require_role(actor, Role.OWNER)
    row = session.exec(select(ClosedDay).where(ClosedDay.day == day)).first()
    if row is None:
        raise ValidationFailed(f"휴무일이 아닙니다: {day.isoformat()}")
    session.delete(row)
    session.flush()
    audit.record(session, actor, "sla.closed_day_remove", "closed_day", row.id, day=day.isoformat())


def list_closed_days(session: Session) -> list[ClosedDay]:
    return list(session.exec(select(ClosedDay).order_by(ClosedDay.day)).all())


ALERT_THRESHOLDS = {"at_risk": "기한 임박", "breached": "기한 초과"}


@dataclass(frozen=True)
class AlertMessage:
    """Whether the SLA watch also sends its alerts by message, to which staff phone, for which
    thresholds. Informational (never an advertising message), through the messaging outbox."""

    enabled: bool = False
    phone: str = ""  # normalised 010-XXXX-XXXX
    thresholds: frozenset[str] = frozenset(ALERT_THRESHOLDS)

    def wants(self, threshold: str) -> bool:
        return self.enabled and bool(self.phone) and threshold in self.thresholds


def alert_message(session: Session) -> AlertMessage:
    raw = setting(session, "sla_alert_message") or {}
    return AlertMessage(
        enabled=bool(raw.get("enabled")),
        phone=str(raw.get("phone") or ""),
        thresholds=frozenset(t for t in raw.get("thresholds", ()) if t in ALERT_THRESHOLDS),
    )


def save_alert_message(
    session: Session, actor: Actor, *, enabled: bool, phone: str, thresholds: list[str]
) -> AlertMessage:
    """Owner only, audited. Enabling needs a valid Korean mobile number and at least one threshold."""
    require_role(actor, Role.OWNER)
    unknown = [t for t in thresholds if t not in ALERT_THRESHOLDS]
    if unknown:
        raise ValidationFailed(f"알 수 없는 알림 단계입니다: {', '.join(map(str, unknown))}")
    normalised = ""
    if (phone or "").strip():
        found = identify(phone)  # one canonical form, the same as customers' (core.customers.identity)
        if not found.is_mobile:
            raise ValidationFailed(f"알림 받을 번호가 잘못되었습니다: {NOT_MOBILE} ({(phone or '').strip()[:40]})")
        normalised = found.display
    if enabled and not normalised:
        raise ValidationFailed("메시지 알림을 켜려면 받을 휴대전화 번호를 입력하세요")
    if enabled and not thresholds:
        raise ValidationFailed("메시지로 받을 알림(기한 임박·기한 초과)을 하나 이상 고르세요")
    ordered = [t for t in ALERT_THRESHOLDS if t in thresholds]
    settings_store.put(
        session, actor, "sla_alert_message", {"enabled": enabled, "phone": normalised, "thresholds": ordered}
    )
    return AlertMessage(enabled, normalised, frozenset(ordered))


WEEKDAY_LABELS = ["월", "화", "수", "목", "금", "토", "일"]


def format_hours_text(windows: list[list[str]]) -> str:
    """[["09:00","12:00"],["13:00","18:00"]] -> "09:00-12:00, 13:00-18:00" (empty: 휴무)."""
    return ", ".join(f"{start}-{end}" for start, end in windows or [])


def parse_hours_text(text: str) -> list[list[str]]:
    """ "09:00-12:00, 13:00-18:00" -> [["09:00","12:00"],["13:00","18:00"]]; blank or 휴무 -> []."""
    text = (text or "").strip()
    if not text or text in ("휴무", "-"):
        return []
    windows = []
    for part in text.replace("~", "-").split(","):
        pieces = [p.strip() for p in part.split("-")]
        if len(pieces) != 2 or not all(pieces):
            raise ValidationFailed(
                f"영업시간 형식이 잘못되었습니다: {part.strip()!r} (예: 09:00-12:00, 13:00-18:00)"
            )
        windows.append(pieces)
    sla.parse_windows(windows)  # validates
    return windows
