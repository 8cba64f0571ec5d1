"""Writing demo rows fast: values in each driver's shape, executemany (SQLite) or COPY (PostgreSQL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from core.models import (
    OrderStatus,
    PaymentLinkStatus,
    PaymentStatus,
)

CHUNK = 20_000


# ----------------------------------------------------------------------------------------------
# writing


# Status values as plain strings for the hot loop (enum attribute access is slow at a million rows).
ORDER_PENDING, ORDER_PAID, ORDER_CANCELED = (
    OrderStatus.PENDING.value,
    OrderStatus.PAID.value,
    OrderStatus.CANCELED.value,
)
ORDER_REFUNDED, ORDER_PARTIALLY_REFUNDED = OrderStatus.REFUNDED.value, OrderStatus.PARTIALLY_REFUNDED.value
PAY_APPROVED, PAY_FAILED = PaymentStatus.APPROVED.value, PaymentStatus.FAILED.value
PAY_REFUNDED, PAY_PARTIALLY_REFUNDED = PaymentStatus.REFUNDED.value, PaymentStatus.PARTIALLY_REFUNDED.value
LINK_PAID = PaymentLinkStatus.PAID.value


def _sqlite_instants() -> Callable[[int | None], str | None]:
    """Epoch seconds -> SQLAlchemy's SQLite DATETIME text ("YYYY-MM-DD HH:MM:SS.ffffff").

    The same text SQLAlchemy writes, so range filters compare like with like. Day and time-of-day
    parts come from caches (a million rows share ~200 days and 86,400 seconds), held in a closure:
    this runs ~6 million times for 1M orders.
    """
    day_prefix: dict[int, str] = {}
    time_of_day = [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)]

    def ts(seconds: int | None) -> str | None:
        if seconds is None:
            return None
        days = seconds // 86400
        try:
            prefix = day_prefix[days]
        except KeyError:
            prefix = day_prefix[days] = f"{(_EPOCH + timedelta(days=days)).date()} "
        return prefix + time_of_day[seconds - days * 86400]

    return ts


class Writer:
    """Values in the shape each driver stores, and the fastest bulk path each offers."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.true: Any = True if self.postgres else 1
        self.false: Any = False if self.postgres else 0
        self.rows_written = 0
        self._background = False
        self.ts: Callable[[int | None], Any] = self._ts_postgres if self.postgres else _sqlite_instants()

    def _ts_postgres(self, seconds: int | None) -> datetime | None:
        """An instant given as whole epoch seconds (UTC) -> an aware datetime for psycopg."""
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

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


def drop_indexes(connection: Connection, tables: Sequence[str]) -> list[str]:
    """Drop these tables' secondary indexes (not keys or unique constraints) and return their
    definitions as the database states them, so `create_indexes` brings back exactly the migration's."""
    names = ", ".join(f"'{t}'" for t in tables)
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            f"AND tablename IN ({names}) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)"
        ).all()
    else:
        rows = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names}) ORDER BY name"
        ).all()
    for name, _definition in rows:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [definition for _name, definition in rows]


def create_indexes(connection: Connection, definitions: Sequence[str]) -> None:
    """Build dropped indexes again: one sort per index instead of an index update per row."""
    for definition in definitions:
        connection.exec_driver_sql(definition)


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
REVIEW_COLS = (
    "id", "order_id", "customer_id", "product_id", "order_item_id", "rating", "body", "created_at", "submitted_at",
    "updated_at",
)  # fmt: skip
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
class Buffers:
    links: list[tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    items: list[tuple[Any, ...]]
    payments: list[tuple[Any, ...]]
    refunds: list[tuple[Any, ...]]
    reviews: list[tuple[Any, ...]]
    gateway: list[tuple[Any, ...]]

    @classmethod
    def empty(cls) -> Buffers:
        return cls([], [], [], [], [], [], [])


def add_months(day: date, months: int, anchor: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(anchor, last))


def iso(stored: Any) -> str:
    """An instant as Writer.ts gave it (SQLite text or an aware datetime) -> the ISO text the
    sandbox writes in payment_action_details ("2026-11-20T01:00:00+00:00")."""
    if isinstance(stored, str):
        return f"{stored[:10]}T{stored[11:19]}+00:00"
    return stored.isoformat()


def kst_date(seconds: int) -> date:
    return date(1970, 1, 1) + timedelta(days=(seconds + KST_OFFSET_S) // 86400)


def kst_seconds(day: date, hour: int, minute: int = 0) -> int:
    return (day - date(1970, 1, 1)).days * 86400 + hour * 3600 + minute * 60 - KST_OFFSET_S
