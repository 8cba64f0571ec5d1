"""The review service on SQLite and PostgreSQL: links per item, the customer's submission and its
edits, two tabs at once, the negative review's one inquiry, the answer sent once, hiding, 답변 대기.

Rules (issue 20): one review per order item; a link valid 60 days from the payment; editable 7 days;
bad input writes nothing; 1-2 stars open an inquiry once, linked; the answer goes to the customer as
an informational message once and shows on the page; hiding is audited with a reason; the 답변 대기
target (default 24 h) is counted on the inquiries' business hours.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from core import clock
from core.accounts.actor import Actor
from core.db import read_scope, session_scope
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Inquiry, Message, MessageKind, Review, ReviewPhoto
from core.reviews import queries, rules, service
from core.reviews.rules import TokenState
from tests.reviews.helpers import image_bytes, paid_order, review_of


def submit(
    engine: Engine,
    token: str,
    rating: object = 5,
    text: str = "좋아요",
    *,
    now: datetime | None = None,
    **extra: object,
) -> service.Submitted:
    with session_scope(engine) as s:
        return service.submit(s, token=token, rating=rating, text=text, now=now or clock.now(), **extra)  # type: ignore[arg-type]


def count(engine: Engine, model: type, *where: object) -> int:
    with read_scope(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_a_link_per_item_valid_60_days_from_payment_issued_once(engine: Engine) -> None:
    shop = paid_order(engine)
    assert len(shop.tokens) == 2 and len(set(shop.tokens)) == 2
    review = review_of(engine, shop.tokens[0])
    assert review.rating is None and review.submitted_at is None
    assert clock.as_utc(review.token_expires_at) == clock.as_utc(shop.paid_at) + timedelta(days=60)  # type: ignore[arg-type]
    with session_scope(engine) as s:  # the reminder asks again: same links, no new rows
        from core.models import Order

        order = s.get(Order, shop.order_id)
        assert service.issue_links(s, [order], clock.now()) == shop.tokens[0]  # type: ignore[list-item]
    assert count(engine, Review) == 2


def test_first_submission_then_edits_inside_7_days_then_read_only(engine: Engine) -> None:
    shop = paid_order(engine)
    now = clock.now()
    first = submit(engine, shop.tokens[0], 4, "  향이 좋아요  ", now=now)
    assert first.first and first.inquiry_id is None
    review = review_of(engine, shop.tokens[0])
    assert (review.rating, review.body) == (4, "향이 좋아요")
    again = submit(engine, shop.tokens[0], 5, "다시 마셔 보니 최고", now=now + timedelta(days=7))
    assert not again.first and again.review_id == first.review_id
    assert review_of(engine, shop.tokens[0]).rating == 5
    with pytest.raises(service.LinkRefused) as locked:
        submit(engine, shop.tokens[0], 1, "바꿀래요", now=now + timedelta(days=7, seconds=1))
    assert locked.value.state == TokenState.LOCKED and "7일" in str(locked.value)
    assert review_of(engine, shop.tokens[0]).rating == 5  # nothing written
    assert count(engine, Review, Review.rating.is_not(None)) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("token", "state"),
    [("x", TokenState.MALFORMED), ("A" * 43, TokenState.UNKNOWN)],
)
def test_unknown_and_malformed_links_are_refused(engine: Engine, token: str, state: TokenState) -> None:
    paid_order(engine)
    with pytest.raises(service.LinkRefused) as refused:
        submit(engine, token)
    assert refused.value.state == state


def test_an_expired_link_takes_no_review(engine: Engine) -> None:
    shop = paid_order(engine, paid_at=clock.now() - timedelta(days=61))
    with pytest.raises(service.LinkRefused) as refused:
        submit(engine, shop.tokens[0])
    assert refused.value.state == TokenState.EXPIRED and "60일" in str(refused.value)
    assert review_of(engine, shop.tokens[0]).rating is None


@pytest.mark.parametrize(
    ("rating", "text", "photo", "message"),
    [
        (0, "", None, "별점"),
        (6, "", None, "별점"),
        ("abc", "", None, "별점"),
        (5, "가" * 100_000, None, "2,000자"),
        (5, "", b"<svg onload=alert(1)></svg>", "JPG, PNG, WEBP"),
        (5, "", b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>", "JPG, PNG, WEBP"),
    ],
)
def test_bad_input_writes_nothing(
    engine: Engine, rating: object, text: str, photo: bytes | None, message: str
) -> None:
    shop = paid_order(engine)
    with pytest.raises(ValidationFailed, match=message):
        submit(engine, shop.tokens[0], rating, text, photo=photo)
    review = review_of(engine, shop.tokens[0])
    assert review.rating is None and review.submitted_at is None and review.photo_type is None
    assert count(engine, ReviewPhoto) == 0 and count(engine, Inquiry) == 0


def test_two_tabs_submitting_at_once_make_one_review(engine: Engine) -> None:
    shop = paid_order(engine)
    barrier = threading.Barrier(4)
    results: list[service.Submitted] = []
    errors: list[BaseException] = []

    def tab(stars: int) -> None:
        try:
            barrier.wait()
            results.append(submit(engine, shop.tokens[0], stars, f"{stars}점 탭"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(n,)) for n in (1, 2, 4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.first for r in results) == 1  # one first submission: the reward hook runs once
    assert {r.review_id for r in results} == {results[0].review_id}
    assert count(engine, Review, Review.rating.is_not(None)) == 1  # type: ignore[union-attr]
    assert count(engine, Inquiry) <= 1  # 1 or 2 stars among the tabs: at most one inquiry


def test_a_negative_review_opens_one_inquiry_linked_to_it(engine: Engine) -> None:
    shop = paid_order(engine)
    first = submit(engine, shop.tokens[0], 2, "포장이 터져서 왔어요")
    assert first.inquiry_id is not None
    submit(engine, shop.tokens[0], 1, "답이 없네요")  # an edit, still negative: no second inquiry
    submit(engine, shop.tokens[0], 2, "")
    with read_scope(engine) as s:
        (inquiry,) = s.exec(select(Inquiry)).all()
        assert inquiry.id == first.inquiry_id == review_of(engine, shop.tokens[0]).inquiry_id
        assert inquiry.order_id == shop.order_id and inquiry.customer_id == shop.customer_id
        assert inquiry.source == "review" and "2점" in inquiry.subject
    positive = submit(engine, shop.tokens[1], 5, "최고")
    assert positive.inquiry_id is None
    later = submit(engine, shop.tokens[1], 1, "써 보니 별로")  # turned negative in the 7 days: opens one
    assert later.inquiry_id is not None and count(engine, Inquiry) == 2


def test_a_photo_is_stored_cleaned_and_replaced_or_removed(engine: Engine) -> None:
    shop = paid_order(engine)
    submit(engine, shop.tokens[0], 5, "사진 첨부", photo=image_bytes(exif_gps=True))
    with read_scope(engine) as s:
        data, kind = queries.photo_by_token(s, shop.tokens[0])  # type: ignore[misc]
    assert kind == "image/jpeg" and b"Exif" not in data
    submit(engine, shop.tokens[0], 5, "사진 바꿈", photo=image_bytes("PNG"))
    with read_scope(engine) as s:
        assert queries.photo_by_token(s, shop.tokens[0])[1] == "image/png"  # type: ignore[index]
    submit(engine, shop.tokens[0], 5, "사진 지움", remove_photo=True)
    assert count(engine, ReviewPhoto) == 0 and review_of(engine, shop.tokens[0]).photo_type is None


def test_the_answer_goes_once_as_informational_and_shows_on_the_page(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    shop = paid_order(engine)
    rid = submit(engine, shop.tokens[0], 5, "좋아요").review_id
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        service.answer(s, actors["staff"], rid, "감사합니다", now=clock.now())
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="답변을 써"):
        service.answer(s, actors["cs"], rid, "   ", now=clock.now())
    with session_scope(engine) as s:
        service.answer(s, actors["cs"], rid, "감사합니다! 또 찾아 주세요.", now=clock.now())
    with session_scope(engine) as s:  # a corrected answer: shown, not sent again
        service.answer(
            s, actors["owner"], rid, "감사합니다! 다음 주문에 샘플을 넣어 드릴게요.", now=clock.now()
        )
    with read_scope(engine) as s:
        (message,) = s.exec(select(Message).where(Message.template_key == "review_answer")).all()
        assert message.kind == MessageKind.INFORMATIONAL and message.idempotency_key == f"review_answer:{rid}"
        assert message.customer_id == shop.customer_id and "감사합니다! 또 찾아 주세요." in message.text
        assert f"/review?t={shop.tokens[0]}" in message.text
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.entity_type == "review"))]
        assert actions == ["review.answer", "review.answer"]
    with read_scope(engine) as s:
        assert (
            queries.link(s, shop.tokens[0], clock.now()).answer
            == "감사합니다! 다음 주문에 샘플을 넣어 드릴게요."
        )


def test_hiding_needs_a_reason_is_audited_and_leaves_every_public_list(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    shop = paid_order(engine)
    rid = submit(engine, shop.tokens[0], 5, "욕설 가득").review_id
    with session_scope(engine) as s:
        service.answer(s, actors["cs"], rid, "감사합니다", now=clock.now())
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="사유"):
        service.set_hidden(s, actors["cs"], rid, True, "", now=clock.now())
    with session_scope(engine) as s:
        service.set_hidden(s, actors["cs"], rid, True, "욕설", now=clock.now())
    with read_scope(engine) as s:
        view = queries.showcase(s, shop.product_ids[0])
        assert view is not None and view.count == 0 and view.reviews == []
        assert queries.public_photo(s, rid) is None
        hidden_rows = queries.listing(s, queries.ReviewFilter(hidden="hidden"), clock.now())
        assert [r.review.id for r in hidden_rows] == [rid]
        audit = s.exec(select(AuditLog).where(AuditLog.action == "review.hide")).one()
        assert audit.detail["reason"] == "욕설" and audit.actor_id == actors["cs"].id
    with session_scope(engine) as s:
        service.set_hidden(s, actors["owner"], rid, False, now=clock.now())
    with read_scope(engine) as s:
        assert queries.showcase(s, shop.product_ids[0]).count == 1  # type: ignore[union-attr]


KST_MONDAY_9 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # Mon 16 Nov 2026 09:00 KST


@pytest.mark.parametrize(
    ("now", "overdue"),
    [
        # 24 business hours from Mon 09:00 (09-12, 13-18 on weekdays: 8 h a day) end Wed 18:00 KST
        (datetime(2026, 11, 18, 9, 0, tzinfo=UTC), 0),  # Wed 18:00 KST: on time at the deadline itself
        (datetime(2026, 11, 18, 9, 0, 1, tzinfo=UTC), 1),  # a second later: past the target
        (datetime(2026, 11, 18, 8, 59, tzinfo=UTC), 0),
    ],
)
def test_the_answer_wait_is_counted_on_business_hours(engine: Engine, now: datetime, overdue: int) -> None:
    shop = paid_order(engine, paid_at=KST_MONDAY_9 - timedelta(days=3))
    submit(engine, shop.tokens[0], 4, "", now=KST_MONDAY_9)
    submit(engine, shop.tokens[1], 4, "", now=KST_MONDAY_9 + timedelta(hours=1))  # due Thu 10:00 KST
    with read_scope(engine) as s:
        waiting = queries.waiting(s, now)
        rows = queries.listing(s, queries.ReviewFilter(answered="waiting"), now)
    assert (waiting.count, waiting.overdue, waiting.target_hours) == (2, overdue, 24)
    assert sorted(clock.as_utc(r.answer_due_at) for r in rows) == [  # type: ignore[arg-type]
        datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 19, 1, 0, tzinfo=UTC),
    ]


def test_the_answer_target_is_the_owners_and_audited(engine: Engine, actors: dict[str, Actor]) -> None:
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        service.save_answer_target(s, actors["cs"], 8)
    with session_scope(engine) as s:
        assert service.save_answer_target(s, actors["owner"], "8") == 8
    with read_scope(engine) as s:
        assert queries.answer_target(s)[0] == timedelta(hours=8)
        assert s.exec(select(AuditLog).where(AuditLog.entity_id == rules.ANSWER_TARGET_SETTING)).one()


def test_the_showcase_lists_answered_visible_reviews_with_an_honest_average(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    first = paid_order(engine, names=("원두 1kg",))
    pid = first.product_ids[0]
    stars = [5, 4, 1, 5]
    shops = [first] + [paid_order(engine, names=("원두 1kg",), product_ids=[pid]) for _ in stars[1:]]
    ids = [
        submit(engine, shop.tokens[0], n, f"{n}점").review_id for shop, n in zip(shops, stars, strict=True)
    ]
    with session_scope(engine) as s:
        for rid in ids[:3]:
            service.answer(s, actors["cs"], rid, "감사합니다", now=clock.now())
    with read_scope(engine) as s:
        view = queries.showcase(s, pid)
    assert view is not None
    assert (view.count, view.average, view.shown) == (4, 3.8, 3)  # the average counts the unanswered one
    assert {r.id for r in view.reviews} == set(ids[:3])
