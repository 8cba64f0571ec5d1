"""Every template a message can use, from the first start: automations, billing, payment links,
refunds, inquiry replies, receipts and SLA alerts, so the owner can register each AlimTalk id on 설정
before the first message is due. Created once (never overwritten: the owner edits them on
설정); the sender creates any that are missing, so a clone works before anyone runs a seed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.models import MessageKind, Template
from core.payments.templates import PAYMENT_TEMPLATES

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {
        "key": "order_confirmation",
        "name": "주문 확인",
        "kind": MessageKind.INFORMATIONAL,
        "body": (
            "#{고객명}님, 주문해 주셔서 감사합니다!\n"
            "주문번호: #{주문번호}\n"
            "#{상품목록}\n"
            "결제금액: #{결제금액}\n"
            "배송: #{배송방법} (#{배송예정일} 출고 예정)\n"
            "배송조회: #{배송조회}\n"
            "교환·반품: #{반품정책}\n"
            "반품주소: #{반품주소}\n"
            "지인에게 추천하기: #{추천링크}"
        ),
    },
    {
        # Once per customer ever, on the first contact (core/messaging/welcome.py): the refund policy up front.
        "key": "welcome",
        "name": "첫 인사 (환불 정책 안내)",
        "kind": MessageKind.INFORMATIONAL,
        "body": (
            "#{고객명}님, 반갑습니다. 찾아 주셔서 감사합니다.\n"
            "주문 전에 알아 두시면 좋은 교환·환불 안내입니다.\n"
            "#{환불정책}\n"
            "궁금한 점은 언제든 이 채널 채팅으로 물어봐 주세요."
        ),
    },
    {
        "key": "review_request",
        "name": "리뷰 요청",
        "kind": MessageKind.INFORMATIONAL,
        "body": (
            "#{고객명}님, 주문하신 상품(#{주문번호})은 잘 받으셨나요?\n"
            "사용해 보신 솔직한 후기를 남겨 주시면 다른 고객님께 큰 도움이 됩니다.\n"
            "후기 작성: #{리뷰링크}"
        ),
    },
    {
        "key": "review_reminder",
        "name": "리뷰 요청 (리마인드)",
        "kind": MessageKind.INFORMATIONAL,
        "body": (
            "#{고객명}님, 주문(#{주문번호}) 상품 후기를 아직 남기지 않으셨다면\n"
            "짧게라도 의견을 들려주세요.\n"
            "후기 작성: #{리뷰링크}"
        ),
    },
    {
        # Matches the variables core/inquiries/service.py queues a receipt with.
        "key": "receipt",
        "name": "전자 영수증",
        "kind": MessageKind.INFORMATIONAL,
        "body": "요청하신 전자 영수증입니다.\n결제금액: #{amount}원\n거래번호: #{tid}",
    },
    {
        # Staff alert of the SLA watch (core/inquiries/watch.py) to the CS lead's phone, not a customer.
        "key": "sla_alert",
        "name": "CS 기한 알림 (직원용)",
        "kind": MessageKind.INFORMATIONAL,
        "body": "[CS 기한 알림]\n#{내용}",
    },
    # Recurring billing (core/billing/ renders its text from these bodies, so the outbox text and
    # an AlimTalk send of the approved template are the same words). Optional sentences are
    # variables that may be empty.
    {
        "key": "billing_notice",
        "name": "정기결제 사전 안내 (D-1)",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{언제}(#{결제일}) #{상품명} #{금액}이 결제될 예정입니다. 변경이 필요하시면 미리 연락 부탁드립니다.",
    },
    {
        "key": "billing_receipt",
        "name": "정기결제 완료",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} #{금액} 결제가 완료되었습니다 (주문번호 #{주문번호}).#{다음결제안내}",
    },
    {
        "key": "billing_failed",
        "name": "정기결제 실패",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} #{금액} 결제가 완료되지 않았습니다 (#{사유}).#{재시도안내}#{결제안내}",
    },
    {
        "key": "billing_dunning_end",
        "name": "정기결제 재시도 종료",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} 결제가 완료되지 않아 정기결제가 #{조치}되었습니다.",
    },
    {
        "key": "subscription_paused",
        "name": "정기결제 일시정지",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} 정기결제가 일시정지되었습니다.#{재개안내}",
    },
    {
        "key": "subscription_resumed",
        "name": "정기결제 재개",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} 정기결제가 다시 시작되었습니다. 다음 결제일은 #{다음결제일}입니다.",
    },
    {
        "key": "subscription_canceled",
        "name": "정기결제 해지",
        "kind": MessageKind.INFORMATIONAL,
        "body": "#{상품명} 정기결제 해지가 #{해지상태}. #{종료일}부터 더 이상 결제되지 않습니다.",
    },
    {
        "key": "subscription_changed",
        "name": "정기결제 변경",
        "kind": MessageKind.INFORMATIONAL,
        "body": "다음 결제부터 #{상품명} #{금액}으로 변경됩니다.",
    },
    {
        # Inquiry replies (core/inquiries/service.py queues the staff's answer as #{답변}).
        "key": "inquiry_reply",
        "name": "문의 답변",
        "kind": MessageKind.INFORMATIONAL,
        "body": "[문의 답변]\n#{답변}",
    },
    {
        # The shop's answer to a review (core/reviews/service.py; core.reviews.labels.answer_message
        # says the same for the embedded outbox).
        "key": "review_answer",
        "name": "리뷰 답변",
        "kind": MessageKind.INFORMATIONAL,
        "body": "[후기 답변]\n#{고객명}님, #{상품명} 후기에 답변드립니다.\n#{답변}\n후기 보기: #{리뷰링크}",
    },
    # Payment flows (core/payments: refund done, unpaid payment-link reminder): created here at the
    # first start too, so the owner can register their AlimTalk ids before the first one is due.
    *(
        {"key": key, "name": spec["name"], "kind": MessageKind.INFORMATIONAL, "body": spec["body"]}
        for key, spec in PAYMENT_TEMPLATES.items()
    ),
    {
        # core/rewards: a referred friend's first purchase credited the referrer (tells of a reward
        # already given, asks for nothing: informational).
        "key": "referral_thanks",
        "name": "추천 감사",
        "kind": MessageKind.INFORMATIONAL,
        "body": (
            "#{고객명}님, 추천해 주신 분이 첫 주문을 하셨습니다. 추천해 주셔서 감사합니다.\n"
            "감사의 뜻으로 #{보상}을 드렸습니다."
        ),
    },
    {
        "key": "repurchase",
        "name": "재구매 알림",
        "kind": MessageKind.ADVERTISING,
        "body": (
            "#{고객명}님, #{상품명}을(를) 구매하신 지 #{경과일}일이 지났어요.\n"
            "다 떨어지기 전에 다시 준비해 보세요.\n"
            "바로 주문: #{상품링크}"
        ),
    },
]


def default_body(key: str) -> str:
    """The shipped body of a default template (flows that render their own text use it)."""
    return next(spec["body"] for spec in DEFAULT_TEMPLATES if spec["key"] == key)


def ensure_default_templates(session: Session) -> int:
    """Add the default templates that are missing (existing ones are never overwritten)."""
    existing = set(session.execute(select(Template.key)).scalars())
    added = 0
    for spec in DEFAULT_TEMPLATES:
        if spec["key"] in existing:
            continue
        session.add(
            Template(
                key=spec["key"],
                name=spec["name"],
                kind=spec["kind"].value,
                body=spec["body"],
                approved_body=spec["body"] if spec["kind"] == MessageKind.INFORMATIONAL else None,
            )
        )
        added += 1
    session.flush()
    return added
