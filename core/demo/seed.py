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

import bisect
import contextlib
import json
import queue
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlmodel import Session, SQLModel

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.billing import charge_key
from core.billing import order_number as subscription_order_number
from core.customers import summary as customer_summary
from core.customers.identity import identify
from core.errors import Conflict, ValidationFailed
from core.inquiries import service as inquiries
from core.models import (
    ChargeStatus,
    Customer,
    InquiryStatus,
    InquiryType,
    Order,
    OrderStatus,
    PaymentLinkStatus,
    PaymentStatus,
    Product,
    Role,
    StaffUser,
    Subscription,
    SubscriptionStatus,
)
from core.money import vat_of
from core.payments.gateways.sandbox import ONE_TIME_CID, PAYMENT_COLUMNS, RECURRING_CID
from core.payments.links import code_order_id

DEMO_PASSWORD = "channeldesk"
DEMO_USERS = (
    ("owner", "김사장 (사장님)", Role.OWNER),
    ("cs", "이하늘 (CS)", Role.CS),
    ("staff", "박민호 (스태프)", Role.STAFF),
)
DEFAULT_CUSTOMERS = 2_000
DEFAULT_ORDERS = 10_000
DEFAULT_SEED = 2026
GATEWAY = "sandbox"
WINDOW_DAYS = 183  # "the last 6 months"
LINK_TTL_S = 72 * 3600
CHUNK = 20_000
# Big loads drop these tables' secondary indexes and rebuild them at the end (same transaction).
BULK_TABLES = (
    "customer",
    "orders",
    "order_item",
    "payment",
    "refund",
    "payment_link",
    "review",
    "sandbox_payment",
)
BULK_INDEX_THRESHOLD = 50_000
# Store chunks from a second thread while the next chunk is built. Off by default: on this 2-core
# machine under load it cost ~15% more CPU and was slower (bench/seed.py --background-writer to compare).
BACKGROUND_WRITER = False

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

# Placeholder SLA targets (first response, resolution) in minutes; the SLA engine recomputes deadlines.
SLA_TARGET_MINUTES = {
    InquiryType.PAYMENT_ERROR: (10, 30),
    InquiryType.DOUBLE_CHARGE: (10, 60),
    InquiryType.REFUND_REQUEST: (60, 24 * 60),
    InquiryType.RECEIPT_REQUEST: (5, 10),
    InquiryType.OTHER: (4 * 60, 48 * 60),
}


class SeedRefused(Conflict):
    """The store already holds shop data; seeding again would mix two data sets."""


@dataclass(frozen=True)
class ProductSpec:
    name: str
    category: str
    price: int
    is_tax_free: bool = False
    replenishment_days: int | None = None
    is_subscription: bool = False
    weight: int = 0  # popularity in one-off orders (0: never sold one-off)
    shipped: bool = True  # goods go by courier; passes and memberships do not
    max_quantity: int = 3


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("헬스장 월회비", "헬스장", 39_000, is_subscription=True, shipped=False),
    ProductSpec("원두 정기배송 (200g x 2)", "커피", 24_900, is_subscription=True),
    ProductSpec("프로틴 쉐이크 격주 정기배송", "건강식품", 29_000, is_subscription=True),
    ProductSpec(
        "GX 월간 이용권", "헬스장", 59_000, replenishment_days=30, weight=7, shipped=False, max_quantity=1
    ),
    ProductSpec("헬스장 1일 이용권", "헬스장", 10_000, weight=5, shipped=False, max_quantity=2),
    ProductSpec("PT 10회권", "헬스장", 550_000, weight=1, shipped=False, max_quantity=1),
    ProductSpec("드립백 커피 10개입", "커피", 12_900, replenishment_days=30, weight=20),
    ProductSpec("싱글오리진 원두 200g", "커피", 16_500, replenishment_days=21, weight=11),
    ProductSpec("콜드브루 원액 500ml", "커피", 14_800, replenishment_days=20, weight=8),
    ProductSpec("프로틴 쉐이크 초코 1kg", "건강식품", 32_000, replenishment_days=45, weight=12),
    ProductSpec("단백질 바 12개입", "건강식품", 18_000, replenishment_days=30, weight=8),
    ProductSpec("셰이커 보틀 700ml", "용품", 8_900, weight=5),
    ProductSpec("헬스 장갑", "용품", 19_000, weight=3, max_quantity=1),
    ProductSpec("요가매트 6mm", "용품", 29_000, weight=3, max_quantity=1),
    # Unprocessed food is VAT-exempt in Korea (면세).
    ProductSpec(
        "생 닭가슴살 1kg (냉장)", "면세 식품", 11_900, is_tax_free=True, replenishment_days=14, weight=7
    ),
    ProductSpec(
        "제주 유기농 바나나 2kg", "면세 식품", 15_900, is_tax_free=True, replenishment_days=14, weight=4
    ),
    ProductSpec("유기농 현미 4kg", "면세 식품", 22_000, is_tax_free=True, replenishment_days=40, weight=3),
)

# (plan name, product index, amount, interval unit, interval count, popularity)
PLANS: tuple[tuple[str, int, int, str, int, int], ...] = (
    ("헬스장 월회비", 0, 39_000, "month", 1, 50),
    ("원두 정기배송", 1, 24_900, "month", 1, 35),
    ("프로틴 쉐이크 격주 정기배송", 2, 29_000, "week", 2, 15),
)

SURNAMES = (
    ("김", 215),
    ("이", 147),
    ("박", 84),
    ("최", 47),
    ("정", 44),
    ("강", 23),
    ("조", 21),
    ("윤", 21),
    ("장", 20),
    ("임", 17),
    ("한", 15),
    ("오", 15),
    ("서", 15),
    ("신", 14),
    ("권", 14),
    ("황", 14),
    ("안", 13),
    ("송", 13),
    ("류", 12),
    ("전", 11),
    ("홍", 11),
    ("고", 9),
    ("문", 9),
    ("양", 8),
    ("손", 8),
    ("배", 8),
    ("백", 8),
    ("허", 6),
    ("유", 6),
    ("남", 6),
    ("심", 5),
    ("노", 5),
    ("하", 4),
)
GIVEN_NAMES = [
    "민준",
    "서준",
    "도윤",
    "예준",
    "시우",
    "하준",
    "주원",
    "지호",
    "지후",
    "준우",
    "준서",
    "건우",
    "현우",
    "우진",
    "선우",
    "연우",
    "유준",
    "정우",
    "승우",
    "승현",
    "시윤",
    "준혁",
    "은우",
    "지환",
    "승민",
    "지우",
    "유찬",
    "윤우",
    "민재",
    "현준",
    "서연",
    "서윤",
    "지우",
    "서현",
    "민서",
    "하은",
    "하윤",
    "윤서",
    "지유",
    "지민",
    "채원",
    "지윤",
    "은서",
    "수아",
    "다은",
    "예은",
    "지아",
    "수빈",
    "소율",
    "예린",
    "예원",
    "지원",
    "소윤",
    "시은",
    "하린",
    "유나",
    "민지",
    "수민",
    "영희",
    "철수",
    "영수",
    "미경",
    "정희",
    "은정",
    "현주",
    "지영",
    "성민",
    "동현",
    "상훈",
    "재훈",
    "혜진",
    "수진",
    "경민",
    "태희",
    "보람",
    "다현",
    "가은",
    "나연",
    "준영",
    "태윤",
]

INQUIRY_TEXT: dict[str, tuple[tuple[str, str], ...]] = {
    InquiryType.PAYMENT_ERROR: (
        ("카카오페이 결제가 안 돼요", "결제 버튼을 눌렀는데 '결제 실패'만 뜹니다. 카드는 정상이에요."),
        ("결제 중 오류가 났어요", "결제하다가 앱이 꺼졌는데 돈이 빠져나갔는지 확인 부탁드립니다."),
        ("비밀번호 입력 후 멈춤", "카카오페이 비밀번호 입력하고 나서 화면이 멈췄어요. 주문이 된 건가요?"),
    ),
    InquiryType.DOUBLE_CHARGE: (
        ("결제가 두 번 됐어요", "같은 주문이 카드에서 두 번 결제됐습니다. 하나 취소해 주세요."),
        ("중복 결제 확인 부탁드려요", "알림이 두 번 왔어요. 이중 결제된 것 같아요."),
    ),
    InquiryType.REFUND_REQUEST: (
        ("환불 요청드립니다", "단순 변심으로 환불하고 싶어요. 아직 개봉 안 했습니다."),
        ("상품이 파손되어 왔어요", "포장이 찢어져서 내용물이 새어 있었습니다. 환불 부탁드려요."),
        ("이용권 환불 가능한가요", "이사 때문에 이용권을 더 못 쓰게 됐어요. 남은 기간 환불되나요?"),
    ),
    InquiryType.RECEIPT_REQUEST: (
        ("영수증 발급 부탁드려요", "회사 제출용으로 전자영수증 보내주실 수 있나요?"),
        ("현금영수증 요청", "지난달 결제한 건 현금영수증 발행 부탁드립니다."),
    ),
    InquiryType.OTHER: (
        ("배송 언제 오나요?", "주문한 지 3일 됐는데 아직 배송 시작이 안 됐어요."),
        ("헬스장 운영 시간 문의", "공휴일에도 헬스장 여나요?"),
        ("정기배송 주소 변경", "다음 정기배송부터 주소를 바꾸고 싶어요."),
    ),
}
REPLIES = {
    InquiryType.PAYMENT_ERROR: "확인해 보니 결제는 승인되지 않았습니다. 다시 한번 시도해 주시겠어요?",
    InquiryType.DOUBLE_CHARGE: "중복 결제를 확인했습니다. 한 건은 바로 취소해 드렸습니다.",
    InquiryType.REFUND_REQUEST: "환불 규정 안내드립니다. 요청하신 금액으로 환불 처리했습니다.",
    InquiryType.RECEIPT_REQUEST: "전자영수증을 카카오톡으로 보내드렸습니다.",
    InquiryType.OTHER: "문의 감사합니다. 확인 후 안내드렸습니다.",
}
REVIEW_TEXT = {
    1: ("배송이 너무 늦었어요.", "기대보다 별로였어요."),
    2: ("포장이 조금 아쉬웠어요.", "맛이 제 취향은 아니네요."),
    3: ("무난해요.", "가격 대비 괜찮습니다."),
    4: ("만족합니다. 재구매 의사 있어요.", "빠른 배송 감사합니다.", "맛있어요!"),
    5: (
        "최고예요! 벌써 세 번째 구매입니다.",
        "사장님 친절하시고 상품도 좋아요.",
        "향이 정말 좋아요 ☕",
        "운동 후에 먹기 딱 좋아요 💪",
    ),
}
REFUND_REASONS = ("단순 변심", "상품 파손", "배송 지연", "주문 실수", "이용권 미사용")


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
    with _seeding_connection(engine) as connection, connection.begin():
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
        generator = _Generator(connection, random.Random(seed), instant, progress or (lambda _m: None))
        counts = generator.run(customers, orders)
        with Session(bind=connection) as session:
            customer_summary.rebuild(session)
            counts["staff_users_created"] = _ensure_demo_users(session)
            # The seeded open inquiries get their SLA deadlines like any created through the service.
            inquiries.recompute_open(session)
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
    return counts


# ----------------------------------------------------------------------------------------------
# connection, refusal, reset


@contextlib.contextmanager
def _seeding_connection(engine: Engine) -> Iterator[Connection]:
    """A connection tuned for bulk loading; SQLite PRAGMAs are set outside the transaction and restored."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection if engine.dialect.name == "sqlite" else None
        if raw is not None:
            # foreign_keys can only change outside a transaction; the generator keeps references right
            # (the tests run PRAGMA foreign_key_check and the PostgreSQL run checks every key).
            for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-400000", "temp_store=MEMORY"):
                raw.execute(f"PRAGMA {pragma}")
        try:
            yield connection
        finally:
            if raw is not None:
                with contextlib.suppress(Exception):
                    for pragma in (
                        "foreign_keys=ON",
                        "synchronous=NORMAL",
                        "cache_size=-2000",
                        "temp_store=DEFAULT",
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


# ----------------------------------------------------------------------------------------------
# writing


# Status values as plain strings for the hot loop (enum attribute access is slow at a million rows).
_PENDING, _PAID, _CANCELED = OrderStatus.PENDING.value, OrderStatus.PAID.value, OrderStatus.CANCELED.value
_REFUNDED, _PARTIALLY_REFUNDED = OrderStatus.REFUNDED.value, OrderStatus.PARTIALLY_REFUNDED.value
_PAY_APPROVED, _PAY_FAILED = PaymentStatus.APPROVED.value, PaymentStatus.FAILED.value
_PAY_REFUNDED, _PAY_PARTIALLY_REFUNDED = PaymentStatus.REFUNDED.value, PaymentStatus.PARTIALLY_REFUNDED.value
_LINK_PAID = PaymentLinkStatus.PAID.value


class _Writer:
    """Values in the shape each driver stores, and the fastest bulk path each offers."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.true: Any = True if self.postgres else 1
        self.false: Any = False if self.postgres else 0
        self.rows_written = 0
        self._day_prefix: dict[int, str] = {}
        self._background = False

        self.ts: Callable[[int | None], Any] = self._ts_postgres if self.postgres else self._ts_sqlite
        self._time_of_day: list[str] = []

    def _ts_postgres(self, seconds: int | None) -> datetime | None:
        """An instant given as whole epoch seconds (UTC) -> an aware datetime for psycopg."""
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    def _ts_sqlite(self, seconds: int | None) -> str | None:
        """Epoch seconds -> SQLAlchemy's SQLite DATETIME text ("YYYY-MM-DD HH:MM:SS.ffffff").

        The same text SQLAlchemy writes, so range filters compare like with like. Day and time-of-day
        parts come from caches: a million rows share ~200 days and 86,400 seconds.
        """
        if seconds is None:
            return None
        days, rest = divmod(seconds, 86400)
        prefix = self._day_prefix.get(days)
        if prefix is None:
            prefix = self._day_prefix[days] = f"{(_EPOCH + timedelta(days=days)).date()} "
        if not self._time_of_day:
            self._time_of_day = [
                f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)
            ]
        return prefix + self._time_of_day[rest]

    def day(self, value: date | None) -> Any:
        if value is None or self.postgres:
            return value
        return value.isoformat()

    def start_background(self) -> None:
        """Write from a second thread: the driver releases the GIL while it stores rows, so building
        the next chunk in Python overlaps with storing the last one (two cores, both busy)."""
        self._queue: queue.Queue[tuple[str, Sequence[str], list[tuple[Any, ...]]] | None] = queue.Queue(3)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="seed-writer", daemon=True)
        self._thread.start()
        self._background = True

    def finish(self) -> None:
        """Wait until every queued chunk is stored; re-raise the writer's error here."""
        if not self._background:
            return
        self._background = False
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread in finish()
                    self._error = exc

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._background:
            if self._error is not None:
                self.finish()
            self._queue.put((table, columns, rows))
        else:
            self._write(table, columns, rows)

    def _write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        if self.postgres:
            cursor = self.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.close()
        else:
            marks = ", ".join("?" * len(columns))
            self.connection.exec_driver_sql(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)
        self.rows_written += len(rows)


_EPOCH = datetime(1970, 1, 1)
KST_OFFSET_S = 9 * 3600

CUSTOMER_COLS = (
    "id",
    "name",
    "phone",
    "mobile",
    "is_channel_friend",
    "public_id",
    "ad_consent_at",
    "night_ad_consent_at",
    "ad_opt_out_at",
    "created_at",
)
PRODUCT_COLS = (
    "id",
    "name",
    "category",
    "price",
    "is_tax_free",
    "replenishment_days",
    "image_url",
    "is_subscription",
    "is_active",
    "deleted_at",
    "created_at",
)
PLAN_COLS = (
    "id",
    "name",
    "product_id",
    "amount",
    "tax_free_amount",
    "interval_unit",
    "interval_count",
    "is_active",
)
ORDER_COLS = (
    "id",
    "order_number",
    "customer_id",
    "total_amount",
    "tax_free_amount",
    "shipping_method",
    "expected_ship_date",
    "tracking_url",
    "source",
    "status",
    "ordered_at",
    "paid_at",
    "delivered_at",
    "refunded_amount",
    "payment_link_id",
    "subscription_id",
)
ITEM_COLS = ("id", "order_id", "product_id", "product_name", "quantity", "unit_price", "amount")
PAYMENT_COLS = (
    "id",
    "order_id",
    "customer_id",
    "gateway",
    "gateway_tid",
    "method",
    "amount",
    "tax_free_amount",
    "refunded_amount",
    "status",
    "idempotency_key",
    "approved_at",
    "failure_code",
    "failure_message",
    "routing_log",
    "created_at",
)
REFUND_COLS = (
    "id",
    "payment_id",
    "order_id",
    "amount",
    "tax_free_amount",
    "reason",
    "status",
    "idempotency_key",
    "requested_by",
    "gateway_response",
    "created_at",
    "completed_at",
)
LINK_COLS = (
    "id",
    "code",
    "product_id",
    "customer_id",
    "inquiry_id",
    "item_name",
    "amount",
    "tax_free_amount",
    "memo",
    "status",
    "gateway",
    "gateway_tid",
    "created_by",
    "created_at",
    "opened_at",
    "paid_at",
    "expires_at",
    "reminder_sent_at",
    "order_id",
)
REVIEW_COLS = ("id", "order_id", "customer_id", "product_id", "rating", "body", "created_at")
SUB_COLS = (
    "id",
    "customer_id",
    "plan_id",
    "amount",
    "next_amount",
    "status",
    "anchor_day",
    "next_charge_date",
    "instrument_gateway",
    "instrument_ref",
    "backup_instrument_gateway",
    "backup_instrument_ref",
    "paused_until",
    "cancel_at_period_end",
    "started_at",
    "canceled_at",
    "created_at",
)
CHARGE_COLS = (
    "id",
    "subscription_id",
    "period",
    "amount",
    "status",
    "attempt_count",
    "next_retry_at",
    "idempotency_key",
    "payment_id",
    "order_id",
    "failure_code",
    "failure_message",
    "created_at",
    "updated_at",
)
SUB_EVENT_COLS = ("id", "subscription_id", "at", "kind", "actor_id", "detail")
INQUIRY_COLS = (
    "id",
    "customer_id",
    "type",
    "subject",
    "order_id",
    "payment_id",
    "status",
    "assignee_id",
    "source",
    "dedupe_key",
    "created_at",
    "first_response_at",
    "resolved_at",
    "first_response_due_at",
    "resolution_due_at",
    "at_risk_notified_at",
    "breach_notified_at",
)
EVENT_COLS = ("id", "inquiry_id", "at", "kind", "author_id", "body", "detail")


# The sandbox gateway's own rows (core/models/sandbox.py): every seeded payment, refund and SID
# exists at the gateway too, so refunds, live lookups and charges work on the demo data.
INSTRUMENT_COLS = ("sid", "partner_user_id", "status", "created_at", "inactivated_at")
# Our payment status -> the sandbox's (KakaoPay's) status of the same payment.
GATEWAY_STATUS = {
    PaymentStatus.APPROVED.value: "SUCCESS_PAYMENT",
    PaymentStatus.PARTIALLY_REFUNDED.value: "PART_CANCEL_PAYMENT",
    PaymentStatus.REFUNDED.value: "CANCEL_PAYMENT",
    PaymentStatus.FAILED.value: "FAIL_PAYMENT",
}


@dataclass
class _Buffers:
    links: list[tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    items: list[tuple[Any, ...]]
    payments: list[tuple[Any, ...]]
    refunds: list[tuple[Any, ...]]
    reviews: list[tuple[Any, ...]]
    gateway: list[tuple[Any, ...]]

    @classmethod
    def empty(cls) -> _Buffers:
        return cls([], [], [], [], [], [], [])


def _add_months(day: date, months: int, anchor: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(anchor, last))


def _iso(stored: Any) -> str:
    """An instant as _Writer.ts gave it (SQLite text or an aware datetime) -> the ISO text the
    sandbox writes in payment_action_details ("2026-11-20T01:00:00+00:00")."""
    if isinstance(stored, str):
        return f"{stored[:10]}T{stored[11:19]}+00:00"
    return stored.isoformat()


def _kst_date(seconds: int) -> date:
    return date(1970, 1, 1) + timedelta(days=(seconds + KST_OFFSET_S) // 86400)


def _kst_seconds(day: date, hour: int, minute: int = 0) -> int:
    return (day - date(1970, 1, 1)).days * 86400 + hour * 3600 + minute * 60 - KST_OFFSET_S


class _Generator:
    def __init__(
        self, connection: Connection, rng: random.Random, now: datetime, progress: Callable[[str], None]
    ) -> None:
        self.w = _Writer(connection)
        self.connection = connection
        self.rng = rng
        self.now = int(now.timestamp())
        self.today = _kst_date(self.now)
        self.start = self.now - WINDOW_DAYS * 86400
        self.progress = progress
        self.counts: dict[str, int] = {}
        self.ids = {
            name: self._next_id(name)
            for name in (
                "customer",
                "product",
                "subscription_plan",
                "orders",
                "order_item",
                "payment",
                "refund",
                "payment_link",
                "review",
                "subscription",
                "subscription_charge",
                "subscription_event",
                "inquiry",
                "inquiry_event",
            )
        }
        self.staff_ids = self._staff_ids()
        # KakaoPay ids are 20 chars and grow with time; a seeded base keeps them unique and ordered.
        self.tid_base = rng.randrange(10**17, 9 * 10**18)
        self._order_prefixes: dict[int, str] = {}
        self._ship_days: dict[int, Any] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _next_id(self, table: str) -> int:
        return int(
            self.connection.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"').scalar_one()
        )

    def _staff_ids(self) -> list[int | None]:
        rows = self.connection.exec_driver_sql("SELECT id FROM staff_user ORDER BY id").all()
        return [row[0] for row in rows] or [None]

    def _take(self, table: str, n: int = 1) -> int:
        first = self.ids[table]
        self.ids[table] += n
        return first

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _tid(self, payment_id: int) -> str:
        # 20 chars like KakaoPay's; a bijection of the id, so unique without a lookup.
        return f"T{self.tid_base + payment_id:019d}"

    def _staff(self) -> int | None:
        return self.rng.choice(self.staff_ids)

    def _gateway_payment(
        self,
        buf: _Buffers,
        payment: tuple[Any, ...],
        partner_order_id: str,
        item_name: str,
        quantity: int,
        *,
        cancel: tuple[int, int, int, int, str, str] | None = None,
        sid: str | None = None,
    ) -> None:
        """The sandbox's row of a seeded payment (a PAYMENT_COLS tuple), so the gateway knows it.

        `cancel` is the seeded refund (id, amount, tax-free part, instant, our key, reason); the
        gateway records it under the key core.payments.orders sends (refund:{key}), so a repeat is a no-op.
        `sid` marks a subscription charge: recurring CID, the SID, and the charge key billing sends.
        Times are the payment's own (created, approved), already in the driver's shape.
        """
        pid, total, tax_free, status, key, approved_at = (
            payment[0], payment[6], payment[7], payment[9], payment[10], payment[11],
        )  # fmt: skip
        aid = actions = None
        if approved_at is None:
            actions = "[]"
        else:
            aid = f"A{self.tid_base + pid:019d}"
            actions = (
                f'[{{"aid": "{aid}", "approved_at": "{_iso(approved_at)}", "amount": {total}, '
                '"payment_action_type": "PAYMENT"}'
            )
            if cancel is not None:
                refund_id, amount, _tax_free, at, refund_key, reason = cancel
                canceled_at = _iso(self.w.ts(at))
                actions += ", " + json.dumps(
                    {
                        "aid": f"A{refund_id:019d}",
                        "approved_at": canceled_at,
                        "amount": amount,
                        "payment_action_type": "CANCEL",
                        "idempotency_key": f"refund:{refund_key}",
                        "canceled_at": canceled_at,
                        "reason": reason,
                    },
                    ensure_ascii=False,
                )
            actions += "]"
        buf.gateway.append((
            payment[4], ONE_TIME_CID if sid is None else RECURRING_CID, partner_order_id,
            self.public_ids[payment[2] - self.customer_first], item_name, quantity, total, tax_free,
            vat_of(total, tax_free), GATEWAY_STATUS[status], payment[5], aid, sid,
            key if (sid is not None and aid is not None) else None, payment[8],
            cancel[2] if cancel is not None else 0, actions, payment[15], approved_at,
        ))  # fmt: skip

    # -- run -----------------------------------------------------------------------------------
    def run(self, n_customers: int, n_orders: int) -> dict[str, int]:
        # Filling a table and then building its indexes once (a sort) beats updating every index
        # row by row; the definitions are read back from the database, so they come back exactly.
        indexes = self._drop_indexes(BULK_TABLES) if n_orders >= BULK_INDEX_THRESHOLD else []
        if BACKGROUND_WRITER:
            self.w.start_background()
        try:
            self._products()
            self._customers(n_customers)
            self._subscriptions()
            self._orders(n_orders)
            self._unpaid_links(n_orders)
            self._inquiries(n_orders)
        finally:
            self.w.finish()  # on an error too: the writer must stop before the rollback
        if indexes:
            self.progress(f"rebuilding {len(indexes)} indexes")
        for _name, definition in indexes:
            self.connection.exec_driver_sql(definition)
        return dict(self.counts)

    def _drop_indexes(self, tables: Sequence[str]) -> list[tuple[str, str]]:
        names = ", ".join(f"'{t}'" for t in tables)
        if self.w.postgres:
            rows = self.connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                f"AND tablename IN ({names}) AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)"
            ).all()
        else:
            rows = self.connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({names}) ORDER BY name"
            ).all()
        indexes = [(row[0], row[1]) for row in rows]
        for name, _definition in indexes:
            self.connection.exec_driver_sql(f'DROP INDEX "{name}"')
        return indexes

    # -- catalogue -----------------------------------------------------------------------------
    def _products(self) -> None:
        w, created = self.w, self.w.ts(self.start - 30 * 86400)
        first = self._take("product", len(PRODUCTS))
        self.product_ids = [first + i for i in range(len(PRODUCTS))]
        w.insert(
            "product",
            PRODUCT_COLS,
            [
                (
                    first + i,
                    p.name,
                    p.category,
                    p.price,
                    w.true if p.is_tax_free else w.false,
                    p.replenishment_days,
                    None,
                    w.true if p.is_subscription else w.false,
                    w.true,
                    None,
                    created,
                )
                for i, p in enumerate(PRODUCTS)
            ],
        )
        self._count("products", len(PRODUCTS))
        first_plan = self._take("subscription_plan", len(PLANS))
        self.plan_ids = [first_plan + i for i in range(len(PLANS))]
        w.insert(
            "subscription_plan",
            PLAN_COLS,
            [
                (first_plan + i, name, self.product_ids[product], amount, 0, unit, count, w.true)
                for i, (name, product, amount, unit, count, _weight) in enumerate(PLANS)
            ],
        )
        self._count("subscription_plans", len(PLANS))
        self.sale_products = [i for i, p in enumerate(PRODUCTS) if p.weight]
        cum, total = [], 0
        for i in self.sale_products:
            total += PRODUCTS[i].weight
            cum.append(total)
        self.sale_cum = cum

    # -- customers -----------------------------------------------------------------------------
    def _customers(self, n: int) -> None:
        rng, w = self.rng, self.w
        surnames = [s for s, _ in SURNAMES]
        surname_cum = list(_cumulative([weight for _, weight in SURNAMES]))
        # 40% joined before the window (some over 2 years ago: consent reconfirmation is due), the rest
        # join through the window. Sorted, so id order is join order and "who existed at t" is a prefix.
        n_before = max(1, int(n * 0.4))
        joined = sorted(
            [self.start - rng.randint(1, 3 * 365) * 86400 + rng.randint(0, 86399) for _ in range(n_before)]
            + [rng.randint(self.start, self.now - 3600) for _ in range(n - n_before)]
        )
        phones = rng.sample(range(10**8), n)
        first = self._take("customer", n)
        self.customer_first = first
        self.customer_joined = joined
        # Heavy-tailed appetite: a few loyal regulars, many one-time buyers.
        weights = [rng.lognormvariate(0.0, 1.25) for _ in range(n)]
        self.customer_cum = list(_cumulative(weights))
        # The partner_user_id the gateway knows each customer by (the sandbox rows carry it).
        self.public_ids = public_ids = [f"{rng.getrandbits(80):020x}" for _ in range(n)]
        rows = []
        for i in range(n):
            name = rng.choices(surnames, cum_weights=surname_cum)[0] + rng.choice(GIVEN_NAMES)
            # Through identity like every path in: the display form and the canonical mobile (unique:
            # the sampled numbers are distinct); a number outside the mobile plan is kept, never sent to.
            found = identify(f"010-{phones[i] // 10000:04d}-{phones[i] % 10000:04d}")
            phone = found.display
            created = joined[i]
            consent = night = opt_out = None
            roll = rng.random()
            if roll < 0.62:
                consent = created + rng.randint(0, 3 * 86400)
                if consent > self.now:
                    consent = self.now - 60
                if rng.random() < 0.25:
                    night = consent
                if rng.random() < 0.12:
                    opt_out = consent + rng.randint(86400, max(86401, self.now - consent))
                    opt_out = min(opt_out, self.now - 60)
            rows.append(
                (
                    first + i,
                    name,
                    phone,
                    found.mobile,
                    w.true if rng.random() < 0.86 else w.false,
                    public_ids[i],
                    w.ts(consent),
                    w.ts(night),
                    w.ts(opt_out),
                    w.ts(created),
                )
            )
            if len(rows) >= CHUNK:
                w.insert("customer", CUSTOMER_COLS, rows)
                rows = []
        w.insert("customer", CUSTOMER_COLS, rows)
        self._count("customers", n)

    def _pick_customer(self, at: int) -> int:
        """A customer who had joined by `at`, weighted by appetite (repeat buyers)."""
        k = bisect.bisect_right(self.customer_joined, at) or 1
        index = bisect.bisect_right(self.customer_cum, self.rng.random() * self.customer_cum[k - 1], 0, k - 1)
        return self.customer_first + index

    # -- one-off orders ------------------------------------------------------------------------
    def _order_times(self, n: int) -> list[int]:
        """Order instants over the window: growing shop, busier weekends, evening peak (KST)."""
        rng = self.rng
        days = WINDOW_DAYS
        first_day = _kst_date(self.start)
        day_weights = []
        for d in range(days + 1):
            day = first_day + timedelta(days=d)
            weight = 1.0 + 0.6 * d / days  # growth
            if day.weekday() >= 5:
                weight *= 1.25
            day_weights.append(weight)
        hour_weights = [3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 10, 8, 7, 7, 8, 10, 13, 15, 16, 13, 7]
        day_pick = rng.choices(range(days + 1), weights=day_weights, k=n)
        hour_pick = rng.choices(range(24), weights=hour_weights, k=n)
        base = _kst_seconds(first_day, 0)
        times = []
        low, high = self.start, self.now - 60
        for d, h in zip(day_pick, hour_pick, strict=True):
            t = base + d * 86400 + h * 3600 + int(rng.random() * 3600)
            if t < low or t > high:
                t = rng.randint(max(low, high - 14 * 86400), high)
            times.append(t)
        times.sort()
        return times

    def _orders(self, n: int) -> None:
        rng, now = self.rng, self.now
        times = self._order_times(n)
        self.recent_paid: deque[tuple[int, int, int, int, int, int]] = deque(maxlen=4000)
        self.sample_paid: list[tuple[int, int, int, int, int, int]] = []
        self.sample_refunded: list[tuple[int, int, int, int, int, int]] = []
        self.paid_links = 0
        sample_p = min(1.0, 4000 / max(n, 1))
        order_first = self._take("orders", n)
        self.last_order_id = order_first + n - 1
        for chunk_start in range(0, n, CHUNK):
            buf = _Buffers.empty()
            for offset, t in enumerate(times[chunk_start : chunk_start + CHUNK]):
                oid = order_first + chunk_start + offset
                entry = self._one_order(buf, oid, t, now)
                if entry is not None:
                    if t > now - 14 * 86400:
                        self.recent_paid.append(entry)
                    if rng.random() < sample_p:
                        (self.sample_refunded if entry[4] else self.sample_paid).append(entry)
            self._flush(buf)
            done = min(chunk_start + CHUNK, n)
            if done % 100_000 == 0 or done == n:
                self.progress(f"orders {done:,}/{n:,}")
        self._count("orders", n)

    def _flush(self, buf: _Buffers) -> None:
        w = self.w
        w.insert("payment_link", LINK_COLS, buf.links)
        w.insert("orders", ORDER_COLS, buf.orders)
        w.insert("order_item", ITEM_COLS, buf.items)
        w.insert("payment", PAYMENT_COLS, buf.payments)
        w.insert("refund", REFUND_COLS, buf.refunds)
        w.insert("review", REVIEW_COLS, buf.reviews)
        w.insert("sandbox_payment", PAYMENT_COLUMNS, buf.gateway)
        for name, rows in (
            ("payment_links", buf.links),
            ("order_items", buf.items),
            ("payments", buf.payments),
            ("refunds", buf.refunds),
            ("reviews", buf.reviews),
            ("sandbox_payments", buf.gateway),
        ):
            self._count(name, len(rows))

    def _one_order(
        self, buf: _Buffers, oid: int, t: int, now: int
    ) -> tuple[int, int, int, int, int, int] | None:
        """Build one order with its items, payment, refund, link and review; return it if paid.

        The hot loop of a million-order seed: plain tuples, cached strings, no enums or objects.
        """
        rng, ts = self.rng, self.w.ts
        random_ = rng.random
        cid = self._pick_customer(t)
        roll = random_()
        n_items = 1 if roll < 0.7 else (2 if roll < 0.92 else 3)
        sale_products, sale_cum = self.sale_products, self.sale_cum
        top = sale_cum[-1]
        chosen: list[int] = []
        for _ in range(n_items):
            index = sale_products[bisect.bisect_right(sale_cum, random_() * top)]
            if index not in chosen:
                chosen.append(index)
        total = tax_free = units = 0
        shipped = False
        item_id = self.ids["order_item"]
        self.ids["order_item"] = item_id + len(chosen)
        last_unit = 0
        last_tax_free = False
        items = buf.items
        for index in chosen:
            spec = PRODUCTS[index]
            q = random_()
            limit = spec.max_quantity
            quantity = 1 if (q < 0.8 or limit == 1) else (2 if (q < 0.95 or limit == 2) else 3)
            price = spec.price
            amount = price * quantity
            total += amount
            units += quantity
            if spec.is_tax_free:
                tax_free += amount
            shipped = shipped or spec.shipped
            last_unit, last_tax_free = price, spec.is_tax_free
            items.append((item_id, oid, self.product_ids[index], spec.name, quantity, price, amount))
            item_id += 1

        age = now - t
        roll = random_()
        if roll < 0.015:
            status = _CANCELED
        elif (age < 2 * 86400 and roll < 0.2) or oid == self.last_order_id:
            status = _PENDING  # not paid yet (the newest order always, so even a tiny demo has one)
        else:
            status = _PAID
        source = "chat"
        link_id = paid_at = delivered_at = shipping = ship_date = tracking = None
        refunded = 0
        entry = None
        number = f"{self._order_prefix((t + KST_OFFSET_S) // 86400)}{oid:07d}"
        first_name = PRODUCTS[chosen[0]].name
        item_name = first_name if len(chosen) == 1 else f"{first_name} 외 {len(chosen) - 1}건"
        if status is _CANCELED:
            if random_() < 0.5:  # a declined card before the customer gave up
                pid = self._take("payment")
                payment = (
                    pid, oid, cid, GATEWAY, self._tid(pid), "CARD", total, tax_free, 0, _PAY_FAILED,
                    f"pay:{oid}", None, "CARD_DECLINED", "카드사 승인 거절", "[]", ts(t + 30),
                )  # fmt: skip
                buf.payments.append(payment)
                self._gateway_payment(buf, payment, number, item_name, units)
        elif status is _PAID:
            pid = self._take("payment")
            paid_at = min(t + 5 + int(random_() * 300), now)
            method = "CARD" if random_() < 0.65 else "MONEY"
            pay_status = _PAY_APPROVED
            if shipped:
                shipping = "택배"
                ship_date = self._ship_day((paid_at + KST_OFFSET_S) // 86400 + 1)
                if age > 86400:
                    tracking = f"https://tracking.example.com/cj/{(oid * 9_973_331) % 10**12:012d}"
                delivered = paid_at + 86400 + int(random_() * 2 * 86400)
                if delivered < now:
                    delivered_at = delivered
            partner_order_id = number
            if len(chosen) == 1 and random_() < 0.1:
                source = "link"
                link_id = self._take("payment_link")
                link_created = t - 60 - int(random_() * 20 * 3600)
                code = f"L{link_id:07d}{rng.getrandbits(24):06x}"
                partner_order_id = code_order_id(code)
                buf.links.append((
                    link_id, code, self.product_ids[chosen[0]], cid, None,
                    PRODUCTS[chosen[0]].name, total, tax_free, None, _LINK_PAID, GATEWAY, self._tid(pid),
                    self._staff(), ts(link_created), ts(t - 30), ts(paid_at), ts(link_created + LINK_TTL_S), None,
                    oid,
                ))  # fmt: skip
            refund_roll = random_()
            cancel = None
            if refund_roll < 0.035 and age > 86400:
                refund_at = paid_at + 3600 + int(random_() * 7 * 86400)
                if refund_at < now:
                    if refund_roll < 0.02 or units == 1:
                        amount, refund_tax_free = total, tax_free
                        status, pay_status, gateway_status = _REFUNDED, _PAY_REFUNDED, "CANCEL_PAYMENT"
                    else:  # one unit back
                        amount, refund_tax_free = last_unit, (last_unit if last_tax_free else 0)
                        status, pay_status = _PARTIALLY_REFUNDED, _PAY_PARTIALLY_REFUNDED
                        gateway_status = "PART_CANCEL_PAYMENT"
                    refunded = amount
                    refund_id, reason = self._take("refund"), rng.choice(REFUND_REASONS)
                    buf.refunds.append((
                        refund_id, pid, oid, amount, refund_tax_free, reason,
                        "succeeded", f"refund:{pid}:1", self._staff(),
                        json.dumps({"status": gateway_status, "approved_cancel_amount": {"total": amount}}),
                        ts(refund_at), ts(refund_at + 2),
                    ))  # fmt: skip
                    cancel = (refund_id, amount, refund_tax_free, refund_at + 1, f"refund:{pid}:1", reason)
            payment = (
                pid, oid, cid, GATEWAY, self._tid(pid), method, total, tax_free, refunded, pay_status,
                f"pay:{oid}", ts(paid_at), None, None, "[]", ts(t + 2),
            )  # fmt: skip
            buf.payments.append(payment)
            self._gateway_payment(
                buf,
                payment,
                partner_order_id,
                item_name,
                units,
                cancel=cancel,
            )
            entry = (oid, cid, pid, total, refunded, tax_free)
            if delivered_at is not None and refunded == 0 and random_() < 0.12:
                review_at = delivered_at + int(random_() * 10 * 86400)
                if review_at < now:
                    rating = rng.choices((1, 2, 3, 4, 5), cum_weights=(2, 5, 13, 38, 100))[0]
                    buf.reviews.append((
                        self._take("review"), oid, cid, self.product_ids[chosen[0]], rating,
                        rng.choice(REVIEW_TEXT[rating]), ts(review_at),
                    ))  # fmt: skip
        buf.orders.append((
            oid, number, cid, total, tax_free, shipping,
            ship_date, tracking, source, status, ts(t), ts(paid_at), ts(delivered_at), refunded, link_id, None,
        ))  # fmt: skip
        return entry

    def _order_prefix(self, kst_day_number: int) -> str:
        prefix = self._order_prefixes.get(kst_day_number)
        if prefix is None:
            day = date(1970, 1, 1) + timedelta(days=kst_day_number)
            prefix = self._order_prefixes[kst_day_number] = f"CD{day.strftime('%y%m%d')}-"
        return prefix

    def _ship_day(self, kst_day_number: int) -> Any:
        value = self._ship_days.get(kst_day_number)
        if value is None:
            value = self._ship_days[kst_day_number] = self.w.day(
                date(1970, 1, 1) + timedelta(days=kst_day_number)
            )
        return value

    # -- payment links that were not paid ------------------------------------------------------
    def _unpaid_links(self, n_orders: int) -> None:
        rng, w, now = self.rng, self.w, self.now
        n = max(12, n_orders // 60)
        first = self._take("payment_link", n)
        rows = []
        # The first few are recent and still in the funnel, so every status shows on a small demo.
        forced = [
            PaymentLinkStatus.CREATED,
            PaymentLinkStatus.OPENED,
            PaymentLinkStatus.METHOD_SELECTED,
            PaymentLinkStatus.QUIT,
            PaymentLinkStatus.FAILED,
            PaymentLinkStatus.EXPIRED,
        ]
        for i in range(n):
            lid = first + i
            product_index = self.sale_products[
                bisect.bisect_right(self.sale_cum, rng.random() * self.sale_cum[-1])
            ]
            spec = PRODUCTS[product_index]
            status = forced[i] if i < len(forced) else None
            if status in (
                PaymentLinkStatus.CREATED,
                PaymentLinkStatus.OPENED,
                PaymentLinkStatus.METHOD_SELECTED,
            ):
                created = now - rng.randint(600, 2 * 86400)
            elif status is PaymentLinkStatus.EXPIRED:
                created = now - rng.randint(4 * 86400, WINDOW_DAYS * 86400)
            else:
                created = rng.randint(self.start, now - 600)
            expires = created + LINK_TTL_S
            if status is None:
                roll = rng.random()
                funnel = (
                    PaymentLinkStatus.CREATED
                    if roll < 0.4
                    else PaymentLinkStatus.OPENED
                    if roll < 0.75
                    else PaymentLinkStatus.METHOD_SELECTED
                )
                quit_roll = rng.random()
                if quit_roll < 0.2:
                    status = PaymentLinkStatus.QUIT
                elif quit_roll < 0.28:
                    status = PaymentLinkStatus.FAILED
                else:
                    status = funnel if expires > now else PaymentLinkStatus.EXPIRED
            opened = None
            if status is not PaymentLinkStatus.CREATED and (
                status is not PaymentLinkStatus.EXPIRED or rng.random() < 0.5
            ):
                opened = min(created + rng.randint(60, 6 * 3600), now - 1)
            reminder = None
            if status is not PaymentLinkStatus.CREATED and created + 86400 < now and rng.random() < 0.5:
                reminder = created + 86400
            rows.append(
                (
                    lid,
                    f"L{lid:07d}{rng.getrandbits(24):06x}",
                    self.product_ids[product_index],
                    self._pick_customer(created),
                    None,
                    spec.name,
                    spec.price,
                    spec.price if spec.is_tax_free else 0,
                    None,
                    status.value,
                    GATEWAY if opened else None,
                    None,
                    self._staff(),
                    w.ts(created),
                    w.ts(opened),
                    None,
                    w.ts(expires),
                    w.ts(reminder),
                    None,
                )
            )
        w.insert("payment_link", LINK_COLS, rows)
        self._count("payment_links", n)

    # -- subscriptions -------------------------------------------------------------------------
    def _subscriptions(self) -> None:
        rng, w, now, today = self.rng, self.w, self.now, self.today
        n_customers = len(self.customer_joined)
        n = max(8, n_customers * 6 // 100)
        n = min(n, n_customers)
        customers = sorted(rng.sample(range(n_customers), n))
        statuses = [
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAUSED,
            SubscriptionStatus.PAST_DUE,
            SubscriptionStatus.CANCELED,
        ]
        forced = [*statuses, SubscriptionStatus.ACTIVE, SubscriptionStatus.ACTIVE]
        plan_weights = [p[5] for p in PLANS]
        first = self._take("subscription", n)
        subs, charges, events, instruments = [], [], [], []
        buf = _Buffers.empty()
        for i, customer_index in enumerate(customers):
            sid = first + i
            cid = self.customer_first + customer_index
            plan_index = rng.choices(range(len(PLANS)), weights=plan_weights)[0]
            name, product_index, amount, unit, count, _ = PLANS[plan_index]
            status = forced[i] if i < len(forced) else rng.choices(statuses, weights=(70, 8, 7, 15))[0]
            earliest = max(self.customer_joined[customer_index], now - 200 * 86400)
            started = rng.randint(min(earliest, now - 5 * 86400), now - 4 * 86400)
            if i == 4:  # one charges tomorrow: the billing notice shows on the first worker run
                tomorrow = today + timedelta(days=1)
                started = _kst_seconds(_add_months(tomorrow, -2, tomorrow.day), 10)
            start_day = _kst_date(started)
            anchor = start_day.day

            def period(
                k: int,
                start_day: date = start_day,
                unit: str = unit,
                count: int = count,
                anchor: int = anchor,
            ) -> date:
                if unit == "month":
                    return _add_months(start_day, k * count, anchor)
                return start_day + timedelta(days=(7 if unit == "week" else 1) * count * k)

            stop = today
            canceled_at = paused_until = None
            if status is SubscriptionStatus.CANCELED:
                canceled_at = rng.randint(started + 86400, now - 3600)
                stop = _kst_date(canceled_at)
            elif status is SubscriptionStatus.PAUSED:
                paused_until = today + timedelta(days=rng.randint(3, 40))
            k = 0
            periods = []
            while period(k) <= stop and k < 400:
                periods.append(period(k))
                k += 1
            if status is SubscriptionStatus.PAUSED and len(periods) > 1:
                periods = periods[: max(1, len(periods) - 1)]  # the last period was skipped by the pause
            next_day: date | None = period(k)
            failed_last = status is SubscriptionStatus.PAST_DUE
            if status is SubscriptionStatus.PAUSED:
                while next_day is not None and next_day < paused_until:  # type: ignore[operator]
                    k += 1
                    next_day = period(k)
            elif status is SubscriptionStatus.CANCELED:
                next_day = None
            elif failed_last:
                next_day = periods[-1]
            sid_ref = f"S{(sid * 104_729_000_007 + 97) % 10**19:019d}"
            for j, day in enumerate(periods):
                charge_at = min(max(_kst_seconds(day, 9, rng.randint(0, 20)), started + 60), now - 60)
                charge_id = self._take("subscription_charge")
                key = charge_key(sid, day)
                partner_order_id = subscription_order_number(sid, day)
                if failed_last and j == len(periods) - 1:
                    pid = self._take("payment")
                    attempts = rng.randint(1, 3)
                    payment = (
                        pid,
                        None,
                        cid,
                        GATEWAY,
                        self._tid(pid),
                        "CARD",
                        amount,
                        0,
                        0,
                        PaymentStatus.FAILED.value,
                        f"{key}:{attempts}",
                        None,
                        "INSUFFICIENT_FUNDS",
                        "잔액 부족",
                        "[]",
                        w.ts(charge_at),
                    )
                    buf.payments.append(payment)
                    self._gateway_payment(
                        buf,
                        payment,
                        partner_order_id,
                        name,
                        1,
                        sid=sid_ref,
                    )
                    charges.append(
                        (
                            charge_id,
                            sid,
                            w.day(day),
                            amount,
                            ChargeStatus.FAILED.value,
                            attempts,
                            w.ts(now + rng.randint(3600, 2 * 86400)),
                            key,
                            pid,
                            None,
                            "INSUFFICIENT_FUNDS",
                            "잔액 부족",
                            w.ts(charge_at),
                            w.ts(charge_at),
                        )
                    )
                    events.append(
                        (
                            self._take("subscription_event"),
                            sid,
                            w.ts(charge_at),
                            "charge_failed",
                            None,
                            json.dumps({"period": day.isoformat(), "attempts": attempts}),
                        )
                    )
                    continue
                oid, pid, item_id = self._take("orders"), self._take("payment"), self._take("order_item")
                buf.orders.append(
                    (
                        oid,
                        f"CD{day.strftime('%y%m%d')}-S{oid:07d}",
                        cid,
                        amount,
                        0,
                        "택배" if PRODUCTS[product_index].shipped else None,
                        None,
                        None,
                        "subscription",
                        OrderStatus.PAID.value,
                        w.ts(charge_at),
                        w.ts(charge_at + 3),
                        None,
                        0,
                        None,
                        sid,
                    )
                )
                buf.items.append((item_id, oid, self.product_ids[product_index], name, 1, amount, amount))
                payment = (
                    pid,
                    oid,
                    cid,
                    GATEWAY,
                    self._tid(pid),
                    "CARD",
                    amount,
                    0,
                    0,
                    PaymentStatus.APPROVED.value,
                    key,
                    w.ts(charge_at + 3),
                    None,
                    None,
                    "[]",
                    w.ts(charge_at),
                )
                buf.payments.append(payment)
                self._gateway_payment(
                    buf,
                    payment,
                    partner_order_id,
                    name,
                    1,
                    sid=sid_ref,
                )
                charges.append(
                    (
                        charge_id,
                        sid,
                        w.day(day),
                        amount,
                        ChargeStatus.SUCCEEDED.value,
                        1,
                        None,
                        key,
                        pid,
                        oid,
                        None,
                        None,
                        w.ts(charge_at),
                        w.ts(charge_at + 3),
                    )
                )
            events.append(
                (
                    self._take("subscription_event"),
                    sid,
                    w.ts(started),
                    "created",
                    None,
                    json.dumps({"plan": name, "amount": amount}),
                )
            )
            if status is SubscriptionStatus.PAUSED:
                events.append(
                    (
                        self._take("subscription_event"),
                        sid,
                        w.ts(now - rng.randint(3600, 10 * 86400)),
                        "paused",
                        self._staff(),
                        json.dumps({"until": paused_until.isoformat()}),
                    )
                )  # type: ignore[union-attr]
            if canceled_at is not None:
                events.append(
                    (
                        self._take("subscription_event"),
                        sid,
                        w.ts(canceled_at),
                        "canceled",
                        self._staff(),
                        json.dumps({"reason": rng.choice(("이사", "가격 부담", "이용 빈도 낮음"))}),
                    )
                )
            # The SID exists at the sandbox: active while the subscription lives, inactive once canceled.
            instruments.append(
                (
                    sid_ref,
                    self.public_ids[customer_index],
                    "INACTIVE" if canceled_at is not None else "ACTIVE",
                    w.ts(started),
                    w.ts(canceled_at),
                )
            )
            subs.append(
                (
                    sid,
                    cid,
                    self.plan_ids[plan_index],
                    amount,
                    None,
                    status.value,
                    anchor,
                    w.day(next_day),
                    GATEWAY,
                    sid_ref,
                    None,
                    None,
                    w.day(paused_until),
                    w.true if (status is SubscriptionStatus.ACTIVE and rng.random() < 0.05) else w.false,
                    w.ts(started),
                    w.ts(canceled_at),
                    w.ts(started),
                )
            )
        w.insert("subscription", SUB_COLS, subs)
        w.insert("sandbox_instrument", INSTRUMENT_COLS, instruments)
        self._flush(buf)
        w.insert("subscription_charge", CHARGE_COLS, charges)
        w.insert("subscription_event", SUB_EVENT_COLS, events)
        self._count("orders", len(buf.orders))
        self._count("subscriptions", n)
        self._count("subscription_charges", len(charges))
        self._count("subscription_events", len(events))
        self._count("sandbox_instruments", len(instruments))

    # -- inquiries -----------------------------------------------------------------------------
    def _inquiries(self, n_orders: int) -> None:
        rng, w, now = self.rng, self.w, self.now
        cs_ids = self.staff_ids
        inquiries, events = [], []
        buf = _Buffers.empty()
        recent = [entry for entry in self.recent_paid if entry[4] == 0]
        # Open ones: each type at several ages (minutes to days), some waiting on the customer.
        open_ages_min = (2, 8, 25, 50, 3 * 60, 20 * 60, 2 * 24 * 60)
        plans: list[tuple[InquiryType, int, str]] = []
        for kind in InquiryType:
            if kind is InquiryType.DOUBLE_CHARGE:
                # A double charge minutes old: the sentinel (every minute) finds it on the worker's
                # first tick and refunds it, well within its 1-hour target. An older open one would
                # be a double charge the sentinel missed for hours: not what the product does.
                plans.append((kind, rng.randint(120, 240), InquiryStatus.OPEN))
                continue
            for age in open_ages_min:
                plans.append((kind, age * 60 + rng.randint(0, 59), InquiryStatus.OPEN))
            plans.append((kind, rng.randint(2 * 3600, 30 * 3600), InquiryStatus.WAITING_CUSTOMER))
        n_resolved = max(20, min(3000, n_orders // 40))
        for _ in range(n_resolved):
            kind = rng.choices(list(InquiryType), weights=(30, 8, 30, 20, 12))[0]
            plans.append((kind, rng.randint(3 * 3600, WINDOW_DAYS * 86400), InquiryStatus.RESOLVED))
        first = self._take("inquiry", len(plans))
        for i, (kind, age_s, status) in enumerate(plans):
            iid = first + i
            created = now - age_s
            dedupe_key = None
            if kind is InquiryType.DOUBLE_CHARGE and status is not InquiryStatus.RESOLVED:
                order = self._double_charged_order(buf, created)
                # The sentinel's key: it takes this inquiry over (refund, reply, resolve), not a second one.
                dedupe_key = f"double_charge:{order[2]}"
            else:
                order = self._order_for(kind, status, recent)
            cid = order[1] if order else self._pick_customer(created)
            order_id = order[0] if order else None
            payment_id = order[2] if order else None
            subject, body = rng.choice(INQUIRY_TEXT[kind])
            first_target, resolution_target = SLA_TARGET_MINUTES[kind]
            assignee = first_response = resolved = None
            events.append(
                (self._take("inquiry_event"), iid, w.ts(created), "customer_message", None, body, "{}")
            )
            if status is InquiryStatus.OPEN:
                if age_s > 20 * 60 and rng.random() < 0.6:
                    assignee = rng.choice(cs_ids)
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(created + 300),
                            "assign",
                            assignee,
                            "",
                            json.dumps({"assignee_id": assignee}),
                        )
                    )
            else:
                assignee = rng.choice(cs_ids)
                first_response = created + rng.randint(60, max(61, min(age_s - 60, first_target * 120)))
                events.append(
                    (
                        self._take("inquiry_event"),
                        iid,
                        w.ts(first_response),
                        "reply",
                        assignee,
                        REPLIES[kind],
                        "{}",
                    )
                )
                if status is InquiryStatus.WAITING_CUSTOMER:
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(first_response + 1),
                            "state_change",
                            assignee,
                            "",
                            json.dumps({"from": "open", "to": "waiting_customer"}),
                        )
                    )
                else:
                    resolved = min(first_response + rng.randint(60, resolution_target * 90), now - 60)
                    resolved = max(resolved, first_response + 1)
                    if kind is InquiryType.RECEIPT_REQUEST:
                        events.append(
                            (
                                self._take("inquiry_event"),
                                iid,
                                w.ts(resolved - 1),
                                "receipt",
                                assignee,
                                "",
                                json.dumps({"payment_id": payment_id}),
                            )
                        )
                    events.append(
                        (
                            self._take("inquiry_event"),
                            iid,
                            w.ts(resolved),
                            "state_change",
                            assignee,
                            "",
                            json.dumps({"from": "open", "to": "resolved"}),
                        )
                    )
            inquiries.append(
                (
                    iid,
                    cid,
                    kind.value,
                    subject,
                    order_id,
                    payment_id,
                    status.value,
                    assignee,
                    "staff",
                    dedupe_key,
                    w.ts(created),
                    w.ts(first_response),
                    w.ts(resolved),
                    w.ts(created + first_target * 60),
                    w.ts(created + resolution_target * 60),
                    None,
                    None,
                )
            )
        self._flush(buf)
        self._count("orders", len(buf.orders))
        w.insert("inquiry", INQUIRY_COLS, inquiries)
        w.insert("inquiry_event", EVENT_COLS, events)
        self._count("inquiries", len(inquiries))
        self._count("inquiry_events", len(events))

    def _double_charged_order(self, buf: _Buffers, complained_at: int) -> tuple[int, int, int, int, int, int]:
        """A one-item order paid twice a minute apart, minutes before the customer wrote in.

        Both payments exist at the sandbox, so the sentinel's refund of the later one goes through.
        Returns (order, customer, later payment, total, 0, tax-free) like the paid-order entries.
        """
        rng, w = self.rng, self.w
        t = complained_at - rng.randint(300, 480)
        cid = self._pick_customer(t)
        index = self.sale_products[bisect.bisect_right(self.sale_cum, rng.random() * self.sale_cum[-1])]
        spec = PRODUCTS[index]
        total, tax_free = spec.price, (spec.price if spec.is_tax_free else 0)
        oid, item_id = self._take("orders"), self._take("order_item")
        number = f"{self._order_prefix((t + KST_OFFSET_S) // 86400)}{oid:07d}"
        first_paid, later_paid = t + 20, t + 80
        buf.orders.append((
            oid, number, cid, total, tax_free, "택배" if spec.shipped else None, None, None, "chat",
            _PAID, w.ts(t), w.ts(first_paid), None, 0, None, None,
        ))  # fmt: skip
        buf.items.append((item_id, oid, self.product_ids[index], spec.name, 1, total, total))
        later = 0
        for key, paid_at in ((f"pay:{oid}", first_paid), (f"pay:{oid}:dup", later_paid)):
            later = self._take("payment")
            payment = (
                later, oid, cid, GATEWAY, self._tid(later), "CARD", total, tax_free, 0, _PAY_APPROVED,
                key, w.ts(paid_at), None, None, "[]", w.ts(paid_at - 3),
            )  # fmt: skip
            buf.payments.append(payment)
            self._gateway_payment(buf, payment, number, spec.name, 1)
        return (oid, cid, later, total, 0, tax_free)

    def _order_for(
        self, kind: InquiryType, status: str, recent: list[tuple[int, int, int, int, int, int]]
    ) -> tuple[int, int, int, int, int, int] | None:
        rng = self.rng
        if kind is InquiryType.OTHER and rng.random() < 0.5:
            return None
        if status is InquiryStatus.RESOLVED:
            if kind is InquiryType.REFUND_REQUEST and self.sample_refunded:
                return rng.choice(self.sample_refunded)
            pool = self.sample_paid
        else:
            pool = recent or self.sample_paid
        return rng.choice(pool) if pool else None


def _cumulative(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def describe(counts: dict[str, int]) -> str:
    """One line per table for the CLI."""
    width = max((len(k) for k in counts), default=0)
    return "\n".join(f"  {name.ljust(width)}  {value:>12,}" for name, value in counts.items())


__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "SeedRefused", "describe", "existing_counts", "seed_demo"]
