"""Korean words for every code a person could see: one table per domain, used by pages and CSV headers.

No code name reaches the screen: a code without an entry shows a neutral Korean word ("기타"), never
the code itself. The tables that already live next to their models (ORDER_STATUS_LABELS,
CAMPAIGN_STATUS_LABELS, MESSAGE_STATUS_LABELS, ...) stay there; this module holds the ones the
models do not have, and the sentences built from codes (segment rules, job counts, ISO weeks).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core.customers import vip
from core.messaging.default_templates import DEFAULT_TEMPLATES
from core.models.campaigns import CAMPAIGN_STATUS_LABELS, CampaignStatus
from core.models.orders import GATEWAY_LABELS, PAYMENT_METHOD_LABELS
from core.money import format_krw

UNKNOWN = "기타"

# ------------------------------------------------------------------ payments
# Gateway failure codes (KakaoPay / Toss / our sandbox) as a shop owner would say them.
GATEWAY_REASON_LABELS = {
    "INSUFFICIENT_FUNDS": "잔액 부족",
    "NOT_ENOUGH_BALANCE": "잔액 부족",
    "EXCEED_MAX_DAILY_PAYMENT_COUNT": "하루 결제 한도 초과",
    "EXCEED_MAX_AMOUNT": "결제 한도 초과",
    "INVALID_CARD_EXPIRATION": "카드 유효기간 만료",
    "INVALID_STOPPED_CARD": "정지된 카드",
    "CARD_EXPIRED": "카드 유효기간 만료",
    "CARD_LOST_OR_STOLEN": "분실·도난 카드",
    "REJECT_CARD_COMPANY": "카드사 거절",
    "REJECT_CARD_PAYMENT": "카드사 거절",
    "INVALID_SID": "정기결제 키 무효",
    "INVALID_BILLING_KEY": "정기결제 키 무효",
    "USER_CANCEL": "고객이 결제 취소",
    "PAY_PROCESS_CANCELED": "고객이 결제 취소",
    "TIMEOUT": "응답 시간 초과",
    "NETWORK_ERROR": "연결 오류",
    "UNKNOWN": "결과 확인 중",
    "empty": "응답 없음",
}


def gateway_label(code: str | None) -> str:
    return GATEWAY_LABELS.get(code or "", "결제 대행사")


def method_label(code: str | None) -> str:
    return PAYMENT_METHOD_LABELS.get(code or "", "결제")


def reason_label(code: str | None, message: str | None = None) -> str:
    """A gateway's failure: its Korean message when it sent one, else our word for the code."""
    if message and not _looks_like_code(message):
        return message
    if not code:
        return "-"
    return GATEWAY_REASON_LABELS.get(code, GATEWAY_REASON_LABELS.get(code.upper(), "결제 실패 (대행사 사유)"))


def _looks_like_code(text: str) -> bool:
    return text.replace("_", "").isascii() and (text.isupper() or "_" in text or text.islower())


# ------------------------------------------------------------------ messages
_TEMPLATE_NAMES = {spec["key"]: spec["name"] for spec in DEFAULT_TEMPLATES}


def template_label(key: str | None) -> str:
    """`review_request` -> 리뷰 요청; a campaign's message (no template) -> 캠페인."""
    if not key:
        return "캠페인"
    if key.startswith("campaign"):
        return "캠페인"
    return _TEMPLATE_NAMES.get(key, "사용자 템플릿")


# ------------------------------------------------------------------ worker
JOB_LABELS = {
    "payment_reconciliation": "결제 결과 확인",
    "payment_link_expiry": "결제 링크 만료",
    "payment_link_reminders": "결제 링크 재안내",
    "billing_notices": "정기결제 사전 안내",
    "billing_charges": "정기결제 청구",
    "double_charge_sentinel": "이중 결제 감시",
    "sla_watch": "문의 기한 감시",
    "inbound_log_prune": "수신 기록 정리",
    "reward_releases": "미결제 할인 되돌리기",
    "order_confirmations": "주문 확인 메시지",
    "review_requests": "리뷰 요청 메시지",
    "repurchase_reminders": "재구매 알림",
    "campaign_scheduler": "캠페인 예약 발송",
    "analytics_rollup": "매출 집계",
    "message_sender": "메시지 발송",
    "delivery_reports": "전달 결과 수집",
}
JOB_OUTCOME_LABELS = {"ok": "정상", "error": "오류", "running": "실행 중"}
JOB_COUNT_LABELS = {
    "found": "발견", "opened": "문의 생성", "queued": "대기열 등록", "sent": "발송", "failed": "실패",
    "claimed": "처리 대상", "due": "도래", "expired": "만료", "reminded": "재안내", "succeeded": "성공",
    "unknown": "확인 중", "skipped": "건너뜀", "held": "보류", "deferred": "연기", "resolved": "해결",
    "refunded": "환불", "breached": "기한 초과", "at_risk": "기한 임박", "messages": "메시지",
    "recipients": "수신자", "paid": "결제 완료", "started": "시작", "finished": "완료",
    "notices_queued": "안내 등록", "rebuilt": "재집계", "winners_sent": "승자 발송",
    "still_unknown": "여전히 확인 중", "refunds_settled": "환불 확정",
    "deleted": "삭제", "released": "되돌림",
    # 매출 집계 (core/analytics/jobs.py)
    "orders": "집계한 주문", "days": "집계한 날", "chunks": "집계 단계", "repaired_days": "다시 집계한 날",
    "repaired_customers": "다시 집계한 고객",
}


def job_label(job_id: str) -> str:
    return JOB_LABELS.get(job_id, "기타 작업")


def import_rollup_note(counts: dict[str, int], failed: str | None) -> str:
    """The import summary's last part: what the 매출 rollup step after the commit did
    (" · 매출 집계 완료: 33,070건"), or that the worker's job will do it; "" when nothing ran.
    The failure's own text (English, a code name) stays off the screen: the worker logs its run."""
    label = JOB_LABELS["analytics_rollup"]
    if failed:
        return f" · {label}는 지금 할 수 없어 작업기가 곧 마칩니다 (그동안 매출 화면이 조금 느릴 수 있습니다)"
    if not counts:
        return ""
    return f" · {label} 완료: {counts.get('orders', 0):,}건"


def job_counts_sentence(counts: dict[str, Any]) -> str:
    """{"found": 0, "opened": 2} -> "문의 생성 2건" (zeros are left out: nothing happened)."""
    parts: list[str] = []
    other = 0
    for key, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value == 0 or key.endswith("_ms"):
            continue  # a timing (longest_chunk_ms) is for the log, not a count of things done
        if key in JOB_COUNT_LABELS:
            parts.append(f"{JOB_COUNT_LABELS[key]} {value:,}건")
        else:
            other += value
    if other:
        parts.append(f"기타 {other:,}건")
    return ", ".join(parts) or "처리할 일 없음"


# ------------------------------------------------------------------ campaigns
SUBSCRIPTION_RULE_STATUS = {
    "active": "이용 중", "paused": "일시정지", "past_due": "결제 실패", "canceled": "해지", "none": "없음",
}


def campaign_state(status: str, winner_variant: str | None = None) -> str:
    """작성 중 / 예약 / 테스트 중 / 승자 발송 / 발송 완료: a campaign sending its winner says so."""
    if status == CampaignStatus.SENDING and winner_variant:
        return f"승자 발송 ({winner_variant}안)"
    return CAMPAIGN_STATUS_LABELS.get(status, UNKNOWN)  # type: ignore[call-overload]


def _won(amount: Any) -> str:
    number = int(amount)
    if number >= 10_000 and number % 10_000 == 0:
        return f"{number // 10_000:,}만원"
    return format_krw(number)


def rule_sentence(rule: dict[str, Any], product_names: dict[int, str] | None = None) -> str:
    """A segment rule as a sentence: {"type": "spent", "min_amount": 300000, "days": 90}
    -> "최근 90일 30만원 이상 구매"."""
    kind = rule.get("type")
    days = rule.get("days")
    if kind == "spent":
        return f"최근 {days}일 {_won(rule.get('min_amount', 0))} 이상 구매"
    if kind == "bought":
        names = [(product_names or {}).get(int(p), f"상품 {p}") for p in rule.get("product_ids") or []]
        what = ", ".join(names)
        if rule.get("category"):
            what = f"{what} 또는 '{rule['category']}' 분류" if what else f"'{rule['category']}' 분류"
        return f"최근 {days}일 {what or '상품'} 구매"
    if kind == "repurchase_due":
        return f"{rule.get('within_days', 0)}일 안에 재구매 시기 도래"
    if kind == "dormant":
        extra = " (주문한 적 없는 고객 포함)" if rule.get("include_never") else ""
        return f"{days}일간 주문 없음{extra}"
    if kind == "subscription":
        statuses = [SUBSCRIPTION_RULE_STATUS.get(s, UNKNOWN) for s in rule.get("statuses") or []]
        return f"정기결제 {', '.join(statuses) or '상태 무관'}"
    if kind == "channel_friend":
        return "채널 친구" if rule.get("value") else "채널 친구 아님"
    if kind == "order_count":
        low, high = rule.get("min"), rule.get("max")
        if high:
            return f"주문 {low or 0}~{high}회"
        return f"주문 {low or 0}회 이상"
    if kind == "first_purchase":
        return f"최근 {days}일 안에 첫 구매"
    if kind == "vip":
        return "VIP 고객 (설정의 VIP 기준)"
    return "알 수 없는 조건"


# ------------------------------------------------------------------ dates
DATE_PRESETS = ("오늘", "어제", "최근 7일", "이번 주", "이번 달", "지난 달", "올해")


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The first and last day (inclusive, KST) of a Korean date preset; weeks start on Monday."""
    if preset == "오늘":
        return today, today
    if preset == "어제":
        day = today - timedelta(days=1)
        return day, day
    if preset == "최근 7일":
        return today - timedelta(days=6), today
    if preset == "이번 주":
        return today - timedelta(days=today.weekday()), today
    if preset == "이번 달":
        return today.replace(day=1), today
    if preset == "지난 달":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "올해":
        return today.replace(month=1, day=1), today
    raise ValueError(preset)


def week_label(year: int, week: int) -> str:
    """ISO week -> "12월 1주": the month holding the week's Thursday (as ISO itself decides the
    year), and which Thursday of that month it is. 2026-W49 (Mon 11/30..Sun 12/6) -> 12월 1주."""
    thursday = date.fromisocalendar(year, week, 4)
    return f"{thursday.month}월 {(thursday.day - 1) // 7 + 1}주"


def iso_week_text(text: str) -> str:
    """"2026-W46" -> "11월 2주" (anything else unchanged)."""
    try:
        year, week = text.split("-W")
        return week_label(int(year), int(week))
    except ValueError:
        return text


# ------------------------------------------------------------------ subscriptions
FINAL_ACTION_LABELS = {"pause": "일시정지", "cancel": "해지", "keep": "유지", "past_due": "미납으로 유지"}
_AMOUNT_KEYS = {"amount", "old", "new"}
HISTORY_DETAIL_LABELS = {
    "plan": "상품", "amount": "금액", "old": "이전 금액", "new": "새 금액", "next_charge_date": "다음 결제일",
    "has_instrument": "결제수단", "reason": "사유", "ends_on": "종료일", "from_date": "적용일",
    "final_action": "최종 처리", "period": "결제일", "resume_on": "재개일", "gateway": "결제 대행사",
    "moved_from": "조정 전 결제일", "held_period": "확인 중인 결제일", "hard": "재시도 안 함",
    "next_retry_on": "다음 재시도일", "attempt": "시도", "lookups": "조회 횟수", "via": "방식",
    "via_lookup": "조회로 확인", "order_id": "주문", "payment_id": "결제",
}


def history_detail(detail: dict[str, Any]) -> str:
    """A subscription event's detail as words: {"plan": "원두 구독", "amount": 24900} ->
    "상품 원두 구독 · 금액 24,900원". Keys without a label (gateway ids) are left out."""
    parts: list[str] = []
    for key, value in detail.items():
        if key not in HISTORY_DETAIL_LABELS or value in (None, ""):
            continue
        if key in _AMOUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
            shown = format_krw(value)
        elif key == "has_instrument":
            shown = "등록됨" if value else "없음"
        elif isinstance(value, bool):
            shown = "예" if value else "아니오"
        elif key == "final_action":
            shown = FINAL_ACTION_LABELS.get(str(value), UNKNOWN)
        elif key == "gateway":
            shown = gateway_label(str(value))
        else:
            shown = str(value)
        parts.append(f"{HISTORY_DETAIL_LABELS[key]} {shown}")
    return " · ".join(parts)


# ------------------------------------------------------------------ VIP
# One word on every screen where a customer appears (core.customers.vip.LABEL).
VIP_BADGE = f":violet-badge[:material/star: {vip.LABEL}]"


def with_vip(name: str, is_vip: bool) -> str:
    """A customer's name in a table cell or plain text, marked when they are VIP: "김민지 · VIP"."""
    return f"{name} · {vip.LABEL}" if is_vip else name
