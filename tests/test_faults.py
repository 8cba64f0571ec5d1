"""Faults and load, short versions (issue 9); bench/faults.py runs the full-size ones.

Worker processes, SIGKILLs, providers failing 30% of calls with 500s and 10% with timeouts, and the
UI writing next to the worker on SQLite: nothing duplicated, nothing lost, every item final with
its reason. The providers are real HTTP servers on 127.0.0.1 that count what they took.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select

from core import billing, clock
from core.messaging import sender
from core.messaging.providers.solapi import SolapiClient
from core.models import Message
from core.models.sandbox import SandboxPayment
from core.payments.gateways.router import PaymentRouter
from core.payments.gateways.toss import TossGateway
from tests import fault_support as fs


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_two_worker_processes_on_postgres_share_the_work_with_no_duplicate_and_nothing_lost(
    pg_engine: Engine,
) -> None:
    fs.seed(pg_engine, messages=600, charges=60, batch_size=50)
    with fs.servers() as (solapi, _):
        run = fs.drive(pg_engine, fs.worker_env(_url(pg_engine), solapi), workers=2)
        ledger = fs.ledger(pg_engine, solapi)
    assert ledger.problems == [], ledger.line()
    # ours + each charge's order confirmation and billing receipt + the welcome of each charged customer
    # (a first payment: the refund policy told up front, once ever)
    assert ledger.messages_taken == 600 + 60 + 60 + 60
    assert _welcomes(pg_engine) == 60
    assert ledger.charges_taken == 60 == ledger.charge_status["succeeded"]
    assert run.rounds <= 2


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_worker_killed_mid_charges_and_mid_sends_then_restarted_does_everything_exactly_once(
    engine: Engine,
) -> None:
    fs.seed(engine, messages=300, charges=40, batch_size=20)

    def gateway_payments() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(SandboxPayment)).scalar_one()

    with fs.servers(delay=0.05) as (solapi, _):
        run = fs.drive_with_kills(
            engine,
            fs.worker_env(_url(engine), solapi),
            kills=2,
            rng=random.Random(1),
            kill_when=[lambda: gateway_payments() >= 10, lambda: solapi.requests["POST send"] >= 3],
        )
        ledger = fs.ledger(engine, solapi)
    assert run.kills == 2
    assert run.in_flight_at_kill["messages_sending"] > 0 or run.in_flight_at_kill["charges_unknown"] > 0
    assert ledger.problems == [], ledger.line()
    assert ledger.charges_taken == 40 and ledger.messages_taken == 300 + 40 + 40 + 40  # + confirmation, receipt, welcome
    assert _welcomes(engine) == 40


def _welcomes(engine: Engine) -> int:
    """Welcome messages, each to a different customer (once ever, however often the worker died)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Message.customer_id).where(Message.template_key == "welcome")).scalars().all()
    assert len(rows) == len(set(rows))
    return len(rows)


def test_providers_failing_40_percent_of_calls_leave_every_item_final_once_with_bounded_retries(
    engine: Engine,
) -> None:
    """30% HTTP 500, 10% timeouts (the work done, the answer late) on Solapi and Toss."""
    fs.seed(engine, messages=200, charges=20, gateway="toss", batch_size=20)
    faults = fs.Faults(error_rate=0.30, timeout_rate=0.10, timeout_seconds=0.5, seed=3)
    with fs.servers(faults, toss=True) as (solapi, toss):
        assert toss is not None
        provider = SolapiClient(base_url=solapi.url, api_key="KEY", api_secret="SECRET", sender="0212345678",
                                pf_id="KA01PF", rate_per_second=1000, timeout=0.25)
        router = PaymentRouter(TossGateway(secret_key="sk", base_url=toss.url, timeout=httpx.Timeout(0.25)),
                               sleep=lambda _seconds: None)
        now = fs.START
        for _round in range(300):
            with clock.frozen(now):
                billing.run_charges(engine, now, gateway=router)
                sender.run(engine, now, provider=provider)
            due = fs.next_due(engine)
            if due is None:
                break
            now = max(now + timedelta(minutes=10), due + timedelta(seconds=1))
        provider.close()
        ledger = fs.ledger(engine, solapi, toss)
    assert ledger.problems == [], ledger.line()
    assert solapi.outcomes["500"] and solapi.outcomes["timeout"] and toss.outcomes["500"]
    # Bounded: a message reaches the provider at most max_attempts (5) times.
    assert ledger.max_message_attempts <= 5, Counter(solapi.attempts.values())
    assert ledger.max_charge_attempts <= 40, Counter(toss.attempts.values())
    assert ledger.charge_status["succeeded"] >= 15  # most get through within the retry schedule


def test_ui_and_worker_writing_to_sqlite_at_once_never_show_database_is_locked() -> None:
    from tests import fault_ui

    load = fault_ui.run(10, staff_threads=2, backlog=3000,
                        enough=lambda seen: seen.page_runs >= 1 and sum(seen.actions.values()) > 20)
    assert load.locked == 0, load.errors
    assert not load.errors and not load.page_exceptions, (load.errors, load.page_exceptions)
    assert sum(load.actions.values()) > 20 and load.page_runs >= 1
    assert load.worker_messages_sent > 0  # the worker really wrote at the same time


@pytest.mark.browser
def test_browser_sessions_on_inquiries_stay_live_and_responsive() -> None:
    from tests import fault_browsers
    from tests.browser import require_chromium

    require_chromium()
    load = fault_browsers.run(sessions=3, seconds=6, clicks=2)
    assert not load.errors
    assert load.ticking == 3  # every session's countdown kept moving
    assert len(load.click_seconds) == 2 and max(load.click_seconds) < 15
    assert load.peak_rss_mb > 0 and load.cpu_percent > 0


def test_a_provider_answering_only_500s_gets_each_message_max_attempts_times_then_it_fails(
    sqlite_engine: Engine,
) -> None:
    """Solapi's 500 is an unknown outcome (looked up, then resent when not taken): that path must
    respect max_attempts too, or an outage resends every message forever."""
    fs.seed(sqlite_engine, messages=5, charges=0, batch_size=5)
    # Every send answers 500; lookups answer (and find nothing taken).
    with fs.FaultySolapi(fs.Faults(error_rate=1.0), lookup_faults=fs.Faults()) as solapi:
        provider = SolapiClient(base_url=solapi.url, api_key="KEY", api_secret="SECRET", sender="0212345678",
                                pf_id="KA01PF", rate_per_second=1000, timeout=1)
        now = fs.START
        for _round in range(40):
            with clock.frozen(now):
                sender.run(sqlite_engine, now, provider=provider)
            due = fs.next_due(sqlite_engine)
            if due is None:
                break
            now = max(now + timedelta(minutes=10), due + timedelta(seconds=1))
        provider.close()
        ledger = fs.ledger(sqlite_engine, solapi)
    assert ledger.message_status == Counter({"failed": 5}), ledger.line()
    assert set(solapi.attempts.values()) == {5}  # MESSAGING_DEFAULTS["max_attempts"]
    assert ledger.messages_taken == 0 and ledger.missing_reason == 0
