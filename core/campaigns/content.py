"""A campaign's message content: the #{변수} variables, rendering, tracked links, validation of the
variants and the (광고) frame around an advertising text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlmodel import Session

from core.campaigns.reach import Member, ad_text, next_ad_window, shop
from core.campaigns.tables import CS
from core.config import get_settings
from core.errors import ValidationFailed
from core.messaging import compliance
from core.models import Campaign

MAX_VARIANTS = 5
MAX_BODY_CHARS = 1000
CHUNK = 5000


# ---------------------------------------------------------------------------------------------
# Composing: #{variables}
# ---------------------------------------------------------------------------------------------

VARIABLE_PATTERN = re.compile(r"#\{([^{}]+)\}")
VARIABLES = {
    "이름": "고객 이름",
    "최근구매상품": "가장 최근 구매한 상품",
    "구매횟수": "결제 완료 주문 수",
    "누적구매액": "누적 구매 금액",
    "링크": "클릭이 기록되는 링크",
}


def variables_in(body: str) -> list[str]:
    return list(dict.fromkeys(VARIABLE_PATTERN.findall(body)))


def render(body: str, values: dict[str, str | None]) -> tuple[str | None, list[str]]:
    """The body with #{variables} filled; (None, missing) when any has no value for this person."""
    missing = [name for name in variables_in(body) if not values.get(name)]
    if missing:
        return None, missing
    return VARIABLE_PATTERN.sub(lambda m: str(values[m.group(1)]), body), []


def tracked_link(campaign_id: int, public_id: str, variant: str | None) -> str:
    base = get_settings().public_base_url.rstrip("/")
    query = {"c": campaign_id, "u": public_id}
    if variant:
        query["v"] = variant
    return f"{base}/go?{urlencode(query)}"


def _variable_values(
    session: Session, customer_ids: Sequence[int], needed: set[str]
) -> dict[int, dict[str, str | None]]:
    """Per-customer values of the order-derived variables the bodies use, from customer_summary
    (the same columns the set-based queue renders from)."""
    from core.money import format_krw

    values: dict[int, dict[str, str | None]] = defaultdict(dict)
    if not customer_ids or not needed & {"최근구매상품", "구매횟수", "누적구매액"}:
        return values
    for start in range(0, len(customer_ids), CHUNK):
        ids = list(customer_ids[start : start + CHUNK])
        rows = session.execute(
            select(CS.customer_id, CS.paid_orders, CS.paid_total, CS.last_product_name).where(
                CS.customer_id.in_(ids)
            )
        ).all()
        for customer_id, count, total, product_name in rows:
            values[customer_id]["구매횟수"] = f"{count}"
            values[customer_id]["누적구매액"] = format_krw(int(total or 0))
            values[customer_id]["최근구매상품"] = product_name
    return values


def validate_variants(bodies: Sequence[str], *, link_url: str | None) -> list[dict[str, str]]:
    """1 body (send to all) or 2-5 (a smart test); known #{variables} only; within Kakao's size."""
    bodies = [b.strip() for b in bodies if b and b.strip()]
    if not bodies:
        raise ValidationFailed("메시지 내용을 입력하세요")
    if len(bodies) > MAX_VARIANTS:
        raise ValidationFailed(f"테스트 안은 최대 {MAX_VARIANTS}개입니다")
    variants = []
    for index, body in enumerate(bodies):
        key = "ABCDE"[index]
        unknown = [v for v in variables_in(body) if v not in VARIABLES]
        if unknown:
            raise ValidationFailed(
                f"{key}안: 알 수 없는 변수 {', '.join('#{' + u + '}' for u in unknown)} "
                f"(사용 가능: {', '.join('#{' + v + '}' for v in VARIABLES)})"
            )
        if "링크" in variables_in(body) and not link_url:
            raise ValidationFailed(f"{key}안: #{{링크}}를 쓰려면 링크 주소를 입력하세요")
        if len(ad_text(body)) > MAX_BODY_CHARS:
            raise ValidationFailed(f"{key}안: 광고 표기 포함 {MAX_BODY_CHARS}자를 넘습니다")
        variants.append({"key": key, "body": body})
    return variants


def ad_frame(body: str, shop_info: compliance.Shop | None = None) -> tuple[str, str]:
    """What compliance.advertising_text puts before and after a body (stripped of any frame
    typed into it: see compliance.strip_ad_frame): "(광고) shop" first, the contact and the free
    opt-out line last, always."""
    shop_info = shop_info or shop()
    stripped = compliance.strip_ad_frame(body, shop_info)
    framed = compliance.advertising_text(stripped, shop_info)
    at = framed.index(stripped) if stripped else framed.index("\n") + 1
    return framed[:at], framed[at + len(stripped) :]


class _Renderer:
    """Everything per campaign computed once: the preview renders in Python, _queue in SQL, from
    the same bodies, frames and values (tests compare the two)."""

    def __init__(self, campaign: Campaign, now: datetime) -> None:
        framing = shop()
        self.bodies = {v["key"]: compliance.strip_ad_frame(v["body"], framing) for v in campaign.variants}
        self.frames = {key: ad_frame(body) for key, body in self.bodies.items()}
        self.variables = {key: variables_in(body) for key, body in self.bodies.items()}
        self.needed = {name for names in self.variables.values() for name in names}
        self.uses_summary = bool(self.needed & {"최근구매상품", "구매횟수", "누적구매액"})
        self.link_base = tracked_link(campaign.id, "", None).split("&u=")[0] + "&u="
        self.now = now
        self.held_until = next_ad_window(now)

    def message(
        self, variant: str, member: Member, extra: dict[int, dict[str, str | None]]
    ) -> tuple[str | None, str | None, datetime]:
        customer_id, name, public_id, night_ok = member[0], member[1], member[2], member[3]
        names = self.variables[variant]
        values: dict[str, str | None] = {"이름": name, **extra.get(customer_id, {})}
        if "링크" in names:
            values["링크"] = f"{self.link_base}{public_id}&v={variant}"
        send_after = self.now if night_ok else self.held_until
        missing = [n for n in names if not values.get(n)]
        if missing:
            return None, "값 없는 변수: " + ", ".join("#{" + m + "}" for m in missing), send_after
        body = self.bodies[variant]
        for n in names:
            body = body.replace("#{" + n + "}", str(values[n]))
        prefix, suffix = self.frames[variant]
        return prefix + body + suffix, None, send_after
