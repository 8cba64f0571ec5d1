"""VIP on the screens (AppTest): the owner sets the rule on 설정, and the same customer carries one
VIP mark on the 문의 queue (table and phone card), the inquiry detail and 주문."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor
from core.customers import vip
from core.inquiries import service as inquiries
from core.payments.orders import record_paid_order
from tests.inquiry_helpers import k, make_customer
from tests.ui_helpers import open_app, texts
from ui.labels import VIP_BADGE

NOW = k("2026-11-23 10:10")


def _shop(engine: Engine, actors: dict[str, Actor]) -> dict[str, int]:
    with Session(engine) as session, clock.frozen(k("2026-11-23 09:00")):
        ids = {}
        for name, amount in (("큰손", 800_000), ("보통", 30_000)):
            customer = make_customer(session, name)
            record_paid_order(
                session,
                order_number=f"VIP-{name}",
                customer_id=customer.id,
                product_id=None,  # type: ignore[arg-type]
                item_name="원두",
                amount=amount,
                tax_free_amount=0,
                source="link",
                ordered_at=clock.now(),
                paid_at=clock.now(),
            )
            ids[name] = inquiries.create_inquiry(
                session, actors["cs"], customer_id=customer.id, body="배송 문의"
            ).id
        session.commit()
    return ids  # type: ignore[return-value]


def test_the_owner_sets_the_vip_rule_on_settings(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    _shop(sqlite_engine, sqlite_actors)
    clock.set_now(NOW)
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    assert not at.exception, at.exception
    assert any(m.label == "지금 VIP 고객" and m.value == "기준 없음" for m in at.metric)
    at.number_input(key="set_vip_spend").set_value(500_000)
    at.button(key="FormSubmitter:set_vip_rule-VIP 기준 저장").click().run()
    assert any("VIP 기준을 저장했습니다" in t.value for t in at.toast)
    assert any(m.label == "지금 VIP 고객" and m.value == "1명" for m in at.metric)
    with Session(sqlite_engine) as session:
        assert vip.load(session).min_spend == 500_000


def test_the_vip_mark_on_the_queue_the_detail_and_orders(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    ids = _shop(sqlite_engine, sqlite_actors)
    with Session(sqlite_engine) as session:
        vip.save(session, sqlite_actors["owner"], {"min_spend": 500_000})
        session.commit()
    clock.set_now(NOW)
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/inquiries.py")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    by_number = dict(zip(table["번호"], table["고객"], strict=True))
    assert by_number == {ids["큰손"]: "큰손 · VIP", ids["보통"]: "보통"}
    cards = [m.value for m in at.markdown if "번**" in m.value]
    assert any(f"**{ids['큰손']}번**" in c and "VIP]" in c for c in cards)
    assert not any(f"**{ids['보통']}번**" in c and "VIP]" in c for c in cards)
    at.selectbox(key="inq_pick").select(ids["큰손"]).run()
    detail_mark = f"{VIP_BADGE} 고객"
    assert any(m.value == detail_mark for m in at.markdown)
    at.selectbox(key="inq_pick").select(ids["보통"]).run()
    assert not any(m.value == detail_mark for m in at.markdown)

    orders = open_app(sqlite_engine, sqlite_actors["cs"], "pages/orders.py")
    assert not orders.exception, orders.exception
    assert "큰손 · VIP" in texts(orders) or any("큰손 · VIP" in str(d.value) for d in orders.dataframe)


def test_sales_top_customers_mark_only_the_vips_of_the_rule(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    """매출 lists the top spenders; "VIP" there means the owner's rule, as on every other screen (the
    table was called "VIP 고객" while it listed anyone who had bought, a second meaning of one word)."""
    from core import analytics

    _shop(sqlite_engine, sqlite_actors)
    analytics.rebuild_rollups(sqlite_engine, NOW)
    clock.set_now(NOW)

    def top_table() -> dict[str, str]:
        at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/sales.py")
        assert not at.exception, at.exception
        assert "VIP 고객" not in [h.value for h in at.subheader]
        table = next(d.value for d in at.dataframe if "최근 구매" in d.value.columns)
        return {name.split(" · ")[0]: name for name in table["고객"]}

    assert top_table() == {"큰손": "큰손", "보통": "보통"}  # no rule yet: nobody is VIP
    with Session(sqlite_engine) as session:
        vip.save(session, sqlite_actors["owner"], {"min_spend": 500_000})
        session.commit()
    assert top_table() == {"큰손": "큰손 · VIP", "보통": "보통"}  # the rule's change shows at once
