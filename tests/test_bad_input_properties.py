"""Bad input, generated: every import, form and configuration parser gets at least 1,000 hypothesis
cases (BAD_INPUT_EXAMPLES, default 1000; set it lower for a quick local run).

The contract for each: a valid result, or a known error type carrying a readable message; never an
unexpected exception; and for the parsers that write, nothing written when they refuse.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

from core import campaigns, clock
from core.accounts import auth
from core.accounts.actor import Actor
from core.config import ConfigError, Settings, load_settings
from core.db import make_engine
from core.errors import ChannelDeskError, ValidationFailed
from core.inquiries import policy as sla_policy
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.messaging import templates
from core.messaging.phone import InvalidPhone, normalize_mobile
from core.models import Customer, Role
from core.payments import import_rows, order_import
from core.payments.orders import MAX_AMOUNT, check_amount

EXAMPLES = int(os.environ.get("BAD_INPUT_EXAMPLES", "1000"))
THOROUGH = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
OWNER = Actor(id=None, name="사장님", role=Role.OWNER)

# Text that tends to break parsers: separators, full-width digits, Korean, control and odd characters.
NASTY = st.text(
    alphabet=st.sampled_from(list("0123456789０１２３-+.,:/ ~()#{}\"'\t\n\r\x00가나휴무원₩eE_ab")) | st.characters(),
    max_size=40,
)


def _readable(exc: BaseException) -> None:
    message = str(exc).strip()
    assert message, f"{type(exc).__name__} without a message"
    assert "Traceback" not in message


@pytest.fixture(scope="module")
def store(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("bad_input") / "channeldesk.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        session.add(Customer(name="기존고객", phone="010-1111-2222"))
        session.commit()
    yield engine
    engine.dispose()


TABLES = sorted(SQLModel.metadata.tables.items())
COUNT_ALL = select(*[select(func.count()).select_from(table).scalar_subquery().label(name) for name, table in TABLES])


def _counts(engine: Engine) -> dict[str, int]:
    """Rows per table, in one statement (it runs for every generated case)."""
    with engine.connect() as connection:
        return dict(connection.execute(COUNT_ALL).mappings().one())


@contextlib.contextmanager
def _refusal_writes_nothing(engine: Engine) -> Iterator[Session]:
    """Yields a session; if the body refuses (a known error), whatever the service left in the session is
    committed anyway, and every table must still hold what it held before."""
    before = _counts(engine)
    with Session(engine) as session:
        try:
            yield session
        except ChannelDeskError as exc:
            _readable(exc)
            session.commit()
            assert _counts(engine) == before, f"refused ({exc}) but wrote rows"
        else:
            session.rollback()  # a valid input: keep the store the same for the next example


# --------------------------------------------------------------------------- CSV order import

HEADERS = [name for names in import_rows.COLUMNS.values() for name in names] + ["", "메모", "주문 번호"]
CELL = st.one_of(
    NASTY,
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["2026-11-01 14:30", "2026/11/01", "2026.13.40", "0000-00-00", "1e9", "32,000", "-1",
                     "010-1234-5678", "+82 10 1234 5678", "카드", "MONEY", "paid", "환불 완료", "취소", "?"]),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))  # not text at all
    columns = draw(st.lists(st.sampled_from(HEADERS), min_size=0, max_size=12))
    if draw(st.booleans()):  # mostly: every required column present, so the row checks are reached
        columns = [import_rows.COLUMNS[c][draw(st.integers(0, 1))] for c in import_rows.REQUIRED] + columns
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns) + 1), max_size=6))
    buffer = io.StringIO()
    import csv

    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp949"]))
    return buffer.getvalue().encode(encoding, errors="replace")


@THOROUGH
@given(data=csv_files())
def test_csv_order_import_accepts_or_rejects_whole_files(store: Engine, data: bytes) -> None:
    try:
        parsed = import_rows.parse_file(data)
    except order_import.ImportRejected as exc:
        _readable(exc)
        assert exc.errors and all(e.row >= 1 for e in exc.errors)
    else:
        assert parsed.orders or parsed.refund_rows
        for order in parsed.orders.values():
            assert 0 <= order.refunded <= order.total == sum(line.amount for line in order.lines) <= MAX_AMOUNT
            for line in order.lines:
                assert 1 <= line.quantity <= 10_000 and 0 <= line.unit_price <= MAX_AMOUNT and line.amount >= 0
    with _refusal_writes_nothing(store) as session:
        order_import.import_orders(session, OWNER, data)


# --------------------------------------------------------------------------- phone numbers

PHONEISH = st.builds(
    lambda prefix, body, sep: prefix + sep.join(body),
    st.sampled_from(["", "+82", "+82 ", "82", "0", "010", "011", "+1", "(", "０１０"]),
    st.lists(st.text(alphabet="0123456789", min_size=0, max_size=5), max_size=4),
    st.sampled_from(["", "-", " ", ".", ")", "--"]),
)


@THOROUGH
@given(raw=st.one_of(PHONEISH, NASTY, st.none()))
def test_phone_numbers_normalise_or_say_why(raw: str | None) -> None:
    try:
        phone = normalize_mobile(raw)
    except InvalidPhone as exc:
        _readable(exc)
    else:
        import re

        assert re.fullmatch(r"01[016789]-\d{3,4}-\d{4}", phone), phone
        assert normalize_mobile(phone) == phone  # normalising twice changes nothing


# --------------------------------------------------------------------------- amounts

AMOUNTS = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    NASTY,
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
)


@THOROUGH
@given(value=AMOUNTS, allow_zero=st.booleans())
def test_amounts_are_whole_won_within_limits_or_refused(value: Any, allow_zero: bool) -> None:
    try:
        amount = check_amount(value, "환불 금액", allow_zero=allow_zero)
    except ValidationFailed as exc:
        _readable(exc)
        assert "환불 금액" in str(exc)
    else:
        assert type(amount) is int and (0 if allow_zero else 1) <= amount <= MAX_AMOUNT


# --------------------------------------------------------------------------- SLA and business hours

HHMM = st.one_of(
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(-1, 25), st.integers(-1, 61)),
    NASTY,
)
HOURS_TEXT = st.one_of(
    NASTY,
    st.lists(st.builds(lambda a, b, sep: f"{a}{sep}{b}", HHMM, HHMM, st.sampled_from(["-", "~", " - ", "--"])),
             max_size=4).map(", ".join),
    st.sampled_from(["휴무", "-", "", "09:00-18:00", "24:00-25:00", "18:00-09:00", "09:00-12:00, 11:00-13:00"]),
)


@THOROUGH
@given(text=HOURS_TEXT)
def test_business_hours_text_parses_or_says_why(text: str) -> None:
    try:
        windows = sla_policy.parse_hours_text(text)
    except ValidationFailed as exc:
        _readable(exc)
    else:
        assert sla.parse_windows(windows) is not None
        if windows:
            assert sla_policy.parse_hours_text(sla_policy.format_hours_text(windows)) == windows


WEEK = st.dictionaries(
    st.one_of(st.sampled_from([str(d) for d in range(0, 9)]), st.text(max_size=3)),
    st.lists(st.lists(HHMM, min_size=0, max_size=3), max_size=3),
    max_size=8,
)


@THOROUGH
@given(week=WEEK, holidays=st.booleans())
def test_saving_business_hours_validates_before_writing(store: Engine, week: dict, holidays: bool) -> None:  # type: ignore[type-arg]
    with _refusal_writes_nothing(store) as session:
        inquiries.save_business_hours(session, OWNER, week, holidays)


@THOROUGH
@given(
    inquiry_type=st.one_of(st.sampled_from(["payment_error", "double_charge", "refund_request", "other"]), NASTY),
    first=st.one_of(st.integers(-(10**6), 10**7), st.floats(allow_nan=True), st.none(), NASTY),
    resolution=st.one_of(st.integers(-(10**6), 10**7), st.floats(allow_nan=True), st.none()),
    calendar=st.one_of(st.sampled_from(["24/7", "business"]), NASTY),
    share=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2), st.none()),
)
def test_sla_policy_form_validates_before_writing(store: Engine, inquiry_type: str, first: Any, resolution: Any,
                                                  calendar: str, share: Any) -> None:
    with _refusal_writes_nothing(store) as session:
        inquiries.save_policy(session, OWNER, inquiry_type=inquiry_type, first_response_minutes=first,
                               resolution_minutes=resolution, calendar=calendar, at_risk_share=share)


# --------------------------------------------------------------------------- templates and variables

BODY = st.one_of(
    NASTY,
    st.lists(st.one_of(NASTY, st.sampled_from(["#{고객명}", "#{주문번호}", "#{", "}", "#{}", "#{ 고객명 }",
                                              "#{#{x}}", "#{이름}", "#{링크}"])), max_size=8).map("".join),
    st.text(min_size=900, max_size=1100),
)
VALUES = st.dictionaries(st.sampled_from(["고객명", "주문번호", "x", "이름", " 고객명 "]),
                         st.one_of(st.none(), NASTY, st.integers(), st.text(min_size=20, max_size=40)), max_size=4)


@THOROUGH
@given(body=BODY, variables=VALUES)
def test_templates_render_fully_or_say_which_variable(body: str, variables: dict[str, Any]) -> None:
    try:
        text = templates.render(body, variables)
    except templates.TemplateError as exc:
        _readable(exc)
    else:
        assert not templates.variable_names(text) or text.count("#{") <= body.count("#{")
        assert len(text) <= templates.MAX_BODY_CHARS


@THOROUGH
@given(bodies=st.lists(BODY, max_size=7), link=st.one_of(st.none(), st.just(""), st.just("https://shop.example")))
def test_campaign_variants_validate_or_say_why(bodies: list[str], link: str | None) -> None:
    try:
        variants = campaigns.validate_variants(bodies, link_url=link)
    except ValidationFailed as exc:
        _readable(exc)
    else:
        assert 1 <= len(variants) <= campaigns.MAX_VARIANTS


# --------------------------------------------------------------------------- segment rules

RULE_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), NASTY,
                       st.lists(st.one_of(st.integers(-5, 10**6), NASTY), max_size=3),
                       st.floats(allow_nan=True, allow_infinity=True))
RULE = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.one_of(st.sampled_from(list(campaigns.RULE_LABELS)), NASTY),
    st.dictionaries(st.sampled_from(["min_amount", "days", "product_ids", "category", "within_days", "include_never",
                                     "statuses", "value", "min", "max", "junk"]), RULE_VALUE, max_size=4),
)
RULES = st.one_of(
    st.fixed_dictionaries({"include": st.lists(RULE, max_size=3), "exclude": st.lists(RULE, max_size=2)}),
    st.dictionaries(st.sampled_from(["include", "exclude", "x"]), st.one_of(st.none(), st.lists(RULE, max_size=2)),
                    max_size=3),
)


@THOROUGH
@given(rules=RULES)
def test_segment_rules_count_or_say_why_and_saving_writes_nothing_when_refused(store: Engine, rules: dict) -> None:  # type: ignore[type-arg]
    with Session(store) as session:
        try:
            counted = campaigns.count_segment(session, rules)
        except ValidationFailed as exc:
            _readable(exc)
        else:
            assert 0 <= counted.reachable <= counted.total
    with _refusal_writes_nothing(store) as session:
        campaigns.save_segment(session, OWNER, name="생성된 세그먼트", rules=rules)


# --------------------------------------------------------------------------- configuration, roles, --now

ENV_KEYS = [name.upper() for name in Settings.model_fields]


@THOROUGH
@given(environ=st.dictionaries(st.sampled_from(ENV_KEYS), st.one_of(NASTY, st.sampled_from(
    ["sandbox", "toss", "kakaopay", "outbox", "solapi", "0", "-5", "1e3", "sqlite:///x.db", "mysql://x",
     "postgresql://u@h/db", "true", ""])), max_size=6))
def test_configuration_values_load_or_name_the_variable(environ: dict[str, str]) -> None:
    try:
        loaded = load_settings(environ)
    except ConfigError as exc:
        _readable(exc)
        assert any(key in str(exc) for key in environ), str(exc)
    else:
        assert loaded.database_url.split(":", 1)[0].startswith(("sqlite", "postgresql"))


@THOROUGH
@given(value=st.one_of(NASTY, st.sampled_from(["owner", " CS ", "Staff", "admin", "root", ""])))
def test_roles_parse_or_list_the_choices(value: str) -> None:
    try:
        role = auth.parse_role(value)
    except ValidationFailed as exc:
        _readable(exc)
        assert "owner" in str(exc)
    else:
        assert role in Role


INSTANTS = st.one_of(
    NASTY,
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-12-01T09:00+09:00", "2026-12-01", "2026-02-30T00:00", "tomorrow", "2026-12-01T25:00",
                     "2026-12-01T09:00+24:00", "9999-12-31T23:59+09:00", "0001-01-01T00:00-05:00"]),
)


@THOROUGH
@given(text=INSTANTS)
def test_worker_now_parses_or_exits_with_a_message(text: str) -> None:
    """clock.parse_instant either gives an aware UTC instant or a ValueError, which the worker turns into
    exit code 2 and one line on stderr (checked on the invalid ones: a valid one would run the jobs)."""
    try:
        instant = clock.parse_instant(text)
    except (ValueError, OverflowError) as exc:
        from core import worker

        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = worker.main(["--once", f"--now={text}"])
        assert code == 2
        assert "--now" in stderr.getvalue() and "ISO-8601" in stderr.getvalue()
        del exc
    else:
        assert instant.tzinfo is not None and instant.utcoffset() == UTC.utcoffset(datetime.now())


@pytest.mark.parametrize("days", [10**9, 999_999_999, 36_501, -1, float("inf"), "1e9"])
def test_huge_or_odd_day_counts_are_refused_not_overflowed(store: Engine, days: Any) -> None:
    with Session(store) as session, pytest.raises(ValidationFailed):
        campaigns.count_segment(session, {"include": [{"type": "dormant", "days": days}]})
