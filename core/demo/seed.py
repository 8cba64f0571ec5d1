"""Deterministic, realistic demo data for a Korean KakaoTalk-channel shop, fast enough for 1M orders.

Why it looks like this: the benchmark asks for 1,000,000 orders in under a minute on SQLite, so rows
are built as plain tuples with precomputed ids and written in chunks with the driver's executemany
(SQLite) or COPY (PostgreSQL), all inside ONE transaction: a failure or a refusal leaves nothing
half-written. For big loads the bulk tables' secondary indexes are dropped and rebuilt at the end, in
the same transaction (1M orders: 56 s CPU vs 71 s when only the customer_id/name/phone ones were). The same seed and the same `now` always
give the same rows (dates are relative to `now`: the last 6 months in KST).

Invariants the generator keeps (tests/test_seed.py checks them):
- order.total_amount == sum(order_item.amount); order.tax_free_amount == sum of tax-free items;
- payment.refunded_amount == sum(succeeded refunds); order.refunded_amount == its payment's;
- order/payment status agree with the refunded amount (paid/approved, partially_refunded, refunded);
- money is int KRW, every timestamp aware UTC, nothing in the future of `now`;
- every payment, refund and subscription SID also exists in the sandbox gateway's own tables
  (sandbox_payment, sandbox_instrument), so every demo refund, live lookup and charge works
  (tests/test_demo_walk.py walks it); the one open 이중 결제 is minutes old and carries the
  sentinel's dedupe key, so the worker's first tick refunds and resolves it.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, text
from sqlmodel import Session, SQLModel

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.customers import summary as customer_summary
from core.db import analyze
from core.demo import generator as generation
from core.demo import rewards as demo_rewards
from core.demo.reviews import seed_reviews
from core.demo.writer import create_indexes, drop_indexes
from core.errors import Conflict, ValidationFailed
from core.inquiries import service as inquiries
from core.models import (
    Customer,
    Order,
    Product,
    Role,
    StaffUser,
    Subscription,
)

DEMO_PASSWORD = "channeldesk"
DEMO_USERS = (
    ("owner", "김사장 (사장님)", Role.OWNER),
    ("cs", "이하늘 (CS)", Role.CS),
    ("staff", "박민호 (스태프)", Role.STAFF),
)
DEFAULT_CUSTOMERS = 2_000
DEFAULT_ORDERS = 10_000
DEFAULT_SEED = 2026
# Tables kept by --reset: staff and their audit trail, owner settings, SLA policies, templates, worker health.
KEEP_ON_RESET = frozenset(
    {
        "staff_user",
        "audit_log",
        "setting",
        "sla_policy",
        "closed_day",
        "template",
        "job_run",
        "worker_heartbeat",
        "alembic_version",
    }
)


SEED_MMAP_BYTES = 2_000_000_000  # the 1M-order store is 1.4 GB; SQLite caps this at its own limit


class SeedRefused(Conflict):
    """The store already holds shop data; seeding again would mix two data sets."""


def seed_demo(
    engine: Engine,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    orders: int = DEFAULT_ORDERS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    reset: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Fill an empty store with demo data in one transaction and return row counts per table.

    Refuses (SeedRefused, nothing written) when shop data exists, unless reset=True, which first
    deletes the shop data (customers, orders, ... ; staff users, settings and the audit log stay).
    """
    if not isinstance(customers, int) or customers < 1:
        raise ValidationFailed(f"고객 수는 1 이상이어야 합니다 (customers={customers!r})")
    if not isinstance(orders, int) or orders < 0:
        raise ValidationFailed(f"주문 수는 0 이상이어야 합니다 (orders={orders!r})")
    if now is not None and now.tzinfo is None:
        raise ValidationFailed("now 는 시간대가 있는 시각이어야 합니다 (timezone-aware)")
    instant = clock.as_utc(now or clock.now()).replace(microsecond=0)
    say = progress or (lambda _message: None)
    bulk = orders >= generation.BULK_INDEX_THRESHOLD
    with _seeding_connection(engine, bulk=bulk) as connection, connection.begin():
        existing = existing_counts(connection)
        if any(existing.values()):
            if not reset:
                raise SeedRefused(
                    "이미 데이터가 있어 데모 데이터를 만들지 않았습니다 "
                    f"(고객 {existing['customer']:,}명, 주문 {existing['orders']:,}건, "
                    f"상품 {existing['product']:,}개). 지우고 다시 만들려면 --reset 을 쓰세요. "
                    "(database already seeded; use --reset)"
                )
            _wipe(connection)
        generator = generation.Generator(connection, random.Random(seed), instant, say)
        counts = generator.run(customers, orders)
        say("고객 요약 (customer summaries)")
        with Session(bind=connection) as session:
            # The summaries are filled from scratch: a big load builds their indexes once afterwards
            # too (1M orders: ~500,000 product rows, 1.5 s less than updating the indexes row by row).
            summary_indexes = drop_indexes(connection, generation.SUMMARY_TABLES) if bulk else []
            customer_summary.rebuild(session)
            create_indexes(connection, summary_indexes)
            say("데모 계정, 문의 기한, 감사 기록 (demo users, SLA deadlines, audit)")
            counts["staff_users_created"] = _ensure_demo_users(session)
            _demo_policies(session)
            # The seeded open inquiries get their SLA deadlines like any created through the service.
            inquiries.recompute_open(session)
            session.flush()
            _fix_sequences(connection)  # the review's inquiry is made by the service, through the sequence
            for key, value in seed_reviews(session, instant).items():
                counts[key] = counts.get(key, 0) + value
            counts.update(demo_rewards.seed_rewards(session, instant, seed))  # coupons, points, a referral
            audit.record(
                session,
                Actor(None, "cli", Role.OWNER),
                "seed.demo",
                "database",
                None,
                seed=seed,
                reset=reset,
                **counts,
            )
            session.flush()
        _fix_sequences(connection)
        say("저장 (commit)")
    say("통계 (ANALYZE)")
    analyze(engine)  # planner statistics for the seeded rows (core.db.analyze says why)
    say("완료 (done)")
    return counts


DEMO_REFUND_POLICY = (
    "상품을 받은 날부터 7일 안에 교환·환불(청약철회)을 요청할 수 있어요.\n"
    "단순 변심 반품은 왕복 배송비 6,000원을 고객님이 부담합니다. 원두는 개봉 전까지만 반품돼요.\n"
    "상품에 문제가 있으면 받은 날부터 3개월 안에 배송비 없이 바꿔 드립니다.\n"
    "교환·환불은 카카오톡 채널 채팅으로 주문번호와 함께 말씀해 주세요."
)
DEMO_VIP_RULE = {"top_percent": 2, "min_orders": 3}  # a few VIPs (17 of the default 2,000 customers)


def _demo_policies(session: Session) -> None:
    """The demo shop's refund policy and VIP rule, unless the owner already set their own (a --reset
    keeps settings)."""
    from core import settings_store
    from core.customers import vip
    from core.payments import checkout

    owner = Actor(None, "cli", Role.OWNER)
    if settings_store.get(session, checkout.REFUND_POLICY_KEY) is None:
        checkout.set_refund_policy(session, owner, DEMO_REFUND_POLICY)
    if settings_store.get(session, vip.SETTING_KEY) is None:
        vip.save(session, owner, DEMO_VIP_RULE)


# ----------------------------------------------------------------------------------------------
# connection, refusal, reset


@contextlib.contextmanager
def _seeding_connection(engine: Engine, *, bulk: bool) -> Iterator[Connection]:
    """A connection tuned for bulk loading; SQLite PRAGMAs are set outside the transaction and restored.

    A big load (`bulk`) also leaves WAL for a rollback journal while it runs: in WAL every page is
    written twice (into the WAL, then checkpointed into the file, 1.4 GB each at 1M orders), while a
    rollback journal only keeps the pages that existed before (new pages are undone by truncating
    the file), so a failure still writes nothing. If another connection holds the file open, SQLite
    keeps WAL and the load simply takes the slower path.
    """
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection if engine.dialect.name == "sqlite" else None
        left_wal = False
        if raw is not None:
            # foreign_keys can only change outside a transaction; the generator keeps references right
            # (the tests run PRAGMA foreign_key_check and the PostgreSQL run checks every key).
            for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-400000", "temp_store=MEMORY"):
                raw.execute(f"PRAGMA {pragma}")
            if bulk:
                left_wal = raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
                # Index builds and the summary rebuild read the whole file back: mapped, not copied.
                raw.execute(f"PRAGMA mmap_size={SEED_MMAP_BYTES}")
        try:
            yield connection
        finally:
            if raw is not None:
                with contextlib.suppress(Exception):
                    for pragma in (
                        *(("journal_mode=WAL",) if left_wal else ()),
                        "foreign_keys=ON",
                        "synchronous=NORMAL",
                        "cache_size=-2000",
                        "temp_store=DEFAULT",
                        "mmap_size=0",
                    ):
                        raw.execute(f"PRAGMA {pragma}")


def existing_counts(connection: Connection) -> dict[str, int]:
    """Rows in the tables that tell whether shop data is already there (seeding refuses if any)."""
    counts = {}
    for model in (Customer, Order, Product, Subscription):
        table = model.__table__  # type: ignore[attr-defined]
        counts[table.name] = connection.execute(select(func.count()).select_from(table)).scalar_one()
    return counts


def _wipe(connection: Connection) -> None:
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name not in KEEP_ON_RESET]
    if connection.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    else:
        for table in tables:
            connection.execute(table.delete())


def _fix_sequences(connection: Connection) -> None:
    """Rows were written with explicit ids: move PostgreSQL's sequences past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in SQLModel.metadata.sorted_tables:
        if "id" in table.c and table.c.id.primary_key:
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
                )
            )


def _ensure_demo_users(session: Session) -> int:
    created = 0
    for username, display_name, role in DEMO_USERS:
        exists = session.execute(select(StaffUser.id).where(StaffUser.username == username)).first()
        if exists is None:
            create_user(
                session,
                None,
                username=username,
                display_name=display_name,
                role=role.value,
                password=DEMO_PASSWORD,
            )
            created += 1
    return created


def describe(counts: dict[str, int]) -> str:
    """One line per table for the CLI."""
    width = max((len(k) for k in counts), default=0)
    return "\n".join(f"  {name.ljust(width)}  {value:>12,}" for name, value in counts.items())


__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "SeedRefused", "describe", "existing_counts", "seed_demo"]
