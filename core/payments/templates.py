"""Message templates the payment flows use (refund done, unpaid payment-link reminder).

The sender renders every message from its template (#{slot} variables, approved AlimTalk body), so
each flow makes sure its template exists before it queues the first message; existing templates
(perhaps edited by the owner) are never overwritten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.models import MessageKind, Template

PAYMENT_TEMPLATES: dict[str, dict[str, Any]] = {
    "refund_completed": {
        "name": "환불 완료",
        "body": (
            "#{고객명}님, 주문 #{주문번호}의 #{환불금액} 환불이 완료되었습니다.\n"
            "카드사·은행에 따라 실제 반영까지 영업일 기준 3~5일 걸릴 수 있습니다."
        ),
    },
    "payment_link_reminder": {
        "name": "결제 링크 리마인드",
        "body": (
            "#{고객명}님, 보내드린 #{상품명} #{결제금액} 결제 링크가 아직 결제 전입니다.\n"
            "결제하기: #{결제링크}\n"
            "링크 유효기간: #{만료일시}까지"
        ),
    },
}


def ensure_template(session: Session, key: str) -> None:
    if session.execute(select(Template.id).where(Template.key == key)).first() is not None:
        return
    spec = PAYMENT_TEMPLATES[key]
    session.add(
        Template(
            key=key,
            name=spec["name"],
            kind=MessageKind.INFORMATIONAL.value,
            body=spec["body"],
            approved_body=spec["body"],
        )
    )
    session.flush()
