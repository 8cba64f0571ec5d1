"""One person, one customer: merge the rows that share a canonical mobile number into one.

Who is kept: the row that already carries the number in `customer.mobile` (the unique index allows
one), else the oldest row (lowest id). Every other row of the number ("the merged rows") is folded
into it and deleted:

- Everything that points at a customer follows the person: orders, payments, payment links,
  reviews, inquiries, subscriptions, messages, campaign clicks, campaign recipients (one per
  campaign: the earliest row is kept), ad send slots (renumbered per KST day, so today's ads of
  all the rows count against the one daily limit), the purchase summaries (recomputed from the
  orders), the analytics lifetime rows (marked for the rollup repair), the last-purchase days of the
  repurchase figures (the later day wins).
- Consent goes to the strictest: if any row has opted out of advertising (and did not consent
  again after it on that row), the person has opted out: the latest such opt-out is kept and ad and
  night consent are cleared. Otherwise the kept row's ad and night consent stand as they are; a
  consent given only on a merged row is not carried over (consent is given by a person to a
  record we can show, and the kept row is the one we show).
- The kept row's name and channel-friend flag stay; its phone becomes the display form.
- Each merged number writes one audit row (`customer.merge`, entity the kept customer) with what
  every row was before, so the owner can read on 설정 who was merged and why.

The same function runs in migration 0002 (before the unique index exists, every row's mobile is
still empty) and from `python -m core.cli customers merge` (after a numbering-plan update, rows
that were "not a mobile number" may become one). It is set-based: the numbers are computed in
Python (phonenumbers), then a temporary map table drives one UPDATE ... FROM per referencing
table, so 200,000 customers take seconds (bench/customers.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from core import clock
from core.accounts.actor import Actor, require_role
from core.customers.identity import canonical_mobile, format_mobile
from core.models import AdSendSlot, AnalyticsDirtyCustomer, AuditLog, Customer, CustomerProductLast, Role

C = Customer.__table__.c  # type: ignore[attr-defined]
SLOT = AdSendSlot.__table__  # type: ignore[attr-defined]
LAST = CustomerProductLast.__table__  # type: ignore[attr-defined]

MERGE_ACTION = "customer.merge"
SYSTEM_ACTOR = "시스템 (고객 통합)"
_CHUNK = 5000

# Tables whose customer_id simply follows the person (no uniqueness on it).
REPOINT_TABLES = (
    "orders",
    "payment",
    "payment_link",
    "review",
    "inquiry",
    "subscription",
    "message",
    "campaign_click",
    "inbound_request",
    "coupon",  # a merged row's coupons and points are the person's: they follow them
    "point_entry",
)
# Handled one by one below (a uniqueness involving customer_id, or derived rows):
# campaign_recipient, ad_send_slot, customer_summary, customer_product_summary,
# customer_sales, customer_month, customer_product_last, analytics_dirty_customer, referral_code (and
# referral's referrer_id and referred_customer_id).
# tests/customers/test_merge.py checks that this list covers every customer_id column.
SPECIAL_TABLES = (
    "campaign_recipient",
    "ad_send_slot",
    "customer_summary",
    "customer_product_summary",
    "customer_sales",
    "customer_month",
    "customer_product_last",
    "analytics_dirty_customer",
    "referral_code",
)


@dataclass
class MergeReport:
    """What one run did: numbers identified, numbers whose rows were merged, rows folded away."""

    checked: int = 0  # customer rows with a phone
    identified: int = 0  # rows whose phone/mobile columns were rewritten
    numbers_merged: int = 0
    rows_merged: int = 0
    opted_out: int = 0  # merged numbers that ended opted out because some row had opted out
    kept_ids: list[int] = field(default_factory=list)


_MAP = sa.Table(
    "cd_merge_map",
    sa.MetaData(),
    sa.Column("dup_id", sa.Integer, primary_key=True),
    sa.Column("keep_id", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
_FIX = sa.Table(
    "cd_phone_fix",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mobile", sa.String(11)),
    sa.Column("phone", sa.String(200)),
    prefixes=["TEMPORARY"],
)


def merge_duplicates(
    connection: Connection,
    *,
    actor_id: int | None = None,
    actor_name: str = SYSTEM_ACTOR,
    now: datetime | None = None,
) -> MergeReport:
    """Give every customer its canonical mobile and fold rows of one number into one (see module doc).

    Runs in the caller's transaction on `connection`; the caller checks the role (merge_all does)."""
    now = now or clock.now()
    report = MergeReport()
    rows = connection.execute(
        sa.select(C.id, C.phone, C.mobile).where(sa.or_(C.phone.is_not(None), C.mobile.is_not(None)))
    ).all()
    by_number: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    wanted: dict[int, tuple[str | None, str | None]] = {}
    for cid, phone, mobile in rows:
        report.checked += 1
        number = canonical_mobile(phone) if phone is not None else mobile
        if number is not None:
            by_number[number].append((cid, mobile))
        display = format_mobile(number) if number is not None else phone
        if number != mobile or display != phone:
            wanted[cid] = (number, display)
    merge_map: dict[int, int] = {}
    groups: dict[int, list[int]] = {}
    for number, members in by_number.items():
        if len(members) < 2:
            continue
        holders = [cid for cid, mobile in members if mobile == number]
        keep = holders[0] if holders else min(cid for cid, _ in members)
        dups = sorted(cid for cid, _ in members if cid != keep)
        groups[keep] = dups
        for dup in dups:
            merge_map[dup] = keep
            wanted.pop(dup, None)
    if merge_map:
        _fold(connection, merge_map, groups, report, actor_id=actor_id, actor_name=actor_name, now=now)
    if wanted:
        _FIX.create(connection)
        try:
            items = [{"id": cid, "mobile": m, "phone": p} for cid, (m, p) in wanted.items()]
            for i in range(0, len(items), _CHUNK):
                connection.execute(_FIX.insert(), items[i : i + _CHUNK])
            connection.execute(
                sa.text(
                    "UPDATE customer SET mobile = f.mobile, phone = f.phone FROM cd_phone_fix f "
                    "WHERE f.id = customer.id"
                )
            )
        finally:
            _FIX.drop(connection)
        report.identified = len(wanted)
    return report


def _fold(
    connection: Connection,
    merge_map: dict[int, int],
    groups: dict[int, list[int]],
    report: MergeReport,
    *,
    actor_id: int | None,
    actor_name: str,
    now: datetime,
) -> None:
    """Re-point everything of the merged rows at the kept rows, settle consent, audit, delete."""
    before = _consent_rows(connection, [*groups, *merge_map])
    _MAP.create(connection)
    try:
        items = [{"dup_id": d, "keep_id": k} for d, k in merge_map.items()]
        for i in range(0, len(items), _CHUNK):
            connection.execute(_MAP.insert(), items[i : i + _CHUNK])
        # Migration 0002 runs this before later migrations made their tables: only the ones there.
        present = set(sa.inspect(connection).get_table_names())
        for table in (t for t in REPOINT_TABLES if t in present):
            connection.execute(
                sa.text(
                    f"UPDATE {table} SET customer_id = m.keep_id FROM cd_merge_map m "  # noqa: S608 (constant names)
                    f"WHERE m.dup_id = {table}.customer_id"
                )
            )
        _merge_campaign_recipients(connection, merge_map)
        _merge_ad_slots(connection, merge_map)
        if "referral_code" in present:
            _merge_referrals(connection)
        _merge_last_purchase_days(connection, merge_map)
        _mark_analytics_dirty(connection, [*groups, *merge_map])
    finally:
        _MAP.drop(connection)
    _refresh_summaries(connection, [*groups, *merge_map])
    audit_rows = []
    consent_updates = []
    for keep, dups in groups.items():
        members = [before[keep], *(before[d] for d in dups)]
        consent = strictest_consent(members)
        if consent["ad_opt_out_at"] is not None and _opted_out(consent):
            report.opted_out += 1
        consent_updates.append({"k": keep, **{f"v_{key}": value for key, value in consent.items()}})
        audit_rows.append(
            {
                "at": now,
                "actor_id": actor_id,
                "actor_name": actor_name,
                "action": MERGE_ACTION,
                "entity_type": "customer",
                "entity_id": str(keep),
                "detail": {
                    "kept": _jsonable(before[keep]),
                    "merged": [_jsonable(before[d]) for d in dups],
                    "consent": _jsonable(consent),
                },
            }
        )
    dup_ids = sorted(merge_map)
    for i in range(0, len(dup_ids), _CHUNK):
        connection.execute(
            sa.text("DELETE FROM customer WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": dup_ids[i : i + _CHUNK]},
        )
    connection.execute(
        Customer.__table__.update()  # type: ignore[attr-defined]
        .where(C.id == sa.bindparam("k"))
        .values(
            ad_consent_at=sa.bindparam("v_ad_consent_at"),
            night_ad_consent_at=sa.bindparam("v_night_ad_consent_at"),
            ad_opt_out_at=sa.bindparam("v_ad_opt_out_at"),
        ),
        consent_updates,
    )
    for i in range(0, len(audit_rows), _CHUNK):
        connection.execute(AuditLog.__table__.insert(), audit_rows[i : i + _CHUNK])  # type: ignore[attr-defined]
    report.numbers_merged = len(groups)
    report.rows_merged = len(merge_map)
    report.kept_ids = sorted(groups)


def _opted_out(row: dict[str, Any]) -> bool:
    """The compliance rule (core.messaging.compliance.has_opted_out): an opt-out counts unless the
    customer consented again after it, on that row."""
    out, consent = row.get("ad_opt_out_at"), row.get("ad_consent_at")
    if out is None:
        return False
    return consent is None or _utc(out) >= _utc(consent)


def strictest_consent(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The consent of one person from their rows, kept row first (a pure rule, tested by table).

    An opt-out anywhere wins (the latest one is kept, consent cleared); otherwise the kept row's
    consent stands as it is and a merged row's consent is not carried over."""
    outs = [_utc(m["ad_opt_out_at"]) for m in members if _opted_out(m)]
    if outs:
        return {"ad_consent_at": None, "night_ad_consent_at": None, "ad_opt_out_at": max(outs)}
    kept = members[0]
    consent = kept.get("ad_consent_at")
    return {
        "ad_consent_at": consent,
        "night_ad_consent_at": kept.get("night_ad_consent_at") if consent is not None else None,
        "ad_opt_out_at": kept.get("ad_opt_out_at"),
    }


def _consent_rows(connection: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    columns = (C.id, C.name, C.phone, C.ad_consent_at, C.night_ad_consent_at, C.ad_opt_out_at, C.created_at)
    for i in range(0, len(ids), _CHUNK):
        query = sa.select(*columns).where(C.id.in_(ids[i : i + _CHUNK]))
        for row in connection.execute(query).mappings():
            out[row["id"]] = {
                key: (_utc(value) if isinstance(value, datetime) else value) for key, value in row.items()
            }
    return out


def _merge_campaign_recipients(connection: Connection, merge_map: dict[int, int]) -> None:
    """One recipient row per campaign and person: the earliest row stays, the others go."""
    people = sorted({*merge_map, *merge_map.values()})
    query = sa.text(
        "SELECT id, campaign_id, customer_id FROM campaign_recipient WHERE customer_id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    seen: set[tuple[int, int]] = set()
    drop: list[int] = []
    rows = []
    for i in range(0, len(people), _CHUNK):
        rows += connection.execute(query, {"ids": people[i : i + _CHUNK]}).all()
    for rid, campaign, customer in sorted(rows):
        key = (campaign, merge_map.get(customer, customer))
        if key in seen:
            drop.append(rid)
        seen.add(key)
    for i in range(0, len(drop), _CHUNK):
        connection.execute(
            sa.text("DELETE FROM campaign_recipient WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": drop[i : i + _CHUNK]},
        )
    connection.execute(
        sa.text(
            "UPDATE campaign_recipient SET customer_id = m.keep_id FROM cd_merge_map m "
            "WHERE m.dup_id = campaign_recipient.customer_id"
        )
    )


def _merge_referrals(connection: Connection) -> None:
    """One referral code per person: the kept row's own, else the lowest-numbered merged one (links
    already shared keep working); other merged codes go. Visits and credits name the kept person."""
    connection.execute(
        sa.text(
            "UPDATE referral_code SET customer_id = (SELECT m.keep_id FROM cd_merge_map m "
            "WHERE m.dup_id = referral_code.customer_id) WHERE id IN (SELECT MIN(rc.id) FROM referral_code rc "
            "JOIN cd_merge_map m ON m.dup_id = rc.customer_id WHERE NOT EXISTS (SELECT 1 FROM referral_code k "
            "WHERE k.customer_id = m.keep_id) GROUP BY m.keep_id)"
        )
    )
    connection.execute(sa.text("DELETE FROM referral_code WHERE customer_id IN (SELECT dup_id FROM cd_merge_map)"))
    for column in ("referrer_id", "referred_customer_id"):
        connection.execute(
            sa.text(
                f"UPDATE referral SET {column} = m.keep_id FROM cd_merge_map m "  # noqa: S608 (constant names)
                f"WHERE m.dup_id = referral.{column}"
            )
        )


def _merge_ad_slots(connection: Connection, merge_map: dict[int, int]) -> None:
    """The person's ads of a day count once against one limit: slots renumbered 1..n per day."""
    people = sorted({*merge_map, *merge_map.values()})
    rows = []
    for i in range(0, len(people), _CHUNK):
        query = sa.select(SLOT.c.id, SLOT.c.customer_id, SLOT.c.kst_day)
        rows += connection.execute(query.where(SLOT.c.customer_id.in_(people[i : i + _CHUNK]))).all()
    if not any(customer in merge_map for _, customer, _ in rows):
        return
    numbered: dict[tuple[int, Any], int] = defaultdict(int)
    updates = []
    for sid, customer, day in sorted(rows, key=lambda r: (r[2], r[0])):
        keep = merge_map.get(customer, customer)
        numbered[(keep, day)] += 1
        updates.append({"i": sid, "c": keep, "s": numbered[(keep, day)], "tmp": -sid})
    # Two steps, so no intermediate state collides with the unique (customer, day, slot).
    by_id = SLOT.c.id == sa.bindparam("i")
    connection.execute(SLOT.update().where(by_id).values(slot=sa.bindparam("tmp")), updates)
    connection.execute(
        SLOT.update().where(by_id).values(customer_id=sa.bindparam("c"), slot=sa.bindparam("s")), updates
    )


def _merge_last_purchase_days(connection: Connection, merge_map: dict[int, int]) -> None:
    """customer_product_last (repurchase gaps): the kept row gets the later day per product."""
    people = sorted({*merge_map, *merge_map.values()})
    rows = []
    for i in range(0, len(people), _CHUNK):
        query = sa.select(LAST.c.customer_id, LAST.c.product_id, LAST.c.last_day)
        rows += connection.execute(query.where(LAST.c.customer_id.in_(people[i : i + _CHUNK]))).all()
    if not any(customer in merge_map for customer, _, _ in rows):
        return
    last: dict[tuple[int, int], Any] = {}
    for customer, product, day in rows:
        key = (merge_map.get(customer, customer), product)
        last[key] = max(last[key], day) if key in last else day
    for i in range(0, len(people), _CHUNK):
        connection.execute(LAST.delete().where(LAST.c.customer_id.in_(people[i : i + _CHUNK])))
    connection.execute(
        LAST.insert(), [{"customer_id": c, "product_id": p, "last_day": d} for (c, p), d in last.items()]
    )


def _mark_analytics_dirty(connection: Connection, ids: list[int]) -> None:
    """The lifetime rollups (customer_sales, customer_month, cohorts) of every row involved are
    recomputed by the rollup repair (core.analytics.repair): the merged rows' go, the kept rows'
    now include everything. Marks are by id and carry no foreign key, so they outlive the delete."""
    dirty = AnalyticsDirtyCustomer.__table__  # type: ignore[attr-defined]
    present: set[int] = set()
    for i in range(0, len(ids), _CHUNK):
        query = sa.select(dirty.c.customer_id).where(dirty.c.customer_id.in_(ids[i : i + _CHUNK]))
        present |= set(connection.execute(query).scalars())
    now = clock.now()
    fresh = [{"customer_id": c, "marked_at": now} for c in sorted(set(ids) - present)]
    if fresh:
        connection.execute(dirty.insert(), fresh)


def _refresh_summaries(connection: Connection, ids: list[int]) -> None:
    """customer_summary and customer_product_summary of the kept rows from their orders; the merged
    rows' summaries are deleted (they have no orders left)."""
    from core.customers import summary

    with Session(bind=connection) as session:
        summary.refresh(session, ids)
        session.flush()


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=clock.UTC)
    return value


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (value.isoformat() if isinstance(value, datetime) else value) for key, value in row.items()}


def merge_all(session: Session, actor: Actor | None) -> MergeReport:
    """Owner (or the operator CLI, actor None): identify every number again and merge duplicates.

    Needed after a numbering-plan update (phonenumbers) turns a kept "not a mobile" into a mobile
    another customer already has; audited per merged number like the migration."""
    if actor is not None:
        require_role(actor, Role.OWNER)
    connection = session.connection()
    return merge_duplicates(
        connection,
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.name if actor is not None else SYSTEM_ACTOR,
    )


@dataclass(frozen=True)
class MergeRecord:
    """One merged number as the owner reads it on 설정."""

    at: datetime
    actor_name: str
    kept_id: int
    kept_name: str
    kept_phone: str
    merged: list[dict[str, Any]]
    opted_out: bool


def merge_history(session: Session, actor: Actor, *, limit: int = 200) -> list[MergeRecord]:
    """The latest merges, newest first (owner only: it names people and numbers)."""
    require_role(actor, Role.OWNER)
    audit_log = AuditLog.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(audit_log.c.at, audit_log.c.actor_name, audit_log.c.entity_id, audit_log.c.detail)
        .where(audit_log.c.action == MERGE_ACTION)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    ).all()
    out = []
    for at, actor_name, entity_id, detail in rows:
        kept = (detail or {}).get("kept") or {}
        consent = (detail or {}).get("consent") or {}
        out.append(
            MergeRecord(
                at=_utc(at),
                actor_name=actor_name,
                kept_id=int(entity_id),
                kept_name=str(kept.get("name") or ""),
                kept_phone=str(kept.get("phone") or ""),
                merged=list((detail or {}).get("merged") or []),
                opted_out=consent.get("ad_opt_out_at") is not None and consent.get("ad_consent_at") is None,
            )
        )
    return out


def not_mobile_count(session: Session) -> int:
    """Customers whose phone is not a mobile number (kept as given; never message recipients)."""
    return int(
        session.execute(
            sa.select(sa.func.count()).select_from(Customer.__table__).where(C.phone.is_not(None), C.mobile.is_(None))
        ).scalar_one()
    )
