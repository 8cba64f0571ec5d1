"""The inbound request log (core.models.InboundRequest): written for every request to a hook or the
/help form, read by 설정 → 연동, the duplicate check and the throttles.

Rows hold no secret, no whole message and no phone number: a sha256 digest says "the same request
again" (digest) or "the same person again" (subject), the length says how much was written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from core import clock
from core.models import InboundRequest

CHANNELS = ("kakao_skill", "toss", "help")
# The longest window any check reads is a day (Toss's duplicate window); 설정 → 연동 shows the latest
# rows. A month keeps enough to answer "did that webhook arrive?" without a flood filling the disk.
RETENTION = timedelta(days=30)
PRUNE_BATCH = 5_000
CHANNEL_LABELS = {"kakao_skill": "카카오톡 챗봇", "toss": "토스페이먼츠 웹훅", "help": "문의 페이지"}
OUTCOME_LABELS = {
    "created": "새 문의",
    "appended": "기존 문의에 추가",
    "duplicate": "중복 (이미 처리)",
    "phone_linked": "전화번호 연결",
    "linked": "주문으로 본인 확인",
    "refused": "거부",
    "bad_request": "잘못된 요청",
    "too_large": "너무 큼",
    "throttled": "요청 제한",
    "not_proven": "주문 확인 실패",
    "unknown_payment": "모르는 결제",
    "reconciled": "결제 상태 반영",
    "consistent": "변동 없음",
    "mismatch": "결제 오류 문의",
    "ignored": "처리하지 않는 이벤트",
    "lookup_failed": "조회 실패 (재전송 대기)",
    "error": "처리 오류",
    "test": "연결 테스트",
    "pending_refund": "환불 처리 중 (워커가 확인)",
}


def digest(*parts: str) -> str:
    """sha256 of the parts (NUL-joined): equal for the same request, useless to read back."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def record(
    session: Session,
    *,
    channel: str,
    status_code: int,
    outcome: str,
    verified: bool,
    started: float | None = None,
    elapsed_ms: int | None = None,
    address: str = "",
    inquiry_id: int | None = None,
    customer_id: int | None = None,
    digest: str | None = None,
    subject: str | None = None,
    **detail: Any,
) -> InboundRequest:
    """Add one log row in the caller's transaction."""
    import time

    if elapsed_ms is None:
        elapsed_ms = int((time.perf_counter() - started) * 1000) if started is not None else 0
    row = InboundRequest(
        channel=channel,
        received_at=clock.now(),
        verified=verified,
        status_code=status_code,
        outcome=outcome[:32],
        inquiry_id=inquiry_id,
        customer_id=customer_id,
        elapsed_ms=max(0, elapsed_ms),
        address=(address or "")[:64],
        digest=digest,
        subject=subject,
        detail=detail,
    )
    session.add(row)
    session.flush()
    return row


def seen_within(session: Session, channel: str, digest_value: str, window: timedelta,
                outcomes: tuple[str, ...]) -> InboundRequest | None:
    """The latest request of this channel with this digest and one of these outcomes in the window."""
    since = clock.now() - window
    return session.exec(
        select(InboundRequest)
        .where(
            InboundRequest.channel == channel,
            InboundRequest.digest == digest_value,
            InboundRequest.received_at >= since,
            col(InboundRequest.outcome).in_(outcomes),
        )
        .order_by(col(InboundRequest.id).desc())
        .limit(1)
    ).first()


def count_since(session: Session, channel: str, *, since: datetime, address: str | None = None,
                subject: str | None = None) -> int:
    """How many requests of this channel came from this address (or for this subject) since then."""
    statement = select(func.count()).select_from(InboundRequest).where(
        InboundRequest.channel == channel, InboundRequest.received_at >= since
    )
    if address is not None:
        statement = statement.where(InboundRequest.address == address)
    if subject is not None:
        statement = statement.where(InboundRequest.subject == subject)
    return int(session.exec(statement).one())


@dataclass(frozen=True)
class LogLine:
    """One row as 설정 → 연동 shows it (Korean labels, KST)."""

    received_at: str
    channel: str
    verified: str
    status_code: int
    outcome: str
    inquiry_id: int | None
    elapsed_ms: int


def recent(session: Session, limit: int = 50, channel: str | None = None) -> list[LogLine]:
    statement = select(InboundRequest).order_by(col(InboundRequest.id).desc()).limit(limit)
    if channel:
        statement = statement.where(InboundRequest.channel == channel)
    return [
        LogLine(
            received_at=clock.format_kst(row.received_at, with_seconds=True),
            channel=CHANNEL_LABELS.get(row.channel, row.channel),
            verified="확인" if row.verified else "미확인",
            status_code=row.status_code,
            outcome=OUTCOME_LABELS.get(row.outcome, row.outcome),
            inquiry_id=row.inquiry_id,
            elapsed_ms=row.elapsed_ms,
        )
        for row in session.exec(statement).all()
    ]


def prune(session: Session, now: datetime, *, retention: timedelta = RETENTION, batch: int | None = None) -> int:
    """Delete up to `batch` rows older than the retention (oldest first); returns how many.

    In batches so a log swollen by a flood (1,000 help posts a minute) never holds one long write lock
    over the hooks that are answering right now; the job calls this until it returns less than a batch.
    """
    cutoff = now - retention
    oldest = (
        select(InboundRequest.id)
        .where(InboundRequest.received_at < cutoff)
        .order_by(col(InboundRequest.received_at))
        .limit(batch or PRUNE_BATCH)
    )
    result = session.exec(delete(InboundRequest).where(col(InboundRequest.id).in_(oldest)))  # type: ignore[call-overload]
    return result.rowcount
