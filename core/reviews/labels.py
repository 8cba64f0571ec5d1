"""Every Korean word of the reviews domain, in one table (pages, the public page and messages use these)."""

from __future__ import annotations

from core.reviews.rules import EDIT_DAYS, TOKEN_DAYS, TokenState

# The public page's answer to a link it cannot take a review through (the page picks the status).
LINK_REFUSALS = {
    TokenState.MALFORMED: "리뷰 링크 주소가 올바르지 않아요. 받으신 메시지의 링크를 다시 눌러 주세요.",
    TokenState.UNKNOWN: "찾을 수 없는 리뷰 링크예요. 받으신 메시지의 링크를 다시 눌러 주세요.",
    TokenState.EXPIRED: f"리뷰 링크의 사용 기간({TOKEN_DAYS}일)이 지났어요. 후기를 남기고 싶으시면 고객센터로 알려 주세요.",
    TokenState.LOCKED: f"작성 후 {EDIT_DAYS}일이 지난 후기는 고칠 수 없어요. 남겨 주신 후기는 아래에서 보실 수 있어요.",
}
STATUS_OF_REFUSAL = {
    TokenState.MALFORMED: 400,
    TokenState.UNKNOWN: 404,
    TokenState.EXPIRED: 410,
    TokenState.LOCKED: 409,
}

STAR_LABELS = {1: "별로예요", 2: "아쉬워요", 3: "보통이에요", 4: "좋아요", 5: "최고예요"}

# 리뷰 screen filters
ANSWER_FILTERS = {"all": "전체", "waiting": "답변 대기", "answered": "답변 완료"}
HIDDEN_FILTERS = {"shown": "공개된 리뷰", "hidden": "숨긴 리뷰", "all": "전체"}
STATE_LABELS = {"waiting": "답변 대기", "answered": "답변 완료", "hidden": "숨김"}


def stars(rating: int | None) -> str:
    """★★★★☆ for 4 (the screen and the snippet: plain characters, no images)."""
    if not rating:
        return ""
    return "★" * rating + "☆" * (5 - rating)


def negative_inquiry_body(*, stars: int, product: str, order_number: str, text: str) -> str:
    head = f"{stars}점 리뷰가 들어왔습니다. 상품: {product}, 주문번호: {order_number}."
    return f"{head}\n리뷰 내용: {text}" if text else f"{head}\n(리뷰 내용 없음)"


def answer_message(*, customer: str, product: str, answer: str, review_url: str) -> str:
    """The answer's text as the embedded outbox records it (the template review_answer says the same)."""
    return f"[후기 답변]\n{customer}님, {product} 후기에 답변드립니다.\n{answer}\n후기 보기: {review_url}"
