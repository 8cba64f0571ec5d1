"""The SLA report: results of the inquiries created in a period (overall, by type, staff, week),
the misses, and the CSV the page offers for download."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core import clock
from core.models import Inquiry, StaffUser
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.safe_text import csv_text


@dataclass
class Bucket:
    total: int = 0
    within: int = 0
    first_response_seconds: list[float] = field(default_factory=list)
    resolution_seconds: list[float] = field(default_factory=list)

    @property
    def share_within(self) -> float | None:
        return None if self.total == 0 else self.within / self.total

    @property
    def median_first_response(self) -> float | None:
        return statistics.median(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def median_resolution(self) -> float | None:
        return statistics.median(self.resolution_seconds) if self.resolution_seconds else None


@dataclass(frozen=True)
class Miss:
    inquiry_id: int
    type: str
    assignee: str
    target: str
    due_at: datetime
    done_at: datetime | None  # None: still open (breached)
    late_seconds: float


@dataclass
class Report:
    start: datetime
    end: datetime
    overall: Bucket
    by_type: dict[str, Bucket]
    by_staff: dict[str, Bucket]
    by_week: dict[str, Bucket]
    misses: list[Miss]


def report(session: Session, start: datetime, end: datetime, now: datetime | None = None) -> Report:
    """SLA results of inquiries created in [start, end), from the cached deadlines.

    The cached deadlines of a stopped target are fixed by its timeline, so "answered after the
    cached deadline" is exactly the engine's miss; an open target past its deadline counts as a miss
    too (breached, not yet answered).
    """
    now = now or clock.now()
    rows = session.exec(
        select(
            Inquiry.id,
            Inquiry.type,
            Inquiry.assignee_id,
            Inquiry.created_at,
            Inquiry.first_response_at,
            Inquiry.resolved_at,
            Inquiry.first_response_due_at,
            Inquiry.resolution_due_at,
        ).where(Inquiry.created_at >= start, Inquiry.created_at < end)
    ).all()
    names = {u.id: u.display_name for u in session.exec(select(StaffUser)).all()}
    result = Report(start, end, Bucket(), defaultdict(Bucket), defaultdict(Bucket), defaultdict(Bucket), [])
    for (
        inquiry_id,
        inquiry_type,
        assignee_id,
        created,
        first_at,
        resolved_at,
        first_due,
        resolution_due,
    ) in rows:
        created = clock.as_utc(created)
        assignee = names.get(assignee_id, "미배정") if assignee_id else "미배정"
        iso = clock.to_kst(created).isocalendar()
        week = f"{iso.year}-W{iso.week:02d}"
        misses = [
            miss
            for miss in (
                _miss(inquiry_id, inquiry_type, assignee, "first_response", first_due, first_at, now),
                _miss(inquiry_id, inquiry_type, assignee, "resolution", resolution_due, resolved_at, now),
            )
            if miss is not None
        ]
        result.misses.extend(misses)
        for bucket in (
            result.overall,
            result.by_type[inquiry_type],
            result.by_staff[assignee],
            result.by_week[week],
        ):
            bucket.total += 1
            bucket.within += 0 if misses else 1
            if first_at is not None:
                bucket.first_response_seconds.append((clock.as_utc(first_at) - created).total_seconds())
            if resolved_at is not None:
                bucket.resolution_seconds.append((clock.as_utc(resolved_at) - created).total_seconds())
    result.misses.sort(key=lambda m: -m.late_seconds)
    return result


def _miss(
    inquiry_id: int,
    inquiry_type: str,
    assignee: str,
    target: str,
    due: datetime | None,
    done: datetime | None,
    now: datetime,
) -> Miss | None:
    if due is None:
        return None
    due = clock.as_utc(due)
    moment = clock.as_utc(done) if done is not None else now
    if moment <= due:
        return None
    return Miss(
        inquiry_id,
        inquiry_type,
        assignee,
        target,
        due,
        clock.as_utc(done) if done else None,
        (moment - due).total_seconds(),
    )


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def report_csv(data: Report) -> str:
    """The report as CSV text (UTF-8; the page adds a BOM for Excel); names as text, never formulas."""
    rows: list[list[Any]] = []
    rows.append(
        [
            "구분",
            "항목",
            "문의 수",
            "목표 내 처리",
            "목표 내 비율(%)",
            "첫 응답 중앙값(분)",
            "해결 중앙값(분)",
        ]
    )
    groups = [
        ("전체", {"전체": data.overall}),
        ("유형", data.by_type),
        ("담당자", data.by_staff),
        ("주", data.by_week),
    ]
    for group, buckets in groups:
        for key in sorted(buckets):
            bucket = buckets[key]
            label = INQUIRY_TYPE_LABELS.get(key, key) if group == "유형" else key
            share = "" if bucket.share_within is None else f"{bucket.share_within * 100:.1f}"
            rows.append(
                [
                    group,
                    label,
                    bucket.total,
                    bucket.within,
                    share,
                    _minutes(bucket.median_first_response),
                    _minutes(bucket.median_resolution),
                ]
            )
    rows.append([])
    rows.append(["미준수 문의", "유형", "담당자", "목표", "기한(KST)", "처리(KST)", "지연(분)"])
    for miss in data.misses:
        rows.append(
            [
                miss.inquiry_id,
                INQUIRY_TYPE_LABELS.get(miss.type, miss.type),
                miss.assignee,
                "첫 응답" if miss.target == "first_response" else "해결",
                clock.format_kst(miss.due_at),
                clock.format_kst(miss.done_at) if miss.done_at else "미처리",
                _minutes(miss.late_seconds),
            ]
        )
    return csv_text(None, rows)
