"""POST /hooks/kakao/skill through server.app (Starlette TestClient), on SQLite and PostgreSQL.

The rules that matter (issue 17, CONTRACTS.md "Kakao i Open Builder skill"): only a request with the
shared secret is heard; the answer is a SkillResponse 2.0 in Korean that states the SLA promise; a
customer is found by their channel key; every message becomes exactly one inquiry event, the same
delivery twice adds nothing; bad input gets a clear 400/401/413 and writes nothing but the log.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from starlette.testclient import TestClient

from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.inquiries import inbound, service
from core.messaging.sender import message_sender
from core.models import (
    Customer,
    InboundRequest,
    Inquiry,
    InquiryEvent,
    Message,
    MessageStatus,
    Order,
    Role,
)
from tests.web.conftest import SECRET
from tests.web.kakao_payloads import skill_payload
from web.hooks import kakao_skill

PATH = kakao_skill.PATH
HEADERS = {kakao_skill.SECRET_HEADER: SECRET}
CS = Actor(id=None, name="CS 테스트", role=Role.CS)


def post(client: TestClient, payload: object, headers: dict[str, str] | None = None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    return client.post(PATH, content=data, headers={"Content-Type": "application/json", **(HEADERS if headers is None else headers)})


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            "customers": s.exec(select(func.count()).select_from(Customer)).one(),
            "inquiries": s.exec(select(func.count()).select_from(Inquiry)).one(),
            "events": s.exec(select(func.count()).select_from(InquiryEvent)).one(),
            "log": s.exec(select(func.count()).select_from(InboundRequest)).one(),
        }


def last_log(engine: Engine) -> InboundRequest:
    with Session(engine) as s:
        return s.exec(select(InboundRequest).order_by(col(InboundRequest.id).desc())).first()


def assert_skill_response(body: dict) -> str:
    assert body["version"] == "2.0"
    outputs = body["template"]["outputs"]
    assert 1 <= len(outputs) <= 3
    text = outputs[0]["simpleText"]["text"]
    assert 0 < len(text) <= 1000
    replies = body["template"].get("quickReplies", [])
    assert len(replies) <= 10
    for reply in replies:
        assert reply["action"] == "message" and reply["label"] and reply["messageText"]
    return text


def test_an_utterance_opens_an_inquiry_and_the_answer_states_the_promise(client: TestClient, engine: Engine) -> None:
    response = post(client, skill_payload("결제하다가 오류가 났어요 😢"))
    assert response.status_code == 200
    text = assert_skill_response(response.json())
    # Friday 10:00 KST (the test clock), 결제 오류 = 30 minutes of business time, hours 09-12, 13-18.
    assert text.startswith("결제 오류 문의가 접수되었습니다. 평일 30분 안에 답변드릴게요 (오늘 18:00까지 운영).")
    assert "휴대폰 번호" in text  # no phone yet: asked for one, so the reply can go out as AlimTalk
    labels = [r["label"] for r in response.json()["template"]["quickReplies"]]
    assert labels == ["결제 오류", "이중 결제", "환불 요청", "영수증 요청"]
    with Session(engine) as s:
        customer = s.exec(select(Customer).where(Customer.kakao_user_key == "pfKey-abc123")).one()
        assert customer.phone is None and customer.is_channel_friend
        inquiry = s.exec(select(Inquiry)).one()
        assert (inquiry.customer_id, inquiry.type, inquiry.source) == (customer.id, "payment_error", "kakao")
        # The clock starts when the customer wrote, not when staff noticed.
        assert inquiry.created_at == clock.now()
        assert inquiry.first_response_due_at == clock.now() + timedelta(minutes=30)
        event = s.exec(select(InquiryEvent)).one()
        assert event.kind == "created" and event.body == "결제하다가 오류가 났어요 😢" and event.author_id is None
    row = last_log(engine)
    assert (row.channel, row.status_code, row.outcome, row.verified) == ("kakao_skill", 200, "created", True)
    assert row.inquiry_id == inquiry.id and row.elapsed_ms >= 0
    assert "오류" not in json.dumps(row.detail, ensure_ascii=False)  # the log keeps no customer text


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("결제 오류 문의", "payment_error"),
        ("이중 결제 문의", "double_charge"),
        ("같은 금액이 두 번 결제됐어요", "double_charge"),
        ("환불 요청 문의", "refund_request"),
        ("영수증 요청 문의", "receipt_request"),
        ("배송 언제 와요?", "other"),
    ],
)
def test_the_type_comes_from_the_keyword_rules(client: TestClient, engine: Engine, utterance: str,
                                               expected: str) -> None:
    assert post(client, skill_payload(utterance)).status_code == 200
    with Session(engine) as s:
        assert s.exec(select(Inquiry.type)).one() == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Friday 17:50: open, closes at 18:00; the deadline runs into Monday.
        ("2026-11-20T17:50:00+09:00", "평일 30분 안에 답변드릴게요 (오늘 18:00까지 운영)."),
        # Lunch (12-13): the clock starts at 13:00.
        ("2026-11-20T12:10:00+09:00", "지금은 운영 시간이 아니에요. 오늘 13:00부터 30분 안에, 오늘 13:30까지 답변드릴게요."),
        # Friday night: Monday 09:00 opens; due 09:30.
        ("2026-11-20T21:00:00+09:00",
         "지금은 운영 시간이 아니에요. 11월 23일(월) 09:00부터 30분 안에, 11월 23일(월) 09:30까지 답변드릴게요."),
        # Sunday night: tomorrow.
        ("2026-11-22T23:00:00+09:00", "지금은 운영 시간이 아니에요. 내일 09:00부터 30분 안에, 내일 09:30까지 답변드릴게요."),
    ],
)
def test_the_promise_follows_the_business_calendar(client: TestClient, when: str, expected: str) -> None:
    with clock.frozen(datetime.fromisoformat(when)):
        text = assert_skill_response(post(client, skill_payload("결제 실패했어요")).json())
    assert text.startswith("결제 오류 문의가 접수되었습니다. " + expected)


def test_a_24_7_policy_promises_without_hours(client: TestClient, engine: Engine) -> None:
    with session_scope(engine) as s:
        service.save_policy(s, Actor(None, "사장", Role.OWNER), inquiry_type="receipt_request",
                            first_response_minutes=90, resolution_minutes=120, calendar="24/7")
    with clock.frozen(datetime.fromisoformat("2026-11-21T23:00:00+09:00")):
        text = assert_skill_response(post(client, skill_payload("영수증 주세요")).json())
    assert text.startswith("영수증 요청 문의가 접수되었습니다. 1시간 30분 안에 답변드릴게요.")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {kakao_skill.SECRET_HEADER: ""},
        {kakao_skill.SECRET_HEADER: SECRET[:-1]},
        {kakao_skill.SECRET_HEADER: SECRET + "x"},
        {kakao_skill.SECRET_HEADER: SECRET.upper()},
        {"X-Other": SECRET},
    ],
)
def test_a_wrong_or_missing_secret_is_refused_and_writes_nothing(client: TestClient, engine: Engine,
                                                                 headers: dict[str, str]) -> None:
    before = counts(engine)
    response = post(client, skill_payload("환불해 주세요"), headers=headers)
    assert response.status_code == 401
    assert counts(engine) == {**before, "log": before["log"] + 1}
    row = last_log(engine)
    assert (row.status_code, row.outcome, row.verified) == (401, "refused", False)


def test_without_a_configured_secret_everything_is_refused(client: TestClient, engine: Engine) -> None:
    from core.models import Setting

    with session_scope(engine) as s:
        s.delete(s.get(Setting, kakao_skill.SECRET_SETTING))
    for headers in ({kakao_skill.SECRET_HEADER: ""}, {}, HEADERS):
        assert post(client, skill_payload("환불"), headers=headers).status_code == 401
    assert counts(engine)["inquiries"] == 0


def test_the_secret_is_compared_in_constant_time() -> None:
    import inspect

    assert "hmac.compare_digest" in inspect.getsource(kakao_skill.kakao_skill)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"null",
        b"[]",
        b'"hello"',
        b"\xff\xfe\x00{}",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"userRequest": "x"}).encode(),
        json.dumps({"userRequest": {"user": {"properties": {"plusfriendUserKey": "k"}}}}).encode(),
        json.dumps(skill_payload(None)).encode(),
        json.dumps(skill_payload(12345)).encode(),
        json.dumps(skill_payload(["결제 오류"])).encode(),
    ],
    ids=["truncated", "empty", "null", "list", "string", "not-utf8", "deep-nesting", "userRequest-string",
         "no-utterance", "utterance-null", "utterance-number", "utterance-list"],
)
def test_malformed_requests_get_400_and_write_nothing(client: TestClient, engine: Engine, raw: bytes) -> None:
    before = counts(engine)
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert_skill_response(response.json())
    assert counts(engine) == {**before, "log": before["log"] + 1}
    assert last_log(engine).outcome == "bad_request"


@pytest.mark.parametrize(
    ("user_key", "bot_key", "status", "stored"),
    [
        (None, None, 400, None),
        ("", "", 400, None),
        ("   ", None, 400, None),
        (None, "botKey-77", 200, "bot:botKey-77"),  # only the bot's key: used, marked as such
        ("k" * 80, None, 200, "k" * 80),
        ("k" * 81, None, 400, None),
        ("key\x00nul", None, 400, None),
        (12345, None, 400, None),
    ],
)
def test_the_user_key_is_required(client: TestClient, engine: Engine, user_key: object, bot_key: object,
                                  status: int, stored: str | None) -> None:
    response = post(client, skill_payload("결제 오류", user_key, bot_user_key=bot_key))
    assert response.status_code == status
    with Session(engine) as s:
        keys = s.exec(select(Customer.kakao_user_key).where(col(Customer.kakao_user_key).is_not(None))).all()
    assert keys == ([stored] if stored else [])


def test_a_1_mb_utterance_is_refused_before_it_is_read(client: TestClient, engine: Engine) -> None:
    before = counts(engine)
    response = post(client, skill_payload("가" * 1_000_000))
    assert response.status_code == 413
    assert "너무 길어요" in assert_skill_response(response.json())
    assert counts(engine) == {**before, "log": before["log"] + 1}


def test_a_long_utterance_under_the_limit_is_truncated_visibly(client: TestClient, engine: Engine) -> None:
    response = post(client, skill_payload("환불 " + "가" * 20_000))
    assert response.status_code == 200
    assert "10,000자까지만 접수" in assert_skill_response(response.json())
    with Session(engine) as s:
        body = s.exec(select(InquiryEvent.body)).one()
    assert len(body) == service.MAX_TEXT and body.endswith(inbound.TRUNCATED_MARK)


def test_emoji_html_and_control_characters(client: TestClient, engine: Engine) -> None:
    text = '<script>alert("x")</script><img src=x onerror=alert(1)> 환불 🙏🏻👨‍👩‍👧 \x00\x07끝\n둘째 줄'
    assert post(client, skill_payload(text)).status_code == 200
    with Session(engine) as s:
        body = s.exec(select(InquiryEvent.body)).one()
    # Verbatim except the control characters (PostgreSQL refuses NUL); screens show it as text.
    assert body == '<script>alert("x")</script><img src=x onerror=alert(1)> 환불 🙏🏻👨‍👩‍👧 끝\n둘째 줄'


def test_the_same_delivery_twice_adds_nothing(client: TestClient, engine: Engine) -> None:
    payload = skill_payload("결제가 두 번 됐어요")
    first = post(client, payload)
    after_first = counts(engine)
    second = post(client, payload)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()  # Kakao shows the retry's answer: the same promise
    after = counts(engine)
    assert {k: after[k] for k in ("customers", "inquiries", "events")} == \
        {k: after_first[k] for k in ("customers", "inquiries", "events")} == \
        {"customers": 1, "inquiries": 1, "events": 1}
    assert last_log(engine).outcome == "duplicate"
    # After the window the same words are a new message (appended to the open inquiry).
    with clock.frozen(clock.now() + inbound.DUPLICATE_WINDOW + timedelta(seconds=1)):
        assert post(client, payload).status_code == 200
    assert counts(engine)["events"] == 2


def test_a_second_message_is_appended_to_the_open_inquiry(client: TestClient, engine: Engine) -> None:
    post(client, skill_payload("배송 문의요"))
    text = assert_skill_response(post(client, skill_payload("결제 오류도 있어요")).json())
    assert text.startswith("결제 오류 문의에 내용을 덧붙였어요.")
    with Session(engine) as s:
        inquiry = s.exec(select(Inquiry)).one()
        assert inquiry.type == "payment_error"  # 기타 took the more specific type
        kinds = [e.kind for e in service.events_of(s, inquiry.id)]
    assert kinds == ["created", "customer_message", "type_change"]
    # Another person's message is theirs alone.
    post(client, skill_payload("결제 오류", "pfKey-other"))
    assert counts(engine)["inquiries"] == 2


def test_concurrent_deliveries_of_the_same_message_open_one_inquiry(engine: Engine) -> None:
    """Kakao's retry can overlap the first delivery: the customer row lock serialises them."""
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with session_scope(engine) as s:
                inbound.receive_kakao(s, user_key="pf-race", utterance="환불해 주세요")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Customer)).one() == 1
        assert s.exec(select(func.count()).select_from(InquiryEvent)).one() == 1
        outcomes = sorted(s.exec(select(InboundRequest.outcome)).all())
    assert outcomes == ["created"] + ["duplicate"] * 5


def _customer_with_order(engine: Engine, phone: str = "010-2222-3333", number: str = "20261101-0042") -> int:
    with session_scope(engine) as s:
        customer = Customer(name="김고객", phone=phone)
        s.add(customer)
        s.flush()
        s.add(Order(order_number=number, customer_id=customer.id, total_amount=39000))
        return customer.id  # type: ignore[return-value]


def test_a_phone_is_linked_unless_someone_else_has_it(client: TestClient, engine: Engine) -> None:
    owner_id = _customer_with_order(engine)
    post(client, skill_payload("환불해 주세요"))
    # The customer's own new number (full-width digits from a phone keyboard): linked.
    text = assert_skill_response(post(client, skill_payload("０１０-９８７６-５４３２")).json())
    assert "확인했어요" in text
    with Session(engine) as s:
        me = s.exec(select(Customer).where(Customer.kakao_user_key == "pfKey-abc123")).one()
        assert inbound.canonical_phone(me.phone) == inbound.canonical_phone("010-9876-5432")
    # Someone else's number without the order: not linked, nothing about them said.
    text = assert_skill_response(post(client, skill_payload("010-2222-3333", "pfKey-stranger")).json())
    assert "주문번호를 함께" in text and "김고객" not in text and "39,000" not in text
    with Session(engine) as s:
        stranger = s.exec(select(Customer).where(Customer.kakao_user_key == "pfKey-stranger")).one()
        assert stranger.phone is None and stranger.id != owner_id


def test_phone_and_order_number_prove_the_person_and_join_their_record(client: TestClient, engine: Engine) -> None:
    owner_id = _customer_with_order(engine)
    post(client, skill_payload("주문한 거 환불 돼요?", "pfKey-kim"))
    post(client, skill_payload("010-2222-3333 20261101-0042", "pfKey-kim"))
    with Session(engine) as s:
        owner = s.get(Customer, owner_id)
        assert owner.kakao_user_key == "pfKey-kim"
        inquiry = s.exec(select(Inquiry)).one()
        assert inquiry.customer_id == owner_id and inquiry.order_id is not None
    # A wrong order number proves nothing.
    post(client, skill_payload("010-2222-3333 20261101-9999", "pfKey-liar"))
    with Session(engine) as s:
        assert s.get(Customer, owner_id).kakao_user_key == "pfKey-kim"


def test_a_staff_reply_goes_out_through_the_outbox_to_the_phone_given_in_the_chat(client: TestClient,
                                                                                     engine: Engine) -> None:
    post(client, skill_payload("결제 오류가 나요"))
    post(client, skill_payload("010-5555-6666"))
    with session_scope(engine) as s:
        inquiry = s.exec(select(Inquiry)).one()
        service.reply(s, CS, inquiry.id, "확인해 보니 결제는 취소되었어요. 다시 시도해 주세요.")
    message_sender(engine, clock.now())
    with Session(engine) as s:
        message = s.exec(select(Message).where(Message.template_key == "inquiry_reply")).one()
    assert message.status in (MessageStatus.SENT, MessageStatus.DELIVERED), message.reason
    assert inbound.canonical_phone(message.to_phone) == inbound.canonical_phone("010-5555-6666")
    assert "결제는 취소" in message.text
