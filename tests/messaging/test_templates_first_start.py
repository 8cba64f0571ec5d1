"""Every template exists from the first start, and a missing AlimTalk id holds, not fails (issue 15)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.messaging import sender, service
from core.messaging.default_templates import ensure_default_templates
from core.models import Template
from tests.messaging.helpers import NOON, customer, message, queue
from tests.messaging.test_sender import ScriptedProvider

# Every template key a flow in core/ queues a message under.
USED_KEYS = {
    "order_confirmation", "review_request", "review_reminder", "repurchase",  # automations
    "billing_notice", "billing_receipt", "billing_failed", "billing_dunning_end",  # billing
    "subscription_paused", "subscription_resumed", "subscription_canceled", "subscription_changed",
    "payment_link_reminder", "refund_completed",  # payments
    "inquiry_reply", "receipt", "sla_alert",  # inquiries
}  # fmt: skip


def test_every_template_a_flow_uses_exists_from_the_first_start(engine: Engine, actors) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        ensure_default_templates(s)
        s.commit()
        keys = set(s.exec(select(Template.key)))
        registry = service.template_registry(s)
    assert keys >= USED_KEYS
    assert len(registry) == len(keys)
    assert {r["알림톡 등록"] for r in registry} == {"미등록", "광고 (친구톡)"}  # nothing registered yet


def test_a_message_without_a_registered_id_is_held_then_sent_once_the_id_is_entered(
    engine: Engine, actors
) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        ensure_default_templates(s)
        s.commit()
    cid = customer(engine)
    queue(engine, cid, "refund:1", template="refund_completed",
          variables={"고객명": "홍길동", "주문번호": "CD-1", "환불금액": "30,000원"})  # fmt: skip
    provider = ScriptedProvider()  # an AlimTalk provider (Solapi)
    sender.run(engine, NOON, provider=provider)
    held = message(engine, "refund:1")
    assert held.status == "held" and "알림톡 템플릿 ID 미등록" in held.reason
    assert provider.batches == []
    sender.run(engine, NOON + timedelta(minutes=5), provider=provider)  # still nothing to send
    assert message(engine, "refund:1").status == "held"
    later = NOON + timedelta(minutes=10)
    with Session(engine) as s:
        from core import clock

        with clock.frozen(later):
            service.update_template(s, actors["owner"], "refund_completed", alimtalk_template_id="KA01REFUND")
        s.commit()
    sender.run(engine, later, provider=provider)
    sent = message(engine, "refund:1")
    assert sent.status == "sent" and sent.attempts == 1
    (batch,) = provider.batches
    assert batch[0].template_id == "KA01REFUND" and "30,000원" in batch[0].text
