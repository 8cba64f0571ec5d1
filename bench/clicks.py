"""Click → visible feedback in a real browser on a big store (issue 18): median and worst per action.

    .venv/bin/python -m bench.clicks --orders 1000000 --repeat 7        (seeds a 1M-order SQLite store)
    .venv/bin/python -m bench.clicks --path /tmp/big.db --repeat 7      (reuses a store made by bench.seed --keep)

Each action is clicked where it sits (scrolled into view, as a person would) in Debian's chromium at
1440×900, and timed from the click to the toast that answers it being visible. The store is the demo
shop at the given size (its open inquiries, orders and links); the server is started as
scripts/start.sh starts it. Goal (issue 18): median ≤ 0.5 s per main action.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.db import make_engine, upgrade  # noqa: E402
from core.demo.seed import DEMO_PASSWORD, seed_demo  # noqa: E402
from tests.browser import browser_page, login, streamlit_server  # noqa: E402

SIZE = (1440, 900)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=60_000)


def _timed(page, button, expected: str) -> float:  # type: ignore[no-untyped-def]
    button.scroll_into_view_if_needed()
    started = time.perf_counter()
    button.click()
    page.get_by_test_id("stToast").filter(has_text=expected).last.wait_for(state="visible", timeout=60_000)
    elapsed = time.perf_counter() - started
    _settle(page)
    return elapsed


def _open(page, screen: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=screen).click()
    page.get_by_role("heading", name=screen).first.wait_for(timeout=60_000)
    _settle(page)


def run(base_url: str, repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"문의 › 메모 남기기": [], "주문 › 링크 만들기": [], "문의 › 담당하기": []}
    with browser_page(*SIZE) as page:
        login(page, base_url, "cs", DEMO_PASSWORD)
        _open(page, "문의")
        for i in range(repeat):
            note = page.get_by_label("내부 메모 (고객에게 보이지 않음)")
            note.scroll_into_view_if_needed()
            note.fill(f"카드사 확인 필요 {i}")
            times["문의 › 메모 남기기"].append(
                _timed(page, page.get_by_role("button", name="메모 남기기"), "메모를 남겼습니다")
            )
        claim = page.get_by_role("button", name="담당하기")
        if claim.count():
            times["문의 › 담당하기"].append(_timed(page, claim.first, "담당자로 지정되었습니다"))
        _open(page, "주문")
        for i in range(repeat):
            page.get_by_role("tab", name="결제 링크").click()
            page.get_by_label("상품명 (맞춤 견적)").fill(f"맞춤 견적 케이크 {i}")
            page.get_by_label("금액(원)", exact=True).fill("39000")
            times["주문 › 링크 만들기"].append(
                _timed(page, page.get_by_role("button", name="링크 만들기"), "결제 링크를 만들었습니다")
            )
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--path", type=Path, default=None, help="an existing seeded SQLite store to reuse")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    path = args.path
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="channeldesk-bench-clicks-")) / "bench.db"
    url = f"sqlite:///{path}"
    if args.path is None or not path.exists():
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        seed_demo(engine, customers=args.customers, orders=args.orders)
        engine.dispose()
        print(f"seeded {args.orders:,} orders in {time.perf_counter() - started:.0f} s at {path}")
    with streamlit_server(url) as base_url:
        times = run(base_url, args.repeat)
    print(f"| action | clicks | median | worst |  (store: {path.name}, 1440×900)")
    for name, values in times.items():
        if values:
            print(f"| {name} | {len(values)} | {statistics.median(values):.2f} s | {max(values):.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
