"""Click → visible feedback in a real browser on a big store (issue 18): median and worst per action.

    .venv/bin/python -m bench.clicks --orders 1000000 --repeat 7        (seeds a 1M-order SQLite store)
    .venv/bin/python -m bench.clicks --path /tmp/big.db --repeat 7      (reuses a store made by bench.seed --keep)

Each action is clicked where it sits (scrolled into view, as a person would) in Debian's chromium at
1440×900, and timed from the click to the toast that answers it being visible. The store is the demo
shop at the given size (its open inquiries, orders and links); the server is started as
scripts/start.sh starts it. Goal (issue 18): median ≤ 0.5 s per main action.

Actions: 메모 남기기, 담당하기 and 환불 (1,000원 of the opened inquiry's customer's payment, through the
sandbox gateway) on 문의, 링크 만들기 on 주문. Beside the wall time, the server's CPU time over each
click (the Streamlit process, /proc): on a machine shared with other work the wall time is mostly
waiting for a core, the CPU time is what the click costs.
"""

from __future__ import annotations

import argparse
import os
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


def _server_pid(base_url: str) -> int | None:
    """The Streamlit process serving base_url (our child: its command line names the port)."""
    port = base_url.rsplit(":", 1)[1]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(words) and port.encode() in words:
            return int(cmdline.parent.name)
    return None


def _cpu(pid: int | None) -> float:
    """CPU seconds (user + system) the server has used so far."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER: dict[str, int | None] = {"pid": None}


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=60_000)


def _timed(page, button, expected: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds from the click to its toast, server CPU seconds over that time)."""
    button.scroll_into_view_if_needed()
    cpu = _cpu(SERVER["pid"])
    started = time.perf_counter()
    button.click()
    page.get_by_test_id("stToast").filter(has_text=expected).last.wait_for(state="visible", timeout=60_000)
    elapsed = time.perf_counter() - started, _cpu(SERVER["pid"]) - cpu
    _settle(page)
    return elapsed


def _open(page, screen: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=screen).click()
    page.get_by_role("heading", name=screen).first.wait_for(timeout=60_000)
    _settle(page)


def _refund(page, i: int) -> tuple[float, float] | None:  # type: ignore[no-untyped-def]
    """1,000원 back on the opened inquiry's customer's payment (None: it has nothing refundable)."""
    opener = page.get_by_text("환불 (전액·부분)", exact=True)
    amount = page.get_by_label("환불 금액 (원)")
    for _attempt in range(3):  # the expander remembers its state across runs: open it once
        if amount.count() and amount.is_visible():
            break
        opener.scroll_into_view_if_needed()
        opener.click()
        _settle(page)
        page.wait_for_timeout(1_000)
    if not (amount.count() and amount.is_visible()):
        return None  # the expander says 환불할 수 있는 결제가 없습니다
    amount.fill("1000")
    amount.press("Enter")
    page.get_by_label("환불 사유").fill(f"부분 환불 {i}")
    page.get_by_label("환불 사유").press("Enter")
    _settle(page)
    confirm = page.get_by_text("1,000원 환불을 확인합니다")
    if not page.locator(".st-key-inq_refund_confirm input").is_checked():
        confirm.click()
        _settle(page)
    return _timed(page, page.get_by_role("button", name="환불하기"), "1,000원 환불을 요청했습니다")


def run(base_url: str, repeat: int) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {
        "문의 › 메모 남기기": [],
        "문의 › 담당하기": [],
        "문의 › 환불": [],
        "주문 › 링크 만들기": [],
    }
    SERVER["pid"] = _server_pid(base_url)
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
        for _ in range(repeat):  # each on the next inquiry not yet this person's (다음 문의 = J)
            claim = page.get_by_role("button", name="담당하기").first
            for _step in range(20):
                page.wait_for_timeout(1_500)  # the opened inquiry's buttons drawn, not the last one's
                if claim.is_enabled():
                    break
                page.get_by_role("button", name="다음 문의").click()
                _settle(page)
            if not claim.is_enabled():
                break
            times["문의 › 담당하기"].append(_timed(page, claim, "담당자로 지정되었습니다"))
        for i in range(repeat):
            refunded = _refund(page, i)
            if refunded is None:
                break
            times["문의 › 환불"].append(refunded)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    print(f"| action | clicks | median | worst | server CPU median |  (store: {path.name}, 1440×900)")
    for name, values in times.items():
        if values:
            walls, cpus = [v[0] for v in values], [v[1] for v in values]
            print(
                f"| {name} | {len(values)} | {statistics.median(walls):.2f} s | {max(walls):.2f} s "
                f"| {statistics.median(cpus) * 1000:.0f} ms |"
            )
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
