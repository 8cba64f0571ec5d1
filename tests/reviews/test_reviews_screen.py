"""The 리뷰 screen in AppTest (the real app.py, logged in): who sees it, the 답변 대기 count, filters,
answering inline (sent once, shown on the page), hiding with a reason, the snippet; its target on 설정.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from core import clock
from core.accounts.actor import Actor
from core.accounts.screens import screens_for
from core.db import read_scope, session_scope
from core.models import AuditLog, Message, Review, Role, Setting
from core.reviews import rules, service
from tests.reviews.helpers import paid_order
from tests.ui_helpers import open_app, texts

PAGE = "pages/reviews.py"


@pytest.fixture
def store(sqlite_engine: Engine) -> dict[str, int]:
    first = paid_order(sqlite_engine, names=("원두 1kg", "드립백"))
    with session_scope(sqlite_engine) as s:
        good = service.submit(
            s, token=first.tokens[0], rating=5, text="향이 좋아요", now=clock.now()
        ).review_id
        bad = service.submit(
            s, token=first.tokens[1], rating=1, text="욕설 섞인 후기", now=clock.now()
        ).review_id
    return {"good": good, "bad": bad, "product": first.product_ids[0]}


@pytest.mark.parametrize(("role", "sees"), [(Role.CS, True), (Role.OWNER, True), (Role.STAFF, False)])
def test_the_screen_is_for_cs_and_owner(role: Role, sees: bool) -> None:
    assert any(s.path == PAGE for s in screens_for(role)) is sees


def test_the_screen_lists_counts_and_filters(
    store: dict[str, int], sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    at = open_app(sqlite_engine, sqlite_actors["cs"], PAGE)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["답변 대기"] == "2건" and metrics["답변 목표"] == "영업시간 24시간"
    table = at.dataframe[0].value
    assert set(table["별점"]) == {"★★★★★", "★☆☆☆☆"} and set(table["상태"]) == {"답변 대기"}
    assert "문의 #" in texts(at)  # the 1-star review's inquiry is named
    at.multiselect(key="rev_ratings").select(1).run()
    assert list(at.dataframe[0].value["번호"]) == [store["bad"]]


def test_answer_inline_sends_once_and_hide_needs_a_reason(
    store: dict[str, int], sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    at = open_app(sqlite_engine, sqlite_actors["cs"], PAGE)
    good = store["good"]
    at.text_area(key=f"rev_answer_{good}").input("감사합니다! 또 찾아 주세요.").run()
    at.button(key=f"rev_send_{good}").click().run()
    assert not at.exception and "답변을 저장했습니다" in texts(at)
    at.button(key=f"rev_send_{good}").click().run()  # a second click: saved again, not sent again
    with read_scope(sqlite_engine) as s:
        assert len(s.exec(select(Message).where(Message.template_key == "review_answer")).all()) == 1
        assert s.get(Review, good).answer == "감사합니다! 또 찾아 주세요."  # type: ignore[union-attr]
    bad = store["bad"]
    at.button(key=f"rev_hide_{bad}").click().run()
    assert "사유" in texts(at)  # refused: no reason
    at.text_input(key=f"rev_reason_{bad}").input("욕설").run()
    at.button(key=f"rev_hide_{bad}").click().run()
    assert "리뷰를 숨겼습니다" in texts(at)
    with read_scope(sqlite_engine) as s:
        assert s.get(Review, bad).hidden  # type: ignore[union-attr]
        assert (
            s.exec(select(AuditLog).where(AuditLog.action == "review.hide")).one().detail["reason"] == "욕설"
        )
    assert {m.label: m.value for m in at.metric}["답변 대기"] == "0건"  # answered one, hid the other


def test_the_snippet_is_shown_escaped_for_copying(
    store: dict[str, int], sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    with session_scope(sqlite_engine) as s:
        service.answer(s, sqlite_actors["owner"], store["good"], "감사합니다", now=clock.now())
    at = open_app(sqlite_engine, sqlite_actors["owner"], PAGE)
    at.selectbox(key="rev_snippet_product").select(store["product"]).run()
    code = at.code[0].value
    assert code.startswith('<div class="channeldesk-reviews">') and "<script" not in code
    assert (
        f"/reviews?product={store['product']}" in code
        and "향이 좋아요" in code
        and "5.0점 (후기 1개)" in code
    )


def test_overdue_answers_are_counted(
    store: dict[str, int], sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    clock.set_now(clock.now() + timedelta(days=10))
    at = open_app(sqlite_engine, sqlite_actors["cs"], PAGE)
    assert {m.label: m.value for m in at.metric}["답변 기한 초과"] == "2건"


def test_the_owner_sets_the_answer_target_on_settings(
    sqlite_engine: Engine, sqlite_actors: dict[str, Actor]
) -> None:
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/settings.py")
    at.number_input(key="setrev_hours").set_value(8)  # inside the form: sent with the submit
    next(b for b in at.button if b.label == "리뷰 답변 목표 저장").click().run()
    assert not at.exception and "영업시간 8시간으로 저장했습니다" in texts(at)
    with read_scope(sqlite_engine) as s:
        assert s.get(Setting, rules.ANSWER_TARGET_SETTING).value == 8  # type: ignore[union-attr]
