"""설정 → 결제 페이지 환불 정책: the owner's text is what /pay shows (AppTest as the owner)."""

from __future__ import annotations

from sqlalchemy import Engine

from core.payments import checkout
from tests.ui_helpers import open_app
from tests.web.helpers import customer_client


def test_the_owner_saves_the_refund_policy_on_settings_and_the_checkout_shows_it(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from core.payments.links import create_payment_link
    from tests.payments.helpers import sandbox_router

    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    assert not at.exception, at.exception
    assert at.text_area(key="set_refund_policy").value == checkout.DEFAULT_REFUND_POLICY
    at.text_area(key="set_refund_policy").input("수령 후 14일 안에 환불해 드립니다.").run()
    at.button(key="set_refund_policy_save").click().run()
    assert not at.exception, at.exception
    assert any("환불 정책을 저장했습니다" in t.value for t in at.toast)
    _, router = sandbox_router(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        link = create_payment_link(session, sqlite_actors["cs"], item_name="크림", amount=1_000, router=router)
    with customer_client(sqlite_engine) as client:
        assert "수령 후 14일 안에 환불해 드립니다." in client.get(f"/pay?link={link.code}").text
