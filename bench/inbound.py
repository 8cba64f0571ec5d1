"""The chatbot skill under load: POST /hooks/kakao/skill at a fixed rate against a live server.

Starts the product the way scripts/start.sh does (`streamlit run server.py` and, unless --no-worker,
`python -m core.worker`) on a fresh SQLite store (or BENCH_DATABASE_URL), sends --rate requests a
second for --seconds (open loop: each request leaves on its schedule, whether or not earlier ones
have answered), and prints p50/p95/p99/max of the answer time, then checks the store: every
answered request is exactly one inquiry event (created or customer_message), none lost, none twice.

    .venv/bin/python bench/inbound.py                      # 20 req/s for 60 s (issue 17: p99 ≤ 500 ms)
    .venv/bin/python bench/inbound.py --rate 50 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, col, func, select  # noqa: E402

from core.accounts.actor import Actor  # noqa: E402
from core.db import make_engine, upgrade  # noqa: E402
from core.inquiries import channels  # noqa: E402
from core.models import InboundRequest, Inquiry, InquiryEvent, Role  # noqa: E402

UTTERANCES = ["결제 오류가 났어요", "환불해 주세요", "영수증 보내주세요", "결제가 두 번 됐어요", "배송 언제 와요?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(user: int, n: int) -> dict[str, object]:
    text = f"{UTTERANCES[n % len(UTTERANCES)]} ({n}번째 메시지)"
    return {
        "intent": {"id": "i", "name": "문의"},
        "userRequest": {"timezone": "Asia/Seoul", "utterance": text, "lang": None,
                        "block": {"id": "b", "name": "문의"},
                        "user": {"id": f"bot-{user}", "type": "botUserKey",
                                 "properties": {"plusfriendUserKey": f"pf-bench-{user}", "isFriend": True}}},
        "bot": {"id": "bot", "name": "bench"},
        "action": {"id": "a", "name": "a", "params": {}, "detailParams": {}, "clientExtra": None},
    }


def start(url: str, port: int, worker: bool, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": url}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "server.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=(log_dir / "server.log").open("wb"), stderr=subprocess.STDOUT)]
    if worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "core.worker"], cwd=ROOT, env=env,
                                      stdout=(log_dir / "worker.log").open("wb"), stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                return procs
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start in 90 s (see server.log)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=300, help="distinct channel users writing")
    parser.add_argument("--no-worker", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_inbound_"))
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'channeldesk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        secret = channels.new_skill_secret(session, Actor(None, "bench", Role.OWNER))
        session.commit()
    port = free_port()
    procs = start(url, port, not args.no_worker, tmp)
    target = f"http://127.0.0.1:{port}{channels.SKILL_PATH}"
    total = int(args.rate * args.seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    late_answers = [0]
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=64))

    def send(i: int, at: float) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        late = False
        try:
            response = client.post(target, json=payload(i % args.users, i), headers={channels.SECRET_HEADER: secret})
            status = response.status_code
            late = "접수하고 있어요" in response.text  # answered before the filing finished (ANSWER_WITHIN)
        except httpx.HTTPError:
            status = 0
        took = time.perf_counter() - began
        with lock:
            latencies.append(took)
            statuses[status] = statuses.get(status, 0) + 1
            late_answers[0] += late

    try:
        httpx.post(target, json=payload(10**6, 0), headers={channels.SECRET_HEADER: secret}, timeout=30)  # warm up
        t0 = time.perf_counter() + 0.5
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i in range(total):
                pool.submit(send, i, t0 + i / args.rate)
        wall = time.perf_counter() - t0
        # A request answered early (the store was busy past ANSWER_WITHIN) is still being filed:
        # wait for it before stopping the server, as a graceful stop would.
        settle_until = time.monotonic() + 30
        while time.monotonic() < settle_until:
            with Session(engine) as session:
                if session.exec(select(func.count()).select_from(InboundRequest)).one() >= total + 1:
                    break
            time.sleep(0.5)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(round(p / 100 * len(ms) + 0.5)) - 1)]

    with Session(engine) as session:
        events = session.exec(
            select(func.count()).select_from(InquiryEvent).where(col(InquiryEvent.kind).in_(("created", "customer_message")))
        ).one()
        inquiries = session.exec(select(func.count()).select_from(Inquiry)).one()
        logged = session.exec(select(func.count()).select_from(InboundRequest)).one()
    answered = statuses.get(200, 0)
    print(f"skill endpoint, {args.rate:g} req/s for {args.seconds:g} s ({total} requests, {args.users} users, "
          f"worker {'on' if not args.no_worker else 'off'}, {url.split(':')[0]}), sent over {wall:.1f} s")
    print(f"  answer time ms: p50 {statistics.median(ms):.1f}  p95 {pct(95):.1f}  p99 {pct(99):.1f}  "
          f"max {ms[-1]:.1f}   statuses {dict(sorted(statuses.items()))}, answered before filed: {late_answers[0]}")
    print(f"  store: {events - 1} inquiry events for {answered - 0} answered requests (warm-up excluded), "
          f"{inquiries - 1} inquiries, {logged - 1} log rows")
    ok = events - 1 == answered and logged - 1 == answered
    print(f"  every request exactly one inquiry event: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
