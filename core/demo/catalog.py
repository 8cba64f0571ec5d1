"""What the demo shop is: its products, plans, customers' names, inquiry texts, replies and reviews."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from core.models import (
    InquiryType,
)

GATEWAY = "sandbox"
WINDOW_DAYS = 183  # "the last 6 months"
LINK_TTL_S = 72 * 3600

# Placeholder SLA targets (first response, resolution) in minutes; the SLA engine recomputes deadlines.
SLA_TARGET_MINUTES = {
    InquiryType.PAYMENT_ERROR: (10, 30),
    InquiryType.DOUBLE_CHARGE: (10, 60),
    InquiryType.REFUND_REQUEST: (60, 24 * 60),
    InquiryType.RECEIPT_REQUEST: (5, 10),
    InquiryType.OTHER: (4 * 60, 48 * 60),
}


@dataclass(frozen=True)
class ProductSpec:
    name: str
    category: str
    price: int
    is_tax_free: bool = False
    replenishment_days: int | None = None
    is_subscription: bool = False
    weight: int = 0  # popularity in one-off orders (0: never sold one-off)
    shipped: bool = True  # goods go by courier; passes and memberships do not
    max_quantity: int = 3


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("헬스장 월회비", "헬스장", 39_000, is_subscription=True, shipped=False),
    ProductSpec("원두 정기배송 (200g x 2)", "커피", 24_900, is_subscription=True),
    ProductSpec("프로틴 쉐이크 격주 정기배송", "건강식품", 29_000, is_subscription=True),
    ProductSpec(
        "GX 월간 이용권", "헬스장", 59_000, replenishment_days=30, weight=7, shipped=False, max_quantity=1
    ),
    ProductSpec("헬스장 1일 이용권", "헬스장", 10_000, weight=5, shipped=False, max_quantity=2),
    ProductSpec("PT 10회권", "헬스장", 550_000, weight=1, shipped=False, max_quantity=1),
    ProductSpec("드립백 커피 10개입", "커피", 12_900, replenishment_days=30, weight=20),
    ProductSpec("싱글오리진 원두 200g", "커피", 16_500, replenishment_days=21, weight=11),
    ProductSpec("콜드브루 원액 500ml", "커피", 14_800, replenishment_days=20, weight=8),
    ProductSpec("프로틴 쉐이크 초코 1kg", "건강식품", 32_000, replenishment_days=45, weight=12),
    ProductSpec("단백질 바 12개입", "건강식품", 18_000, replenishment_days=30, weight=8),
    ProductSpec("셰이커 보틀 700ml", "용품", 8_900, weight=5),
    ProductSpec("헬스 장갑", "용품", 19_000, weight=3, max_quantity=1),
    ProductSpec("요가매트 6mm", "용품", 29_000, weight=3, max_quantity=1),
    # Unprocessed food is VAT-exempt in Korea (면세).
    ProductSpec(
        "생 닭가슴살 1kg (냉장)", "면세 식품", 11_900, is_tax_free=True, replenishment_days=14, weight=7
    ),
    ProductSpec(
        "제주 유기농 바나나 2kg", "면세 식품", 15_900, is_tax_free=True, replenishment_days=14, weight=4
    ),
    ProductSpec("유기농 현미 4kg", "면세 식품", 22_000, is_tax_free=True, replenishment_days=40, weight=3),
)

# (plan name, product index, amount, interval unit, interval count, popularity)
PLANS: tuple[tuple[str, int, int, str, int, int], ...] = (
    ("헬스장 월회비", 0, 39_000, "month", 1, 50),
    ("원두 정기배송", 1, 24_900, "month", 1, 35),
    ("프로틴 쉐이크 격주 정기배송", 2, 29_000, "week", 2, 15),
)

SURNAMES = (
    ("김", 215),
    ("이", 147),
    ("박", 84),
    ("최", 47),
    ("정", 44),
    ("강", 23),
    ("조", 21),
    ("윤", 21),
    ("장", 20),
    ("임", 17),
    ("한", 15),
    ("오", 15),
    ("서", 15),
    ("신", 14),
    ("권", 14),
    ("황", 14),
    ("안", 13),
    ("송", 13),
    ("류", 12),
    ("전", 11),
    ("홍", 11),
    ("고", 9),
    ("문", 9),
    ("양", 8),
    ("손", 8),
    ("배", 8),
    ("백", 8),
    ("허", 6),
    ("유", 6),
    ("남", 6),
    ("심", 5),
    ("노", 5),
    ("하", 4),
)
GIVEN_NAMES = [
    "민준",
    "서준",
    "도윤",
    "예준",
    "시우",
    "하준",
    "주원",
    "지호",
    "지후",
    "준우",
    "준서",
    "건우",
    "현우",
    "우진",
    "선우",
    "연우",
    "유준",
    "정우",
    "승우",
    "승현",
    "시윤",
    "준혁",
    "은우",
    "지환",
    "승민",
    "지우",
    "유찬",
    "윤우",
    "민재",
    "현준",
    "서연",
    "서윤",
    "지우",
    "서현",
    "민서",
    "하은",
    "하윤",
    "윤서",
    "지유",
    "지민",
    "채원",
    "지윤",
    "은서",
    "수아",
    "다은",
    "예은",
    "지아",
    "수빈",
    "소율",
    "예린",
    "예원",
    "지원",
    "소윤",
    "시은",
    "하린",
    "유나",
    "민지",
    "수민",
    "영희",
    "철수",
    "영수",
    "미경",
    "정희",
    "은정",
    "현주",
    "지영",
    "성민",
    "동현",
    "상훈",
    "재훈",
    "혜진",
    "수진",
    "경민",
    "태희",
    "보람",
    "다현",
    "가은",
    "나연",
    "준영",
    "태윤",
]

INQUIRY_TEXT: dict[str, tuple[tuple[str, str], ...]] = {
    InquiryType.PAYMENT_ERROR: (
        ("카카오페이 결제가 안 돼요", "결제 버튼을 눌렀는데 '결제 실패'만 뜹니다. 카드는 정상이에요."),
        ("결제 중 오류가 났어요", "결제하다가 앱이 꺼졌는데 돈이 빠져나갔는지 확인 부탁드립니다."),
        ("비밀번호 입력 후 멈춤", "카카오페이 비밀번호 입력하고 나서 화면이 멈췄어요. 주문이 된 건가요?"),
    ),
    InquiryType.DOUBLE_CHARGE: (
        ("결제가 두 번 됐어요", "같은 주문이 카드에서 두 번 결제됐습니다. 하나 취소해 주세요."),
        ("중복 결제 확인 부탁드려요", "알림이 두 번 왔어요. 이중 결제된 것 같아요."),
    ),
    InquiryType.REFUND_REQUEST: (
        ("환불 요청드립니다", "단순 변심으로 환불하고 싶어요. 아직 개봉 안 했습니다."),
        ("상품이 파손되어 왔어요", "포장이 찢어져서 내용물이 새어 있었습니다. 환불 부탁드려요."),
        ("이용권 환불 가능한가요", "이사 때문에 이용권을 더 못 쓰게 됐어요. 남은 기간 환불되나요?"),
    ),
    InquiryType.RECEIPT_REQUEST: (
        ("영수증 발급 부탁드려요", "회사 제출용으로 전자영수증 보내주실 수 있나요?"),
        ("현금영수증 요청", "지난달 결제한 건 현금영수증 발행 부탁드립니다."),
    ),
    InquiryType.OTHER: (
        ("배송 언제 오나요?", "주문한 지 3일 됐는데 아직 배송 시작이 안 됐어요."),
        ("헬스장 운영 시간 문의", "공휴일에도 헬스장 여나요?"),
        ("정기배송 주소 변경", "다음 정기배송부터 주소를 바꾸고 싶어요."),
    ),
}
REPLIES = {
    InquiryType.PAYMENT_ERROR: "확인해 보니 결제는 승인되지 않았습니다. 다시 한번 시도해 주시겠어요?",
    InquiryType.DOUBLE_CHARGE: "중복 결제를 확인했습니다. 한 건은 바로 취소해 드렸습니다.",
    InquiryType.REFUND_REQUEST: "환불 규정 안내드립니다. 요청하신 금액으로 환불 처리했습니다.",
    InquiryType.RECEIPT_REQUEST: "전자영수증을 카카오톡으로 보내드렸습니다.",
    InquiryType.OTHER: "문의 감사합니다. 확인 후 안내드렸습니다.",
}
REVIEW_TEXT = {
    1: ("배송이 너무 늦었어요.", "기대보다 별로였어요."),
    2: ("포장이 조금 아쉬웠어요.", "맛이 제 취향은 아니네요."),
    3: ("무난해요.", "가격 대비 괜찮습니다."),
    4: ("만족합니다. 재구매 의사 있어요.", "빠른 배송 감사합니다.", "맛있어요!"),
    5: (
        "최고예요! 벌써 세 번째 구매입니다.",
        "사장님 친절하시고 상품도 좋아요.",
        "향이 정말 좋아요 ☕",
        "운동 후에 먹기 딱 좋아요 💪",
    ),
}
REVIEW_ANSWERS = (
    "소중한 후기 감사합니다! 다음에도 만족하실 수 있게 준비하겠습니다.",
    "세 번째 구매 감사드려요. 늘 신선하게 보내드릴게요.",
    "좋게 봐 주셔서 감사합니다. 궁금한 점은 언제든 채널로 물어봐 주세요.",
    "후기 감사합니다! 재구매 때 작은 샘플을 함께 넣어 드릴게요.",
)
REFUND_REASONS = ("단순 변심", "상품 파손", "배송 지연", "주문 실수", "이용권 미사용")


def cumulative(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total
