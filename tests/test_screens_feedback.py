"""Every action answers where the eye is and re-reads what it changed (issue 18, part 1).

After an action the page reruns: a toast (always inside the viewport) says what happened, the panel
that changed shows the new state (no "환불 기록이 없습니다" under "환불 완료"), the changed row is
marked, and an error stays on the page until the person closes it.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core.models import PaymentLink, Refund
from tests.payments.helpers import paid_order, sandbox_router
from tests.ui_helpers import open_app, texts


def toasts(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


def table(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The table with a column named `column` (AppTest finds dataframes by neither key nor label)."""
    return next(d for d in at.dataframe if column in d.value.columns)


def highlighted_rows(at: AppTest, column: str) -> str:
    """The CSS of that table (the Styler travels with the element): the highlight is visible."""
    return str(table(at, column).proto.arrow_data.styler.styles)


def _refund(at: AppTest, amount: int, reason: str) -> None:
    at.number_input(key="ord_refund_amount").set_value(amount)
    at.text_input(key="ord_refund_reason").input(reason).run()
    at.button(key="ord_refund_review").click().run()
    at.button(key="ord_refund_confirm").click().run()
    assert not at.exception, at.exception


def test_refund_panel_shows_the_new_refund_and_no_refund_button_once_fully_refunded(
    sqlite_engine: Engine, sqlite_actors  # type: ignore[no-untyped-def]
) -> None:
    sandbox, _ = sandbox_router(sqlite_engine)
    paid_order(sqlite_engine, sandbox, amount=12_000, number="W-0100")
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/orders.py")
    at.text_input(key="ord_query").input("W-0100").run()
    assert "환불 기록이 없습니다." in [i.value for i in at.info]

    _refund(at, 2_000, "일부 불량")
    assert toasts(at) == ["2,000원 환불 완료. 고객에게 안내 메시지를 보냈습니다."]
    assert "환불 기록이 없습니다." not in [i.value for i in at.info]
    refunds = table(at, "요청").value
    assert list(refunds["금액"]) == ["2,000원"] and list(refunds["상태"]) == ["환불 완료"]
    assert "background-color" in highlighted_rows(at, "요청")
    payments = table(at, "대행사").value
    assert list(payments["환불"]) == ["2,000원"]
    # the form offers what is left, not the original amount
    assert at.number_input(key="ord_refund_amount").max == 10_000

    _refund(at, 10_000, "전액 취소")
    assert toasts(at) == ["10,000원 환불 완료. 고객에게 안내 메시지를 보냈습니다."]
    assert len(table(at, "요청").value) == 2
    assert not [b for b in at.button if b.key in ("ord_refund_review", "ord_refund_confirm")]
    with Session(sqlite_engine) as session:
        assert sorted(r.amount for r in session.exec(select(Refund)).all()) == [2_000, 10_000]


def test_refund_review_names_the_gateway_in_korean(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    sandbox, _ = sandbox_router(sqlite_engine)
    paid_order(sqlite_engine, sandbox, amount=12_000, number="W-0101")
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/orders.py")
    at.text_input(key="ord_query").input("W-0101").run()
    at.button(key="ord_refund_review").click().run()
    warning = at.warning[0].value
    assert "12,000원을(를) 테스트 결제" in warning and "sandbox" not in warning and "#" not in warning


def test_new_payment_link_is_in_the_list_marked_and_its_text_is_shown(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    assert "아직 만든 결제 링크가 없습니다." in [i.value for i in at.info]
    at.text_input(key="ord_link_item").input("맞춤 견적 🎁")
    at.number_input(key="ord_link_amount").set_value(15_000)
    at.button[[b.label for b in at.button].index("링크 만들기")].click().run()
    assert not at.exception, at.exception
    assert toasts(at) == ["결제 링크를 만들었습니다. 아래 문구를 복사해 채팅에 붙여넣으세요."]
    links = table(at, "링크").value
    assert list(links["상품"]) == ["맞춤 견적 🎁"] and list(links["금액"]) == ["15,000원"]
    assert "background-color" in highlighted_rows(at, "링크")
    assert "15,000원" in at.code[0].value and "/pay?link=" in at.code[0].value
    with Session(sqlite_engine) as session:
        assert len(session.exec(select(PaymentLink)).all()) == 1


def test_an_error_stays_until_closed(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["staff"], "pages/orders.py")
    at.text_input(key="ord_link_item").input("맞춤 견적")
    at.number_input(key="ord_link_amount").set_value(10_000)
    at.number_input(key="ord_link_tax_free").set_value(20_000)
    at.button[[b.label for b in at.button].index("링크 만들기")].click().run()
    assert any("면세 금액" in t for t in toasts(at))
    assert any("면세 금액" in e.value for e in at.error)
    at.text_input(key="ord_query").input("아무거나").run()  # another widget: the error is still there
    assert any("면세 금액" in e.value for e in at.error)
    at.button(key="ord__feedback_dismiss").click().run()
    assert not at.error
    assert "면세 금액" not in texts(at)


# --------------------------------------------------------------------------- 문의
def test_inquiry_note_and_claim_show_their_result_and_the_new_state(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from core import clock
    from core.inquiries import service as inquiries
    from tests.inquiry_helpers import k, make_customer

    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session, clock.frozen(k("2026-11-23 09:00")):
        customer = make_customer(session, "박민지", "01055556666")
        inquiry = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="결제 오류가 났어요 😢")
        session.commit()
        inquiry_id = inquiry.id
    clock.set_now(k("2026-11-23 09:30"))
    at = open_app(sqlite_engine, cs, "pages/inquiries.py")
    assert "담당 미배정" in texts(at)

    at.button(key="inq_claim").click().run()
    assert [t.value for t in at.toast] == ["담당자로 지정되었습니다"]
    assert f"담당 {cs.name}" in texts(at) and "방금 처리함" in texts(at)
    assert at.button(key="inq_claim").disabled  # the panel re-read: already mine

    at.text_area(key="inq_note_text").input("카드사 확인 필요")
    next(b for b in at.button if b.label == "메모 남기기").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.toast] == ["메모를 남겼습니다"]
    assert "카드사 확인 필요" in [t.value for t in at.text]  # the conversation shows the note now
    assert any(c.value.startswith("내부 메모 · ") for c in at.caption)
    assert inquiry_id


def test_inquiry_cards_carry_number_type_customer_subject_and_time_left(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from core import clock
    from core.inquiries import service as inquiries
    from tests.inquiry_helpers import k, make_customer

    cs = sqlite_actors["cs"]
    with Session(sqlite_engine) as session, clock.frozen(k("2026-11-23 09:00")):
        customer = make_customer(session, "박민지", "01055556666")
        inquiry = inquiries.create_inquiry(session, cs, customer_id=customer.id, body="결제 오류가 났어요")
        session.commit()
        inquiry_id = inquiry.id
    clock.set_now(k("2026-11-23 10:10"))
    at = open_app(sqlite_engine, cs, "pages/inquiries.py")
    cards = [m.value for m in at.markdown if m.value.startswith(f"**{inquiry_id}번**")]
    assert len(cards) == 1
    assert ":red-badge[:material/error: 초과]" in cards[0] and "남은 40분 0초 초과" in cards[0]
    assert ":blue-badge[" in cards[0]
    assert any(m.value.startswith("박민지 · ") for m in at.markdown)
    # no emoji badge anywhere (□ without an emoji font)
    assert not any(ch in texts(at) for ch in "🔴🟠🟢⏸🔔")
    # the filters are folded into one expander
    assert "필터" in [e.label for e in at.expander]


def test_subscription_actions_answer_in_a_toast_and_mark_the_changed_subscription(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """정기결제 follows the same pattern: the toast says what happened, the list shows the new status
    on the marked row, and a refused action's error stays until closed."""
    from datetime import date

    from core import clock
    from core.accounts.actor import Actor
    from core.models import Role
    from tests.billing_support import kst, make_subscription

    clock.set_now(kst("2027-03-01T12:00"))
    owner = Actor(None, "사장님", Role.OWNER)
    sub_id = make_subscription(sqlite_engine, owner, start=date(2027, 3, 4), customer_name="박회원")
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/subscriptions.py")
    at.checkbox(key="sub_pause_confirm").check()
    next(b for b in at.button if b.label == "일시정지").click().run()
    assert not at.exception, at.exception
    assert toasts(at) == ["일시정지 완료"]
    rows = table(at, "다음 결제일").value
    assert list(rows.loc[rows["번호"] == sub_id, "상태"]) == ["일시정지"]
    assert highlighted_rows(at, "다음 결제일")  # the paused subscription is marked

    at.checkbox(key="sub_amount_confirm").check()
    at.number_input(key="sub_amount").set_value(0)
    next(b for b in at.button if b.label == "금액 변경").click().run()
    assert not at.exception, at.exception
    assert toasts(at) and toasts(at)[0].startswith("금액 변경 실패")
    assert any(e.value.startswith("금액 변경 실패") for e in at.error)  # stays until 닫기
    at.button(key="sub__feedback_dismiss").click().run()
    assert not any(e.value.startswith("금액 변경 실패") for e in at.error)
