"""Many real browser sessions on the 문의 page with live countdowns (issue 9, faults and load).

The real Streamlit server (`streamlit run server.py`, as scripts/start.sh) on a SQLite store with open inquiries; one
Debian chromium (Playwright) with one context per session, each logged in as its own cs user and
left on 문의, whose queue fragment reruns every second. While they are open we sample the
Streamlit process's CPU time and resident memory from /proc, check that every session's
countdown caption keeps changing, and in one session time how long a click takes to show its
effect (open an inquiry by number: its heading appears).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import Session

from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.inquiries import service as inquiries
from core.models import Role
from tests import fault_support as fs
from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Twenty people have twenty visible windows: keep chromium from throttling the sessions it thinks
# are in the background (their once-a-second countdown timers would otherwise stall).
SESSION_ARGS = [*CHROMIUM_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows"]


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its threads (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


@dataclass
class BrowserLoad:
    sessions: int = 0
    open_seconds: list[float] = field(default_factory=list)  # login + 문의 per session
    idle_cpu_percent: float = 0.0
    idle_rss_mb: float = 0.0
    cpu_percent: float = 0.0  # streamlit process while all sessions are open
    peak_rss_mb: float = 0.0
    click_seconds: list[float] = field(default_factory=list)
    ticking: int = 0  # sessions whose countdown caption changed during the window
    window: float = 0.0
    errors: list[str] = field(default_factory=list)


def prepare(path: str, sessions: int, open_inquiries: int = 40) -> list[int]:
    engine = fs.fresh_store(f"sqlite:///{path}")
    fs.seed(engine, messages=0, charges=0)
    ids = []
    with Session(engine) as session:
        actors = []
        for i in range(sessions):
            user = create_user(session, None, username=f"cs_{i}", display_name=f"상담 {i}",
                               role=Role.CS.value, password="password-123")
            actors.append(Actor(id=user.id, name=user.display_name, role=Role.CS))  # type: ignore[arg-type]
        session.commit()
        for i in range(open_inquiries):
            inquiry = inquiries.create_inquiry(
                session, actors[0], customer_id=1 + i, body=f"문의 {i}: 배송이 늦어요, 언제 받을 수 있나요?"
            )
            session.commit()
            ids.append(inquiry.id)
    engine.dispose()
    return ids  # type: ignore[return-value]


def _start_server(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(fs.ROOT / "server.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=fs.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("streamlit exited")
        time.sleep(0.2)  # polling a starting server
    process.kill()
    raise RuntimeError("streamlit did not become healthy in 120 s")


def _caption(page: Any) -> str:
    caption = page.get_by_text("건 표시 ·", exact=False).first
    return caption.inner_text(timeout=10_000)


def _open_session(browser: Any, base_url: str, index: int) -> Any:
    context = browser.new_context(viewport={"width": 1300, "height": 900}, locale="ko-KR", timezone_id="Asia/Seoul")
    context.set_default_timeout(180_000)  # a loaded 2-core box: twenty sessions start slowly
    context.set_default_navigation_timeout(180_000)
    page = context.new_page()
    page.goto(base_url)
    page.get_by_text("ChannelDesk 로그인").wait_for(timeout=120_000)
    page.get_by_label("아이디").fill(f"cs_{index}")
    page.get_by_label("비밀번호").fill("password-123")
    page.get_by_role("button", name="로그인").click()
    page.get_by_role("button", name="로그아웃").wait_for(timeout=120_000)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="문의").click()
    page.get_by_text("열린 문의", exact=False).last.wait_for(timeout=120_000)
    return page


def _sample(pid: int, seconds: float) -> tuple[float, float]:
    """CPU percent of one core and peak RSS (MB) of `pid` over `seconds`."""
    cpu0, wall0, peak = process_cpu_seconds(pid), time.perf_counter(), process_rss_mb(pid)
    end = wall0 + seconds
    while time.perf_counter() < end:
        time.sleep(min(0.5, max(0.0, end - time.perf_counter())))
        peak = max(peak, process_rss_mb(pid))
    return 100 * (process_cpu_seconds(pid) - cpu0) / (time.perf_counter() - wall0), peak


def run(sessions: int = 20, seconds: float = 60.0, clicks: int = 5) -> BrowserLoad:
    from playwright.sync_api import sync_playwright

    load = BrowserLoad(sessions=sessions)
    asked = sessions
    folder = tempfile.mkdtemp(prefix="fault-browsers-")
    url = f"sqlite:///{folder}/store.db"
    inquiry_ids = prepare(f"{folder}/store.db", sessions)
    server, base_url = _start_server(url)
    try:
        load.idle_cpu_percent, load.idle_rss_mb = _sample(server.pid, 3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=SESSION_ARGS, headless=True)
            try:
                pages = []
                for index in range(sessions):
                    started = time.perf_counter()
                    try:
                        pages.append(_open_session(browser, base_url, index))
                    except Exception as exc:  # noqa: BLE001 - a session that cannot open is the finding
                        load.errors.append(f"session {index + 1} did not open: {type(exc).__name__}")
                        break
                    load.open_seconds.append(time.perf_counter() - started)
                    cpu_now = process_cpu_seconds(server.pid)
                    print(f"  session {index + 1} open in {load.open_seconds[-1]:.1f} s; streamlit CPU so far "
                          f"{cpu_now:.0f} s, RSS {process_rss_mb(server.pid):.0f} MB; {fs.load_average()}", flush=True)
                load.sessions = len(pages)
                if not pages:
                    return load
                before = [_caption(page) for page in pages]
                window_started = time.perf_counter()
                # The window: CPU and memory sampled between clicks in session 0.
                per_slice = seconds / (clicks + 1)
                cpu_samples, peak = [], 0.0
                probe = pages[0]
                for n in range(clicks + 1):
                    cpu, rss = _sample(server.pid, per_slice)
                    cpu_samples.append(cpu)
                    peak = max(peak, rss)
                    if n == clicks:
                        break
                    target = inquiry_ids[(n * 7 + 3) % len(inquiry_ids)]
                    field_ = probe.get_by_label("번호로 열기 (해결된 문의 포함)")
                    field_.fill(str(target))
                    started = time.perf_counter()
                    field_.press("Enter")
                    probe.get_by_role("heading", name=f"{target}번 문의").first.wait_for(timeout=60_000)
                    load.click_seconds.append(time.perf_counter() - started)
                load.window = time.perf_counter() - window_started
                load.cpu_percent, load.peak_rss_mb = statistics.fmean(cpu_samples), peak
                after = [_caption(page) for page in pages]
                load.ticking = sum(1 for b, a in zip(before, after, strict=True) if a != b)
                if load.sessions < asked:
                    load.errors.append(f"only {load.sessions} of {asked} sessions opened")
                for page in pages:
                    if page.get_by_test_id("stException").count():
                        load.errors.append(page.get_by_test_id("stException").first.inner_text()[:200])
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    return load


def report(load: BrowserLoad, max_click_seconds: float = 2.0) -> bool:
    clicks = sorted(load.click_seconds)
    print(
        f"[browsers] {load.sessions} chromium sessions on 문의 (live countdowns), {load.window:.0f} s window: "
        f"streamlit CPU {load.cpu_percent:.0f}% of one core (idle {load.idle_cpu_percent:.0f}%), "
        f"RSS peak {load.peak_rss_mb:.0f} MB (idle {load.idle_rss_mb:.0f} MB); {fs.load_average()}"
    )
    print(
        f"  session open (login + 문의) median {statistics.median(load.open_seconds or [0]):.1f} s, "
        f"max {max(load.open_seconds, default=0):.1f} s; click→effect in session 0: "
        f"{', '.join(f'{c:.2f}' for c in load.click_seconds)} s (median {statistics.median(clicks or [0]):.2f} s); "
        f"countdowns ticking in {load.ticking}/{load.sessions} sessions; page errors {load.errors or 0}"
    )
    ok = (
        load.ticking == load.sessions
        and not load.errors
        and bool(clicks)
        and statistics.median(clicks) <= max_click_seconds
    )
    print(f"  {'PASS' if ok else 'FAIL'}  every countdown live, no page error, click→effect median ≤ {max_click_seconds} s")
    return ok


def run_sessions(sessions: int, seconds: float) -> bool:
    return report(run(sessions, seconds))
