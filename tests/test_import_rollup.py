"""The order import ends by bringing the 매출 rollups up to date (issue 19, the "before the first
rollup" state): `run_import` commits the import, then runs `core.analytics.catch_up` (the worker's
`refresh_rollups`), so the 매출 page reads rollups, not the whole imported history, from the first
minute.

- A fresh store after an import has its watermark at now minus ROLLUP_GRACE and every 매출 figure
  (30-day, 400-day and today ranges, lifetime LTV, cohorts, VIPs, repurchase intervals) equals the
  figures read live from the raw rows (the rollups emptied).
- A backdated second import into a rolled-up store is repaired at once: table of instants around
  the watermark and KST midnights.
- A rollup step that fails leaves the import committed and says so (RuntimeError, SQLAlchemyError,
  a failure after some chunks were committed); the worker's job finishes it later.
- A re-import that adds nothing does not touch the rollups.
- The 주문 page's summary and the CLI say what the step did, in Korean; `seed --demo` rolls up too.
SQLite and PostgreSQL (TEST_POSTGRES_URL) for the store-level checks.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from core import analytics, cli, clock
from core.accounts.actor import Actor
from core.analytics import jobs, rollup
from core.payments.order_import import run_import
from tests.analytics_data import SEOUL, forget_rollups
from tests.test_analytics_states import snapshot
from ui.labels import import_rollup_note

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=SEOUL).astimezone(clock.UTC)  # frozen in every test here
WATERMARK = NOW - analytics.ROLLUP_GRACE
HEADER = [
    "상품주문번호", "주문번호", "주문일시", "결제일", "구매자명", "구매자연락처", "주문상태", "판매채널", "상품번호",
    "상품명", "옵션정보", "수량", "상품가격", "최종 상품별 총 주문금액", "면세금액", "결제수단", "환불금액", "환불일시",
    "원주문번호", "수취인명", "배송비 합계",
]
NAMES = ["김민지", "박서준", "이하은", "최도윤", "정수아", "강지우", "조예준", "윤서연", "장시우", "임하준"]


def _stamp(at: datetime) -> str:
    return clock.to_kst(at).strftime("%Y-%m-%d %H:%M:%S")


def history(orders: int, *, seed: int, first: datetime, last: datetime, prefix: str = "H") -> bytes:
    """A 스마트스토어-style export: orders of 1-4 lines over [first, last], 25 customers and 12
    products (so repeat buyers, cohorts and repurchase intervals exist), a coupon line, returned
    lines, partial refunds and later cancellation rows (refunds never after `last`), one order
    canceled before payment."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    span = int((last - first).total_seconds())
    later: list[list[object]] = []
    for n in range(orders):
        number = f"{prefix}{n:06d}"
        at = first + timedelta(seconds=rng.randrange(span + 1))
        k = rng.randrange(25)
        name, phone = f"{NAMES[k % 10]}{k}", f"010-7{k:03d}-{1000 + k:04d}"
        method = rng.choice(["신용카드", "카카오페이", "신용카드"])
        canceled = n == 3
        total = 0
        touched = canceled
        for line in range(rng.choice([1, 1, 2, 3, 4])):
            p = rng.randrange(12)
            quantity, price = rng.choice([1, 1, 2, 3]), 5_000 + 1_700 * p
            amount = quantity * price
            total += amount
            status, refund, refund_at = "구매확정", "", ""
            roll = rng.random()
            back = min(at + timedelta(hours=rng.randint(1, 60)), last)
            if canceled:
                status = "취소완료"
            elif roll < 0.06:
                status, refund, refund_at = "반품완료", str(amount), _stamp(back)
                touched = True
            elif roll < 0.12:
                status, refund, refund_at = "부분환불", str(amount // 3), _stamp(back)
                touched = True
            writer.writerow([f"{number}{line:02d}", number, _stamp(at), _stamp(at), name, phone, status, "스마트스토어",
                             f"P-{p:03d}", f"상품 {p:02d}", "", quantity, price, amount, 0, method, refund, refund_at, "",
                             name, 0])
        if not touched and rng.random() < 0.05:  # a coupon only where no line went back
            off = total // 10
            writer.writerow([f"{number}99", number, _stamp(at), _stamp(at), name, phone, "", "스마트스토어", "",
                             "쿠폰 할인", "", 1, -off, -off, "", method, "", "", "", name, 0])
        if not touched and total > 3_000 and rng.random() < 0.05:
            back = min(at + timedelta(days=rng.randint(1, 9)), last)
            later.append([f"C{number}", "", "", "", name, phone, "취소완료", "스마트스토어", "", "", "", "", "", "", "",
                          method, 3_000, _stamp(back), number, name, 0])
    for row in later:
        writer.writerow(row)
    return out.getvalue().encode("utf-8-sig")


def _figures(engine: Engine) -> dict[str, object]:
    with Session(engine) as session:
        return snapshot(session, clock.today_kst())


def _live_figures(engine: Engine) -> dict[str, object]:
    """The same figures with the rollups emptied: every one read from the raw rows."""
    forget_rollups(engine)
    with Session(engine) as session:
        assert analytics.coverage(session).until is None
    return _figures(engine)


def _sold(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(text("SELECT COUNT(*) FROM orders WHERE paid_at IS NOT NULL")).scalar_one()


def _state(engine: Engine) -> tuple[object, ...] | None:
    with Session(engine) as session:
        return session.execute(
            text("SELECT covered_until_at, refreshed_at FROM analytics_state WHERE id = 1")
        ).one_or_none()


TWO_YEARS = history(240, seed=19, first=NOW - timedelta(days=700), last=NOW - timedelta(minutes=20))


def test_an_import_into_a_fresh_store_is_rolled_up_and_equals_the_live_figures(
    engine: Engine, actors: dict[str, Actor]
) -> None:
    with clock.frozen(NOW):
        result = run_import(engine, actors["owner"], TWO_YEARS, source_name="history.csv")
        assert result.created == 240 and result.refunds_created > 10 and result.rollup_failed is None
        sold = _sold(engine)
        assert result.rollup["rebuilt"] == 1 and result.rolled_up == sold == 239 and result.rollup["chunks"] >= 1
        with Session(engine) as session:
            assert analytics.coverage(session) == analytics.Coverage(WATERMARK, frozenset())
        rolled = _figures(engine)
        # Figures with something in them: the 30-day range, repeat buyers, cohorts, intervals.
        last30 = rolled[f"summary {clock.today_kst() - timedelta(days=29)}..{clock.today_kst()}"]
        assert last30.current.orders > 0  # type: ignore[attr-defined]
        assert rolled["value"].repeat_customers > 5 and len(rolled["cohorts"]) > 3  # type: ignore[attr-defined]
        assert rolled["intervals"]
        assert _live_figures(engine) == rolled


# A second, backdated file into a rolled-up store: each case's own instant, relative to the
# watermark (NOW - 5 min) and to KST midnights; a later cancellation of a first-file order too.
BACKDATED = [
    # (case, instant of the sale, rolled-up day repaired?)
    ("a month back", NOW - timedelta(days=31), True),
    ("a year back, KST midnight", clock.kst_midnight(analytics.kst_day(NOW) - timedelta(days=365)), True),
    ("the last second of a rolled-up day", clock.kst_midnight(analytics.kst_day(NOW)) - timedelta(seconds=1), True),
    ("today's midnight, rolled up up to the watermark", clock.kst_midnight(analytics.kst_day(NOW)), True),
    ("a minute before the watermark", WATERMARK - timedelta(minutes=1), True),
    ("after the watermark (the live tail)", WATERMARK + timedelta(minutes=2), False),
]


@pytest.mark.parametrize(("case", "at", "repaired"), BACKDATED, ids=[c[0] for c in BACKDATED])
def test_a_backdated_second_import_is_repaired_at_once(
    engine: Engine, actors: dict[str, Actor], case: str, at: datetime, repaired: bool
) -> None:
    with clock.frozen(NOW):
        first = run_import(engine, actors["owner"], TWO_YEARS)
        assert first.rollup["rebuilt"] == 1
        row = [f"B{case[:3]}01", "B-1", _stamp(at), _stamp(at), "김민지0", "010-7000-1000", "구매확정", "스마트스토어",
               "P-001", "상품 01", "", 2, 6_700, 13_400, 0, "신용카드", "", "", "", "김민지0", 0]
        cancel = ["CB-1", "", "", "", "박서준1", "010-7001-1001", "취소완료", "스마트스토어", "", "", "", "", "", "", "",
                  "신용카드", 1_000, _stamp(at), "H000000", "박서준1", 0]
        out = io.StringIO()
        csv.writer(out).writerows([HEADER, row, cancel])
    later = NOW + timedelta(hours=1)  # the second file comes an hour later: the watermark moves on too
    with clock.frozen(later):
        second = run_import(engine, actors["owner"], out.getvalue().encode())
        assert (second.created, second.refunds_created, second.rollup_failed) == (1, 1, None)
        assert second.rollup["rebuilt"] == 0
        assert (second.repaired["repaired_days"] >= 1) == repaired
        assert second.rolled_up == (0 if repaired else 1)  # a live-tail sale is rolled forward instead
        with Session(engine) as session:
            assert analytics.coverage(session) == analytics.Coverage(later - analytics.ROLLUP_GRACE, frozenset())
        rolled = _figures(engine)
        assert _live_figures(engine) == rolled


FAILURES = [
    ("the store is busy", OperationalError("UPDATE analytics_state", {}, Exception("database is locked"))),
    ("another worker moved the watermark", RuntimeError("analytics rollup advanced by another worker")),
]


@pytest.mark.parametrize(("case", "error"), FAILURES, ids=[c[0] for c in FAILURES])
def test_a_failed_rollup_keeps_the_import_and_says_so(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch, case: str, error: Exception
) -> None:
    def failing(_engine: Engine, _now: datetime) -> dict[str, int]:
        raise error

    with clock.frozen(NOW):
        monkeypatch.setattr(jobs, "refresh_rollups", failing)
        result = run_import(engine, actors["owner"], TWO_YEARS)
        monkeypatch.undo()
        assert result.created == 240 and result.rollup == {} and result.rolled_up == 0
        assert result.rollup_failed and ("locked" in result.rollup_failed or "another worker" in result.rollup_failed)
        note = import_rollup_note(result.rollup, result.rollup_failed)
        assert "작업기가 곧 마칩니다" in note and result.rollup_failed not in note  # no English on the screen
        assert _sold(engine) == 239 and _state(engine) is None  # committed; read live meanwhile
        live = _figures(engine)
        assert analytics.analytics_rollup_job(engine, NOW)["rebuilt"] == 1  # the worker finishes it
        assert _figures(engine) == live


def test_a_rollup_failing_after_some_chunks_keeps_them_and_the_figures_right(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks committed before the failure stay (the watermark in the middle of the history, the
    rest read live); the worker rolls forward from there."""
    real = rollup.collect_facts
    calls: list[int] = []

    def third_fails(session, start, end):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("analytics rollup advanced by another worker")
        return real(session, start, end)

    with clock.frozen(NOW):
        monkeypatch.setattr(rollup, "REBUILD_CHUNK_ORDERS", 40)
        monkeypatch.setattr(rollup, "collect_facts", third_fails)
        result = run_import(engine, actors["owner"], TWO_YEARS)
        monkeypatch.undo()
        assert result.created == 240 and result.rollup_failed == "analytics rollup advanced by another worker"
        with Session(engine) as session:
            until = analytics.coverage(session).until
        assert until is not None and NOW - timedelta(days=700) < until < WATERMARK
        partial = _figures(engine)
        counts = analytics.analytics_rollup_job(engine, NOW)
        assert counts["rebuilt"] == 0 and 0 < counts["orders"] < 239
        assert _figures(engine) == partial == _live_figures(engine)


def test_a_reimport_that_adds_nothing_leaves_the_rollups_alone(
    engine: Engine, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    with clock.frozen(NOW):
        run_import(engine, actors["owner"], TWO_YEARS)
        before = _state(engine)
        assert before is not None

    def never(_engine: Engine, _now: datetime) -> dict[str, int]:
        raise AssertionError("a re-import that added nothing ran the rollup")

    monkeypatch.setattr(jobs, "refresh_rollups", never)
    with clock.frozen(NOW + timedelta(hours=3)):
        again = run_import(engine, actors["owner"], TWO_YEARS)
    assert (again.created, again.skipped_existing, again.refunds_created) == (0, 240, 0)
    assert again.rollup == {} and again.rollup_failed is None and again.repaired == {}
    assert import_rollup_note(again.rollup, again.rollup_failed) == ""
    assert _state(engine) == before


# ---------------------------------------------------------------- what the screens and the CLI say


def test_the_orders_page_summary_says_the_rollup_in_korean(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from tests.test_import_mapping_ui import _upload
    from tests.ui_helpers import open_app

    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/orders.py")
    _upload(at, TWO_YEARS, "history.csv")
    at.button(key="ord_import_run").click().run()
    assert not at.exception, at.exception
    toasts = [t.value for t in at.toast]
    assert any("주문 240건" in t and "매출 집계 완료: 239건" in t for t in toasts), toasts


@pytest.mark.parametrize(
    ("counts", "failed", "said"),
    [
        ({"rebuilt": 1, "orders": 33_070, "chunks": 7}, None, " · 매출 집계 완료: 33,070건"),
        ({"rebuilt": 0, "orders": 0, "chunks": 0, "repaired_days": 2}, None, " · 매출 집계 완료: 0건"),
        ({}, None, ""),
        ({}, "(sqlite3.OperationalError) database is locked", "작업기가 곧 마칩니다"),
    ],
)
def test_the_rollup_note(counts: dict[str, int], failed: str | None, said: str) -> None:
    note = import_rollup_note(counts, failed)
    assert said in note if said else note == ""
    assert "sqlite3" not in note


def test_the_cli_import_and_seed_say_what_the_rollup_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    file = tmp_path / "history.csv"
    file.write_bytes(TWO_YEARS)
    with clock.frozen(NOW):
        assert cli.main(["import", "orders", str(file)]) == 0
    out = capsys.readouterr().out
    assert "매출 집계 완료 (sales rollup): 주문 239건" in out and "처음부터" in out, out

    seeded = f"sqlite:///{tmp_path / 'seed.db'}"
    monkeypatch.setenv("DATABASE_URL", seeded)
    assert cli.main(["seed", "--demo", "--customers", "40", "--orders", "300", "--seed", "5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "매출 집계 완료 (sales rollup)" in out, out
    from core.db import make_engine

    engine = make_engine(seeded)
    try:
        with Session(engine) as session:
            until = analytics.coverage(session).until
        assert until is not None and until > clock.now() - timedelta(minutes=10)
        rolled = _figures(engine)
        assert _live_figures(engine) == rolled
    finally:
        engine.dispose()
