"""Real-browser helpers: start the real Streamlit server and drive Debian's chromium with Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamlit run server.py` (as scripts/start.sh) on a free port; yields its base URL; stops it afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, **(extra_env or {})}
    # The server's log goes to a file: a pipe nobody reads fills up (64 KB) and then blocks the server.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"server_{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "server.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited: {log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)  # polling a starting server, not waiting on a clock
        else:
            raise RuntimeError("streamlit did not become healthy in 60 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def staffed_server(directory: Path) -> Iterator[str]:
    """A fresh store in `directory` with the suite's staff (make_actors), served as streamlit_server;
    yields its base URL. For module fixtures that need the logins and nothing else."""
    from core.db import make_engine, upgrade
    from tests.conftest import make_actors

    require_chromium()
    url = f"sqlite:///{directory / 'channeldesk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    make_actors(engine)
    engine.dispose()
    with streamlit_server(url) as base_url:
        yield base_url


# A phone-sized window is a phone's browser: its User-Agent says so, as a real one does (the 문의 queue
# draws cards for it, ui/device.py). Samsung Galaxy S23, Chrome 131.
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; SM-S911N) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36")
PHONE_MAX_WIDTH = 640


def _agent(width: int) -> dict[str, str]:
    return {"user_agent": PHONE_UA} if width <= PHONE_MAX_WIDTH else {}


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, locale="ko-KR",
                                    timezone_id="Asia/Seoul", **_agent(width))
            yield page
        finally:
            browser.close()


@contextmanager
def browser_context(width: int = 1400, height: int = 900) -> Iterator[object]:
    """One browser profile (shared cookies) that can open several tabs: context.new_page()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}, locale="ko-KR",
                                      timezone_id="Asia/Seoul", **_agent(width))
        finally:
            browser.close()


def login(page, base_url: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url)
    page.get_by_text("ChannelDesk 로그인").wait_for(timeout=30_000)
    page.get_by_label("아이디").fill(username)
    page.get_by_label("비밀번호").fill(password)
    page.get_by_role("button", name="로그인").click()
    page.get_by_role("button", name="로그아웃").wait_for(timeout=30_000)


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
