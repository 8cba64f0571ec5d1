"""설정 → 고객 통합: the owner reads who was merged and how many numbers are not mobiles, and can
re-check the numbers (confirmation first). AppTest through app.py, as the owner."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from core.customers import merge
from core.models import Customer
from tests.customers.test_merge import PERSON_FORMS, _raw_customer
from tests.ui_helpers import open_app, texts


def test_owner_sees_the_merges_and_runs_the_recheck(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    with Session(sqlite_engine) as session:
        for form in PERSON_FORMS[:2]:
            _raw_customer(session.connection(), "김민지", form)
        merge.merge_duplicates(session.connection())
        _raw_customer(session.connection(), "가게", "02-123-4567")
        _raw_customer(session.connection(), "김민지", "+82 10 1234 5678")  # as an old import left it
        session.commit()
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    assert not at.exception
    shown = texts(at)
    assert "고객 통합 (한 사람, 한 고객)" in shown
    assert any("휴대전화 번호 아님" in m.label for m in at.metric)
    frames = [df.value for df in at.dataframe]
    assert any("합쳐진 고객" in frame.columns for frame in frames)
    next(b for b in at.button if b.label == "번호 다시 확인하고 합치기").click().run()
    assert "동의 확인란" in texts(at) or any("동의 확인란" in e.value for e in at.error)
    at.checkbox(key="set_customer_merge_sure").check()
    next(b for b in at.button if b.label == "번호 다시 확인하고 합치기").click().run()
    assert not at.exception
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(Customer)).one() == 2  # the person and the shop
