"""Small builders for messaging tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.customers.identity import canonical_mobile
from core.messaging.automations import ensure_default_templates
from core.messaging.outbox import enqueue
from core.models import Customer, Message, MessageKind, Template

# The messaging tests' reference instant: the clock stands here unless a test moves it.
NOON = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 12:00 KST


def setup_templates(engine: Engine, alimtalk: bool = True) -> None:
    with Session(engine) as s:
        ensure_default_templates(s)
        s.add(
            Template(
                key="hello",
                name="인사",
                kind="informational",
                body="#{고객명}님 안녕하세요",
                approved_body="#{고객명}님 안녕하세요",
                alimtalk_template_id="KA01HELLO",
            )
        )
        s.add(Template(key="promo", name="광고", kind="advertising", body="#{고객명}님 세일 소식"))
        if alimtalk:
            for t in s.exec(select(Template)):
                t.alimtalk_template_id = t.alimtalk_template_id or f"KA01{t.key.upper()}"
                s.add(t)
        s.commit()


def customer(engine: Engine, name: str = "홍길동", phone: str | None = "010-1234-5678", **kw: Any) -> int:
    """A customer as the identity rules keep one: `mobile` is the canonical number, unless another
    test customer holds it already (then the row keeps only its phone text, as a duplicate would)."""
    with Session(engine) as s:
        mobile = canonical_mobile(phone)
        if mobile is not None and s.exec(select(Customer.id).where(Customer.mobile == mobile)).first():
            mobile = None
        kw.setdefault("mobile", mobile)
        c = Customer(name=name, phone=phone, **kw)
        s.add(c)
        s.commit()
        return c.id


def queue(
    engine: Engine,
    customer_id: int | None,
    key: str,
    template: str = "hello",
    kind: MessageKind = MessageKind.INFORMATIONAL,
    variables: dict | None = None,
    send_after: datetime | None = None,
    text: str = "",
) -> int:
    with Session(engine) as s:
        m = enqueue(
            s,
            customer_id=customer_id,
            template_key=template,
            idempotency_key=key,
            kind=kind,
            variables={"고객명": "홍길동"} if variables is None else variables,
            send_after=send_after,
            text=text,
        )
        s.commit()
        return m.id


def message(engine: Engine, key: str) -> Message:
    with Session(engine) as s:
        return s.exec(select(Message).where(Message.idempotency_key == key)).one()


def go_live(engine: Engine, since: datetime) -> None:
    """The automations went live at `since` (orders paid after it are live events, not history)."""
    from core.messaging.automations import LIVE_KEY
    from core.models import Setting

    with Session(engine) as s:
        s.merge(Setting(key=LIVE_KEY, value={"since": since.isoformat(), "history_from": None}))
        s.commit()
