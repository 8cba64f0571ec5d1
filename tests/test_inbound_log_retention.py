"""The inbound log keeps a month: every check it serves reads at most a day back (Toss duplicates),
so a flood of 1,000 help posts a minute cannot fill the disk, and the hooks answering now keep the
rows their duplicate and throttle checks need."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from core import clock
from core.inquiries import inbound_log
from core.inquiries import jobs as inquiry_jobs
from core.jobs import JOBS
from core.models import InboundRequest
from tests.conftest import TEST_NOW
from ui.labels import JOB_LABELS

AGES = [  # age of the row at the prune, kept?
    (timedelta(days=30, seconds=1), False),
    (timedelta(days=30), True),  # exactly at the retention: still within it
    (timedelta(days=29, hours=23), True),
    (timedelta(days=1), True),  # Toss's duplicate window must survive
    (timedelta(minutes=1), True),  # the throttle's window must survive
    (timedelta(days=400), False),
]


def _add(session: Session, age: timedelta, channel: str = "help") -> int:
    with clock.frozen(TEST_NOW - age):
        row = inbound_log.record(session, channel=channel, status_code=200, outcome="created", verified=True,
                                 address="203.0.113.7", digest=f"d{age.total_seconds()}")
    return row.id


@pytest.mark.parametrize(("age", "kept"), AGES)
def test_a_row_is_kept_exactly_as_long_as_the_retention(engine, age, kept):
    with Session(engine) as session:
        row_id = _add(session, age)
        session.commit()
    assert inquiry_jobs.inbound_log_prune(engine, TEST_NOW) == {"deleted": 0 if kept else 1}
    with Session(engine) as session:
        assert (session.get(InboundRequest, row_id) is not None) is kept


def test_a_flood_is_pruned_in_batches_until_nothing_old_is_left(engine, monkeypatch):
    monkeypatch.setattr(inbound_log, "PRUNE_BATCH", 3)
    with Session(engine) as session:
        for i in range(7):
            _add(session, timedelta(days=31, minutes=i))
        recent = [_add(session, timedelta(minutes=i)) for i in range(2)]
        session.commit()
    assert inquiry_jobs.inbound_log_prune(engine, TEST_NOW) == {"deleted": 7}
    with Session(engine) as session:
        left = session.exec(select(InboundRequest.id)).all()
        assert sorted(left) == sorted(recent)
        # The throttle still sees the last minute's posts from that address.
        with clock.frozen(TEST_NOW):
            assert inbound_log.count_since(session, "help", since=TEST_NOW - timedelta(minutes=5),
                                           address="203.0.113.7") == 2


def test_a_capped_run_leaves_the_rest_for_the_next_tick(sqlite_engine, monkeypatch):
    monkeypatch.setattr(inbound_log, "PRUNE_BATCH", 2)
    with Session(sqlite_engine) as session:
        for i in range(5):
            _add(session, timedelta(days=40, minutes=i))
        session.commit()
    assert inquiry_jobs.inbound_log_prune(sqlite_engine, TEST_NOW, max_batches=2) == {"deleted": 4}
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(InboundRequest)).one() == 1


def test_the_prune_runs_in_the_worker_with_a_korean_name():
    spec = next(job for job in JOBS if job.id == "inbound_log_prune")
    assert spec.target == "core.inquiries.jobs:inbound_log_prune"
    assert JOB_LABELS["inbound_log_prune"] == "수신 기록 정리"
