"""정기결제 page in AppTest: status counts, next 7 days, failed queue with reason and retry, history, actions."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session

from core import billing, clock
from core.accounts.actor import Actor
from core.billing import dunning
from core.models import Role, Subscription
from tests.billing_support import FakeGateway, get_subscription, kst, make_subscription
from tests.ui_helpers import open_app, texts

OWNER = Actor(None, "사장님", Role.OWNER)


def _store(engine: Engine) -> dict[str, int]:
    """One healthy subscription due in 3 days, one hard-declined (past_due) today."""
    clock.set_now(kst("2027-03-01T12:00"))  # the page and the jobs share this "now"
    today = clock.today_kst()
    due_soon = make_subscription(
        engine, OWNER, start=date.fromordinal(today.toordinal() + 3), customer_name="박회원"
    )
    declined = make_subscription(
        engine, OWNER, start=today, customer_name="이회원", instrument_ref="SID_DEAD"
    )
    gateway = FakeGateway(inactive_refs={"SID_DEAD"})
    billing.run_charges(engine, clock.now(), gateway=gateway)
    return {"due_soon": due_soon, "declined": declined}


def test_page_shows_status_upcoming_and_failed_reason(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    ids = _store(sqlite_engine)
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/subscriptions.py")
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:3] == ["1건", "0건", "1건"]  # active, paused, past_due
    shown = texts(at)
    assert "합계 1건 · 39,000원" in shown
    failed = at.dataframe[1].value
    assert list(failed["사유"]) == ["유효하지 않은 정기결제 키(SID)입니다"]
    assert list(failed["재시도"]) == ["수동만"]
    assert get_subscription(sqlite_engine, ids["declined"]).status == "past_due"


def test_retry_needs_confirmation_then_charges(sqlite_engine: Engine, sqlite_actors, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids = _store(sqlite_engine)
    with Session(sqlite_engine) as session:  # the customer registered a new SID
        billing.set_instrument(session, OWNER, ids["declined"], gateway="fake", instrument_ref="SID_NEW")
        session.commit()
    gateway = FakeGateway()
    monkeypatch.setattr(dunning, "_default_gateway", lambda engine: gateway)  # retry_charge's
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/subscriptions.py")
    retry = next(b for b in at.button if b.label == "지금 재시도")
    retry.click().run()
    assert "확인란을 먼저 선택하세요." in texts(at)
    assert gateway.charge_calls == 0
    at.checkbox(key="sub_retry_confirm").check()
    next(b for b in at.button if b.label == "지금 재시도").click().run()
    assert not at.exception, at.exception
    assert "재시도: 결제되었습니다" in texts(at)
    assert gateway.charge_calls == 1
    assert get_subscription(sqlite_engine, ids["declined"]).status == "active"


def test_history_and_pause_then_cancel_with_confirmation(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    ids = _store(sqlite_engine)
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/subscriptions.py")
    label = next(o for o in at.selectbox(key="sub_pick").options if o.endswith(f"({ids['due_soon']}번)"))
    at.selectbox(key="sub_pick").select(label).run()
    assert list(at.dataframe[-1].value["내용"]) == ["가입"]
    at.checkbox(key="sub_pause_confirm").check()
    next(b for b in at.button if b.label == "일시정지").click().run()
    assert not at.exception, at.exception
    assert "일시정지 완료" in texts(at)
    assert get_subscription(sqlite_engine, ids["due_soon"]).status == "paused"
    at.selectbox(key="sub_pick").select(label).run()
    at.radio(key="sub_cancel_when").set_value("지금 즉시")
    next(b for b in at.button if b.label == "해지").click().run()
    assert get_subscription(sqlite_engine, ids["due_soon"]).status == "paused"  # not confirmed
    at.checkbox(key="sub_cancel_confirm").check()
    next(b for b in at.button if b.label == "해지").click().run()
    assert "해지 완료" in texts(at)
    with Session(sqlite_engine) as session:
        sub = session.get(Subscription, ids["due_soon"])
        assert sub is not None and sub.status == "canceled"


def test_history_shows_every_attempt_with_its_own_reason(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    ids = _store(sqlite_engine)
    with Session(sqlite_engine) as session:
        [(charge, _, _)] = billing.failed_charges(session)
    gateway = FakeGateway()
    gateway.inject("decline")  # a person retries; the card is declined this time
    assert (
        billing.retry_charge(sqlite_engine, sqlite_actors["cs"], charge.id or 0, gateway=gateway) == "failed"
    )
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/subscriptions.py")
    label = next(o for o in at.selectbox(key="sub_pick").options if o.endswith(f"({ids['declined']}번)"))
    at.selectbox(key="sub_pick").select(label).run()
    assert not at.exception, at.exception
    attempts = next(d.value for d in at.dataframe if "방식" in d.value.columns)
    assert list(attempts["방식"]) == ["자동", "수동 재시도"]
    assert list(attempts["사유"]) == ["유효하지 않은 정기결제 키(SID)입니다", "카드가 거절되었습니다"]
    messages = next(d.value for d in at.dataframe if "종류" in d.value.columns)
    assert set(messages["종류"]) == {"정기결제 실패"}  # the template's name, not its code
    assert not any(ch.isascii() and ch.isalpha() for status in messages["상태"] for ch in status)


def test_resume_that_moves_the_charge_says_why(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """Resumed on its own charge date before the charge: the screen says the date moved, and why."""
    clock.set_now(kst("2027-12-01T12:00"))
    sub_id = make_subscription(sqlite_engine, OWNER, start=date(2027, 12, 7), customer_name="최회원")
    with Session(sqlite_engine) as session:
        billing.pause(session, OWNER, sub_id)
        session.commit()
    clock.set_now(kst("2027-12-07T08:00"))
    at = open_app(sqlite_engine, sqlite_actors["cs"], "pages/subscriptions.py")
    label = next(o for o in at.selectbox(key="sub_pick").options if o.endswith(f"({sub_id}번)"))
    at.selectbox(key="sub_pick").select(label).run()
    at.checkbox(key="sub_pause_confirm").check()
    next(b for b in at.button if b.label == "지금 재개").click().run()
    assert not at.exception, at.exception
    assert "재개 완료. 결제 예정일이 12월 8일로 조정되었습니다: 결제 전날 안내를 보내기 위해" in texts(at)
    assert get_subscription(sqlite_engine, sub_id).next_charge_date == date(2027, 12, 8)
    at.selectbox(key="sub_pick").select(label).run()
    events = at.dataframe[-1].value
    assert list(events["내용"]) == ["가입", "일시정지", "재개"]
    assert "조정 전 결제일 2027-12-07" in events["상세"].iloc[-1]
    assert not any(ch.isascii() and ch.isalpha() for detail in events["상세"] for ch in detail), list(events["상세"])
