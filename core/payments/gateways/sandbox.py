"""The embedded sandbox gateway: KakaoPay's state machine, locally, with no network.

It keeps its payments in the `sandbox_payment` table (its own transactions, like a remote server),
so the app, where a demo customer pays a link, and the worker, which looks payments up, agree.
Tests inject failures deterministically: `gateway.inject("charge", "busy", times=2)`.
Fault kinds: decline (permanent), busy (retriable, nothing happens), timeout (the effect happens,
then the answer is lost: outcome unknown), html (the effect happens, then a proxy's HTML 502 comes
back: outcome unknown), lost (outcome unknown, nothing happened). approve, charge and cancel go
through `moves_money`, like every gateway's.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core import clock
from core.models.sandbox import SandboxInstrument, SandboxPayment
from core.money import vat_of
from core.payments.gateways.base import (
    ApprovalResult,
    ApproveRequest,
    CancelRequest,
    CancelResult,
    ChargeRequest,
    LookupResult,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
    ReadyRequest,
    ReadyResult,
    RetriablePaymentError,
    moves_money,
)

ONE_TIME_CID = "TC0ONETIME"
RECURRING_CID = "TCSUBSCRIP"
FAULT_KINDS = ("decline", "busy", "timeout", "html", "lost")
# Statuses a customer can move a ready payment through on the sandbox payment page (the funnel).
PRE_PAYMENT_STATUSES = ("READY", "OPEN_PAYMENT", "SELECT_METHOD")
_PAYMENTS = SandboxPayment.__table__  # type: ignore[attr-defined]
_INSTRUMENTS = SandboxInstrument.__table__  # type: ignore[attr-defined]
_PAYMENT_BY_CHARGE_KEY = _PAYMENTS.select().where(_PAYMENTS.c.charge_key == bindparam("key"))
# Every column of a gateway payment row, in the order the bulk writers (a charge, the demo seed) use.
PAYMENT_COLUMNS = (
    "tid",
    "cid",
    "partner_order_id",
    "partner_user_id",
    "item_name",
    "quantity",
    "total_amount",
    "tax_free_amount",
    "vat_amount",
    "status",
    "method",
    "aid",
    "sid",
    "charge_key",
    "canceled_amount",
    "canceled_tax_free_amount",
    "actions",
    "created_at",
    "approved_at",
)


@functools.cache
def _charge_statement(dialect_name: str) -> Any:
    """INSERT .. SELECT .. WHERE the SID is active ON CONFLICT (charge_key) DO NOTHING RETURNING tid."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    active = (
        select(_INSTRUMENTS.c.sid)
        .where(_INSTRUMENTS.c.sid == bindparam("instrument"), _INSTRUMENTS.c.status == "ACTIVE")
        .exists()
    )
    values = select(*[bindparam(name, type_=_PAYMENTS.c[name].type) for name in PAYMENT_COLUMNS]).where(
        active
    )
    return (
        dialect.insert(_PAYMENTS)
        .from_select(list(PAYMENT_COLUMNS), values)
        .on_conflict_do_nothing(index_elements=["charge_key"])
        .returning(_PAYMENTS.c.tid)
    )


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)[:19].upper()


def _error(code: int, message: str, method_code: str | None = None) -> dict[str, Any]:
    """The KakaoPay error body shape, so callers see the same thing from sandbox and KakaoPay."""
    body: dict[str, Any] = {"error_code": code, "error_message": message}
    if method_code:
        body["extras"] = {"method_result_code": method_code, "method_result_message": message}
    return body


class SandboxGateway:
    name = "sandbox"
    # In process: calls share the GIL and the store's writer, so billing makes them one at a time.
    idempotent_cancel = True  # a repeat of a cancel key returns the first result
    cid, subscription_cid = ONE_TIME_CID, RECURRING_CID
    max_concurrent_charges = 1

    def __init__(self, engine: Engine, *, public_base_url: str = "http://localhost:8501") -> None:
        self.engine = engine
        self.public_base_url = public_base_url.rstrip("/")
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[str] = []  # operations attempted, in order (tests assert "never twice")

    # -- failure injection -------------------------------------------------------------------
    def inject(self, operation: str, kind: str, *, times: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULT_KINDS}")
        self._faults[operation].extend([kind] * times)

    def _fault(self, operation: str) -> str | None:
        self.calls.append(operation)
        queue = self._faults.get(operation)
        kind = queue.popleft() if queue else None
        if kind == "busy":
            raise RetriablePaymentError(
                "sandbox busy", code="USER_LOCKED", raw=_error(-780, "busy", "USER_LOCKED")
            )
        if kind == "decline":
            raise PermanentPaymentError(
                "카드가 거절되었습니다 (sandbox decline)",
                code="DECLINED",
                raw=_error(-780, "declined", "DECLINED"),
            )
        if kind == "lost":
            raise PaymentOutcomeUnknown(f"sandbox {operation}: no answer (nothing happened)", code="TIMEOUT")
        return kind

    @staticmethod
    def _after(kind: str | None, operation: str) -> None:
        if kind == "timeout":
            raise PaymentOutcomeUnknown(f"sandbox {operation}: timed out after taking effect", code="TIMEOUT")
        if kind == "html":
            raise PaymentOutcomeUnknown(
                f"sandbox {operation}: HTTP 502 (HTML: '<html>bad gateway</html>'), 처리되었을 수 있어 결과를 확인합니다",
                code="HTTP_502",
            )

    # -- protocol ----------------------------------------------------------------------------
    def ready(self, request: ReadyRequest) -> ReadyResult:
        kind = self._fault("ready")
        row = SandboxPayment(
            tid=_new_id("T"),
            cid=RECURRING_CID if request.recurring else ONE_TIME_CID,
            partner_order_id=request.partner_order_id,
            partner_user_id=request.partner_user_id,
            item_name=request.item_name,
            quantity=request.quantity,
            total_amount=request.total_amount,
            tax_free_amount=request.tax_free_amount,
            vat_amount=vat_of(request.total_amount, request.tax_free_amount),
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        self._after(kind, "ready")
        url = f"{self.public_base_url}/pay?tid={row.tid}"
        return ReadyResult(
            tid=row.tid,
            redirect_pc_url=url,
            redirect_mobile_url=url,
            redirect_app_url=url,
            created_at=row.created_at,
            raw={"tid": row.tid},
        )

    @moves_money
    def approve(self, request: ApproveRequest) -> ApprovalResult:
        kind = self._fault("approve")
        pg_token = request.pg_token
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._get(session, request.tid)
            if (
                row.partner_order_id != request.partner_order_id
                or row.partner_user_id != request.partner_user_id
            ):
                raise PermanentPaymentError(
                    "주문 정보가 결제 준비 때와 다릅니다",
                    code="-702",
                    raw=_error(-702, "partner info mismatch"),
                )
            if row.status == "SUCCESS_PAYMENT" and row.pg_token == pg_token:
                return _approval(row)  # a repeat of an approval that went through
            if row.status != "SELECT_METHOD" or not row.pg_token or pg_token != row.pg_token:
                raise PermanentPaymentError(
                    "결제 인증 토큰(pg_token)이 이 결제의 것이 아닙니다",
                    code="-780",
                    raw=_error(-780, "approval failure! invalid pg_token"),
                )
            now = clock.now()
            row.status = "SUCCESS_PAYMENT"
            row.aid = _new_id("A")
            row.approved_at = now
            actions = [
                {
                    "aid": row.aid,
                    "approved_at": now.isoformat(),
                    "amount": row.total_amount,
                    "payment_action_type": "PAYMENT",
                }
            ]
            if row.cid == RECURRING_CID:
                row.sid = _new_id("S")
                session.add(SandboxInstrument(sid=row.sid, partner_user_id=row.partner_user_id))
                actions.append(
                    {
                        "aid": row.aid,
                        "approved_at": now.isoformat(),
                        "amount": 0,
                        "payment_action_type": "ISSUED_SID",
                    }
                )
            row.actions = [*row.actions, *actions]
            session.add(row)
            session.commit()
            result = _approval(row)
        self._after(kind, "approve")
        return result

    def lookup(
        self, *, tid: str, partner_order_id: str | None = None, cid: str | None = None
    ) -> LookupResult:
        self._fault("lookup")
        with Session(self.engine, expire_on_commit=False) as session:
            return _lookup(self._get(session, tid, cid=cid))

    def find_by_order(self, *, partner_order_id: str) -> LookupResult | None:
        self._fault("find_by_order")
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.exec(
                select(SandboxPayment)
                .where(SandboxPayment.partner_order_id == partner_order_id)
                .order_by(SandboxPayment.created_at.desc())  # type: ignore[attr-defined]
            ).first()
            return None if row is None else _lookup(row)

    @moves_money
    def cancel(self, request: CancelRequest) -> CancelResult:
        kind = self._fault("cancel")
        cancel_amount, cancel_tax_free_amount = request.cancel_amount, request.cancel_tax_free_amount
        idempotency_key = request.idempotency_key
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._get(session, request.tid, for_update=True, cid=request.cid)
            for action in row.actions:
                if action.get("idempotency_key") == idempotency_key:  # a repeat returns the first result
                    return _cancel_result(row, action["amount"], action["canceled_at"])
            if row.status not in ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT"):
                raise PermanentPaymentError(
                    f"취소할 수 없는 상태입니다 ({row.status})",
                    code="-721",
                    raw=_error(-721, "invalid status"),
                )
            available = row.total_amount - row.canceled_amount
            if cancel_amount > available:
                raise PermanentPaymentError(
                    f"취소 가능 금액({available})을 넘습니다",
                    code="-798",
                    raw=_error(-798, "cancel amount exceeds cancel_available_amount"),
                )
            if cancel_tax_free_amount > row.tax_free_amount - row.canceled_tax_free_amount:
                raise PermanentPaymentError(
                    "면세 취소 금액이 올바르지 않습니다",
                    code="-798",
                    raw=_error(-798, "invalid cancel_tax_free_amount"),
                )
            now = clock.now()
            row.canceled_amount += cancel_amount
            row.canceled_tax_free_amount += cancel_tax_free_amount
            row.status = (
                "CANCEL_PAYMENT" if row.canceled_amount == row.total_amount else "PART_CANCEL_PAYMENT"
            )
            row.actions = [
                *row.actions,
                {
                    "aid": _new_id("A"),
                    "approved_at": now.isoformat(),
                    "amount": cancel_amount,
                    "payment_action_type": "CANCEL",
                    "idempotency_key": idempotency_key,
                    "canceled_at": now.isoformat(),
                    "reason": request.reason,
                },
            ]
            session.add(row)
            session.commit()
            result = _cancel_result(row, cancel_amount, now.isoformat())
        self._after(kind, "cancel")
        return result

    @moves_money
    def charge(self, request: ChargeRequest) -> ApprovalResult:
        kind = self._fault("charge")
        instrument_ref, idempotency_key = request.instrument_ref, request.idempotency_key
        total_amount, tax_free_amount = request.total_amount, request.tax_free_amount
        now = clock.now()
        aid = _new_id("A")
        row = {
            "tid": _new_id("T"),
            "cid": RECURRING_CID,
            "partner_order_id": request.partner_order_id,
            "partner_user_id": request.partner_user_id,
            "item_name": request.item_name,
            "quantity": 1,
            "total_amount": total_amount,
            "tax_free_amount": tax_free_amount,
            "vat_amount": vat_of(total_amount, tax_free_amount),
            "status": "SUCCESS_PAYMENT",
            "method": "CARD",
            "aid": aid,
            "sid": instrument_ref,
            "charge_key": idempotency_key,
            "canceled_amount": 0,
            "canceled_tax_free_amount": 0,
            "actions": [
                {
                    "aid": aid,
                    "approved_at": now.isoformat(),
                    "amount": total_amount,
                    "payment_action_type": "PAYMENT",
                }
            ],
            "created_at": now,
            "approved_at": now,
        }
        # One statement (insert if the SID is active and the key is new), built once, on one
        # connection: the sandbox stands in for a remote server and must not be what a
        # 500-charges-a-second run measures.
        with _charge_connection(self.engine) as connection:
            inserted = connection.execute(
                _charge_statement(connection.dialect.name), {**row, "instrument": instrument_ref}
            ).first()
            if inserted is None:
                existing = connection.execute(_PAYMENT_BY_CHARGE_KEY, {"key": idempotency_key}).first()
                if existing is not None:  # a repeat of a charge that went through
                    return _approval(existing)  # type: ignore[arg-type]
                raise PermanentPaymentError(
                    "유효하지 않은 정기결제 키(SID)입니다", code="-796", raw=_error(-796, "invalid sid")
                )
        result = ApprovalResult(
            tid=row["tid"],
            aid=aid,
            sid=instrument_ref,
            method="CARD",
            total_amount=total_amount,
            tax_free_amount=tax_free_amount,
            vat_amount=row["vat_amount"],
            approved_at=now,
            raw={"tid": row["tid"], "aid": aid, "sid": instrument_ref},
        )
        self._after(kind, "charge")
        return result

    def deactivate(self, *, instrument_ref: str) -> None:
        self._fault("deactivate")
        with Session(self.engine, expire_on_commit=False) as session:
            instrument = session.get(SandboxInstrument, instrument_ref)
            if instrument is None:
                raise PermanentPaymentError("없는 SID입니다", code="-796", raw=_error(-796, "invalid sid"))
            instrument.status = "INACTIVE"
            instrument.inactivated_at = clock.now()
            session.add(instrument)
            session.commit()

    # -- the sandbox payment page (what KakaoPay's own page does for a real customer) ----------
    def open(self, tid: str) -> str:
        return self._move(tid, "OPEN_PAYMENT", allowed=("READY", "OPEN_PAYMENT", "QUIT_PAYMENT"))

    def select_method(self, tid: str, method: str) -> str:
        """The customer picks CARD or MONEY and authenticates: returns the pg_token for approve."""
        if method not in ("CARD", "MONEY"):
            raise PermanentPaymentError(f"알 수 없는 결제 수단입니다: {method}")
        token = secrets.token_hex(10)
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._get(session, tid, for_update=True)
            if row.status not in ("READY", "OPEN_PAYMENT", "SELECT_METHOD"):
                raise PermanentPaymentError(f"이미 끝난 결제입니다 ({row.status})")
            row.status, row.method, row.pg_token = "SELECT_METHOD", method, token
            session.add(row)
            session.commit()
        return token

    def quit(self, tid: str) -> str:
        return self._move(tid, "QUIT_PAYMENT", allowed=PRE_PAYMENT_STATUSES)

    def fail(self, tid: str) -> str:
        return self._move(tid, "FAIL_PAYMENT", allowed=PRE_PAYMENT_STATUSES)

    def _move(self, tid: str, status: str, *, allowed: tuple[str, ...]) -> str:
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._get(session, tid, for_update=True)
            if row.status in allowed:
                row.status = status
                session.add(row)
                session.commit()
            return row.status

    @staticmethod
    def _get(
        session: Session, tid: str, *, for_update: bool = False, cid: str | None = None
    ) -> SandboxPayment:
        """The payment by tid; like KakaoPay, one made under another CID is not found (-701)."""
        statement = select(SandboxPayment).where(SandboxPayment.tid == tid)
        if for_update:
            statement = statement.with_for_update()
        row = session.exec(statement).first()
        if row is None or (cid is not None and row.cid != cid):
            raise PermanentPaymentError(
                f"없는 결제입니다 (tid {tid})", code="-701", raw=_error(-701, "tid not found")
            )
        return row


@contextlib.contextmanager
def _charge_connection(engine: Engine) -> Iterator[Connection]:
    """Where the sandbox writes a charge: one transaction on SQLite; on PostgreSQL its own pool.

    That pool is autocommit with synchronous_commit off and no pre-ping, so a charge is one round
    trip (the app's pool would add a ping, BEGIN, SET and COMMIT, and wait ~4 ms on the WAL flush).
    The sandbox's durability is not ours: a real gateway keeps its own books, and our exactly-once
    rests on our rows and the lookup by order id, which work the same if the sandbox lost a row.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            yield connection
        return
    with _gateway_engine(engine.url.render_as_string(hide_password=False)).connect() as connection:
        yield connection


@functools.cache
def _gateway_engine(url: str) -> Engine:
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=4,
        max_overflow=8,
        connect_args={"options": "-c synchronous_commit=off"},
    )


def _approval(row: SandboxPayment) -> ApprovalResult:
    return ApprovalResult(
        tid=row.tid,
        aid=row.aid,
        sid=row.sid,
        method=row.method,
        total_amount=row.total_amount,
        tax_free_amount=row.tax_free_amount,
        vat_amount=row.vat_amount,
        approved_at=row.approved_at,
        raw={"tid": row.tid, "aid": row.aid, "sid": row.sid},
    )


def _lookup(row: SandboxPayment) -> LookupResult:
    paid = row.status in ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")
    return LookupResult(
        tid=row.tid,
        status=row.status,
        total_amount=row.total_amount,
        canceled_amount=row.canceled_amount,
        cancel_available_amount=(row.total_amount - row.canceled_amount) if paid else 0,
        approved_at=row.approved_at,
        raw={
            "partner_order_id": row.partner_order_id,
            "payment_action_details": row.actions,
            "payment_method_type": row.method,
            "aid": row.aid,
            "sid": row.sid,
        },
    )


def _cancel_result(row: SandboxPayment, amount: int, canceled_at: str) -> CancelResult:
    return CancelResult(
        tid=row.tid,
        status=row.status,
        approved_cancel_amount=amount,
        canceled_amount=row.canceled_amount,
        cancel_available_amount=row.total_amount - row.canceled_amount,
        canceled_at=clock.parse_instant(canceled_at),
        raw={"tid": row.tid},
    )
