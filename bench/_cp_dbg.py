"""Customer pages (issue 21): first visit of /pay on a phone over Fast 3G, /go and /pay server time.

    .venv/bin/python bench/customer_pages.py [--path STORE.db | --orders N] [--visits 5] [--rate 50 --seconds 20]
        [--desk-sessions 20]

Starts the real server (`streamlit run server.py`, as scripts/start.sh) on a SQLite store: an
existing one (--path, e.g. `python -m bench.seed --orders 1000000 --path /tmp/store.db --keep`) or a
fresh demo store of --orders orders. Adds payment links and a campaign, then measures:

- first visit of /pay in Debian's chromium at 390x844 with KakaoTalk's in-app user agent, a fresh
  profile per visit (no cache), with Chrome's Fast 3G profile set through CDP
  (Network.emulateNetworkConditions: 1.6 Mbit/s down, 750 kbit/s up, 150 ms latency): the time
  from the navigation to the payment form being visible, and the bytes transferred (CDP
  encodedDataLength over every response of the visit);
- /go server time: sequential GETs on localhost (the redirect answer, not following it);
- /pay server time at a fixed arrival rate (open loop, --rate requests/s for --seconds), each
  request a first or repeat visit of one of the links: p50/p95/p99/max.

With --desk-sessions N, N staff sessions have 문의 open during the /pay load: Streamlit websocket
sessions as the browser opens them (the session cookie, a full run of 문의, then the queue fragment's
auto-rerun each second, sent as the browser's timer sends it), so the server does the work of N open
desks (the live queue query, signals, countdown deltas) without N chromium renderers on this machine.
Each session counts the fragment runs answered; the line says how many ticks the desks got.

The same first visit of /help (the inquiry form) follows.

Targets: form visible <= 1.5 s (/pay and /help), <= 60 KB, /go <= 100 ms, /pay p99 <= 50 ms at 50 req/s (with 20 desks).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlmodel import select  # noqa: E402

from core import campaigns, clock  # noqa: E402
from core.accounts.actor import Actor  # noqa: E402
from core.db import make_engine, session_scope, upgrade  # noqa: E402
from core.models import (  # noqa: E402
    CampaignRecipient,  # noqa: E402
    Customer,
    Role,
)
from core.payments.links import create_payment_link  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402
from tests.web.helpers import KAKAOTALK_UA  # noqa: E402

DESK_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
SLOW: list = []
T0 = [0.0]
FAST_3G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 750e3 / 8}


def _store(args: argparse.Namespace) -> tuple[str, list[str], int, int]:
    """The store's URL, link codes, the campaign id and the number of orders in the store."""
    if args.path:
        path = Path(args.path)
    else:
        from core.demo.seed import seed_demo

        path = Path(tempfile.mkdtemp(prefix="channeldesk-bench-pages-")) / "store.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        seed_demo(engine, customers=max(100, args.orders // 10), orders=args.orders, seed=2026, now=clock.now())
        engine.dispose()
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    actor = Actor(None, "bench", Role.CS)
    codes = []
    with session_scope(engine) as session:
        for i in range(args.links):
            codes.append(create_payment_link(session, actor, item_name=f"수분 크림 세트 {i}", amount=39_000,
                                             memo="오늘 주문하면 내일 도착").code)
    with session_scope(engine) as session:  # a second run on the same store reuses its bench customer
        if session.exec(select(Customer).where(Customer.public_id == "benchpub")).first() is None:
            session.add(Customer(name="벤치 고객", phone="010-5555-0000", public_id="benchpub",
                                 ad_consent_at=clock.now(), night_ad_consent_at=clock.now()))
    staff = Actor(None, "bench", Role.STAFF)
    with session_scope(engine) as session:
        cid = campaigns.create_campaign(session, staff, name="벤치", bodies=["#{링크}"],
                                        rules={"include": [{"type": "channel_friend"}]},
                                        options={"link_url": "https://shop.example/spring"}).id
        # The bench customer got this campaign (as a send records it): /go answers only a sent link.
        bench = session.exec(select(Customer).where(Customer.public_id == "benchpub")).one()
        session.add(CampaignRecipient(campaign_id=cid, customer_id=bench.id, group="test", variant="A"))
    from sqlalchemy import text

    with engine.connect() as connection:
        orders = connection.execute(text("SELECT count(*) FROM orders")).scalar_one()
    engine.dispose()
    return url, codes, int(cid), int(orders)  # type: ignore[arg-type]


def first_visits(base: str, paths: list[str], form: str = "#pay-form") -> list[tuple[float, int, int]]:
    """(seconds to the form, bytes transferred, requests) per first visit over Fast 3G."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for path in paths:
                context = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=KAKAOTALK_UA,
                                              is_mobile=True, has_touch=True, device_scale_factor=3,
                                              locale="ko-KR", timezone_id="Asia/Seoul")
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                cdp.send("Network.emulateNetworkConditions", FAST_3G)
                sizes: dict[str, float] = {}
                cdp.on("Network.loadingFinished", lambda e, sizes=sizes: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
                started = time.perf_counter()
                page.goto(f"{base}{path}", wait_until="commit")
                page.locator(form).wait_for(state="visible", timeout=60_000)
                elapsed = time.perf_counter() - started
                page.wait_for_load_state("load")
                results.append((elapsed, int(sum(sizes.values())), len(sizes)))
                context.close()
        finally:
            browser.close()
    return results


def server_cpu() -> float:
    """CPU seconds used so far by the server (our child process): a figure the machine's load does not inflate."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # ppid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def sequential(base: str, paths: list[str], status: int) -> tuple[list[float], float]:
    """Wall time per request, one after the other, and the server's CPU per request."""
    times = []
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30, headers={"User-Agent": KAKAOTALK_UA}) as client:
        client.get(paths[0])  # warm the connection
        cpu = server_cpu()
        for path in paths:
            started = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - started)
            assert answer.status_code == status, answer.status_code
        cpu = (server_cpu() - cpu) / len(paths)
    return times, cpu


async def _paced(base: str, codes: list[str], rate: float, seconds: float) -> list[float]:
    """Open loop: request i goes out at i/rate seconds, whether or not earlier ones have answered."""
    times: list[float] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits, headers={"User-Agent": KAKAOTALK_UA}) as client:
        async def one(i: int) -> None:
            started = time.perf_counter()
            try:
                answer = await client.get(f"/pay?link={codes[i % len(codes)]}")
            except httpx.TimeoutException:  # not answered in 30 s: counted as that, the run goes on
                times.append(float("inf"))
                return
            times.append(time.perf_counter() - started)
            SLOW.append((i, round((time.perf_counter() - started) * 1000), round(started - T0[0], 3)))
            assert answer.status_code == 200, answer.status_code

        await asyncio.gather(*(one(i) for i in range(min(20, len(codes)))))  # warm up connections
        times.clear(); SLOW.clear()
        start = time.perf_counter(); T0[0] = start
        tasks = []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return times


async def _desk(base: str, token: str, ticks: list[int], index: int, stop: asyncio.Event, aligned: bool) -> None:
    """One staff member with 문의 open: the page's full run, then its live fragment every interval."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from core.accounts.auth import SESSION_COOKIE

    host = base.removeprefix("http://")
    # A staff member's computer browser (as a real desk sends it: the server draws the table for it).
    headers = {"Cookie": f"{SESSION_COOKIE}={token}", "Origin": base}
    async with websockets.connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit"],  # type: ignore[list-item]
                                  additional_headers=headers, user_agent_header=DESK_UA, max_size=None) as socket:
        first = BackMsg()
        first.rerun_script.page_name = "inquiries"
        await socket.send(first.SerializeToString())
        page_hash, timers = "", {}

        async def tick(fragment_id: str, every: float) -> None:
            # Each browser's timer runs from when its page was opened: independent phases, unless
            # --aligned asks for the worst case (every desk redrawn in the same instant).
            await asyncio.sleep(0 if aligned else every * random.random())
            while not stop.is_set():
                await asyncio.sleep(every)
                msg = BackMsg()
                msg.rerun_script.page_script_hash = page_hash
                msg.rerun_script.fragment_id = fragment_id
                msg.rerun_script.is_auto_rerun = True
                await socket.send(msg.SerializeToString())

        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=1)
            except TimeoutError:
                continue
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                page_hash = msg.new_session.page_script_hash
            elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in timers:
                timers[msg.auto_rerun.fragment_id] = asyncio.create_task(
                    tick(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
                )
            elif kind == "script_finished":
                ticks[index] += 1
                if not timers:  # a run that ended before drawing 문의 (a server's very first run reruns
                    await socket.send(first.SerializeToString())  # itself): open the page again
        for timer in timers.values():
            timer.cancel()


@contextmanager
def desk_sessions(base: str, url: str, count: int, aligned: bool = False) -> Iterator[list[int]]:
    """`count` staff sessions with 문의 open for as long as the block runs; yields the runs each got."""
    from sqlmodel import Session

    from core.accounts.auth import open_session
    from core.models import StaffUser

    ticks = [0] * count
    if not count:
        yield ticks
        return
    engine = make_engine(url)
    with Session(engine) as session:
        staff = session.exec(select(StaffUser).where(StaffUser.role.in_(["cs", "owner"]))).all()  # type: ignore[attr-defined]
        tokens = [open_session(session, staff[i % len(staff)].id) for i in range(count)]  # type: ignore[arg-type]
        session.commit()
    engine.dispose()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    async def all_desks() -> None:
        results = await asyncio.gather(*(_desk(base, t, ticks, i, stop, aligned) for i, t in enumerate(tokens)),
                                       return_exceptions=True)
        errors.extend(r for r in results if isinstance(r, BaseException))

    thread = threading.Thread(target=loop.run_until_complete, args=(all_desks(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while min(ticks) < 3 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.5)  # every desk has drawn its page and ticked at least twice before measuring
    try:
        yield ticks
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        if errors:
            print(f"desk sessions: {len(errors)} ended with an error, first: {errors[0]!r}")


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", help="an existing SQLite store (e.g. made by bench.seed --keep)")
    parser.add_argument("--orders", type=int, default=100_000, help="orders of a fresh demo store (no --path)")
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--go", type=int, default=200, help="sequential /go and /pay requests")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--desk-sessions", type=int, default=0,
                        help="staff sessions with 문의 open (live queue ticking) during the /pay load")
    parser.add_argument("--aligned", action="store_true",
                        help="every desk's live queue ticks in the same instant (worst case; default: independent phases)")
    parser.add_argument("--skip-visits", action="store_true", help="only the server-time figures")
    args = parser.parse_args(argv)

    url, codes, cid, orders = _store(args)
    print(f"store: {orders:,} orders, {len(codes)} new payment links ({url})")
    with streamlit_server(url) as base:
        if not args.skip_visits:
            for name, paths, form in (
                ("/pay", [f"/pay?link={code}" for code in codes[: args.visits]], "#pay-form"),
                ("/help", ["/help"] * args.visits, "form[action='/help']"),
            ):
                visits = first_visits(base, paths, form)
                for seconds, size, requests in visits:
                    print(f"{name} first visit, Fast 3G, 390x844: form visible {seconds * 1000:.0f} ms, "
                          f"{size / 1024:.1f} KB in {requests} request(s)")
                print(f"{name} first visit: median {statistics.median(v[0] for v in visits) * 1000:.0f} ms, "
                      f"max {max(v[0] for v in visits) * 1000:.0f} ms; max {max(v[1] for v in visits) / 1024:.1f} KB")
        go, go_cpu = sequential(base, [f"/go?c={cid}&u=benchpub"] * args.go, 303)
        print(f"/go server time ({len(go)} sequential): p50 {_ms(go, .5):.1f} ms, p99 {_ms(go, .99):.1f} ms, "
              f"max {max(go) * 1000:.1f} ms; server CPU {go_cpu * 1000:.1f} ms per request")
        pay, pay_cpu = sequential(base, [f"/pay?link={codes[i % len(codes)]}" for i in range(args.go)], 200)
        print(f"/pay server time ({len(pay)} sequential): p50 {_ms(pay, .5):.1f} ms, p99 {_ms(pay, .99):.1f} ms, "
              f"max {max(pay) * 1000:.1f} ms; server CPU {pay_cpu * 1000:.1f} ms per request")
        with desk_sessions(base, url, args.desk_sessions, args.aligned) as desk_runs:
            before = list(desk_runs)
            cpu, wall = server_cpu(), time.perf_counter()
            paced = asyncio.run(_paced(base, codes, args.rate, args.seconds))
            cpu, wall = server_cpu() - cpu, time.perf_counter() - wall
            runs = [after - was for after, was in zip(desk_runs, before, strict=True)]
        desks = (f" while {args.desk_sessions} 문의 sessions were open ({min(runs)}-{max(runs)} queue runs each "
                 f"in {wall:.0f} s)" if args.desk_sessions else "")
        unanswered = sum(t == float("inf") for t in paced)
        if unanswered:
            desks += f", {unanswered} not answered within 30 s (counted as infinitely slow)"
        print(f"/pay at {args.rate:.0f} req/s for {args.seconds:.0f} s ({len(paced)} requests){desks}: "
              f"p50 {_ms(paced, .5):.1f} ms, p95 {_ms(paced, .95):.1f} ms, p99 {_ms(paced, .99):.1f} ms, "
              f"max {max(paced) * 1000:.1f} ms; server CPU {cpu / wall * 100:.0f}% of a core "
              f"({cpu * 1000 / len(paced):.1f} ms per request, desks included)")
    slow = sorted(SLOW, key=lambda x: -x[1])[:15]
    print("slowest (i, ms, at s):", slow)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
