"""Formula cells in every CSV download; LIKE wildcards, huge and NUL searches (issue 16)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.errors import ValidationFailed
from core.inquiries import queue as inquiries
from core.messaging import service
from core.models import Customer
from core.safe_text import MAX_QUERY_CHARS, csv_cell, csv_text, search_words
from tests.ui_helpers import open_app
from ui.sales_view import csv_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("https://phish.example","환불")', '\'=HYPERLINK("https://phish.example","환불")'),
        ("+821012345678", "'+821012345678"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("김철수", "김철수"),
        ("a=b", "a=b"),
        ("", ""),
        (-1000, -1000),  # a negative amount is a number, not a formula
        (39000, 39000),
        (None, None),
    ],
)
def test_formula_cells_are_shown_as_text(value: object, shown: object) -> None:
    assert csv_cell(value) == shown


def test_every_download_reads_back_as_the_typed_text() -> None:
    name = '=HYPERLINK("https://phish.example","환불")'
    sales = csv_bytes([{"고객": name, "금액": -1000}]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(sales)))[1] == ["'" + name, "-1000"]
    assert list(csv.reader(io.StringIO(csv_text(["담당자"], [[name]]))))[1] == ["'" + name]


def test_no_download_writes_csv_by_itself() -> None:
    """One helper for every CSV download: no other module writes CSV (the importer only reads it)."""
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("pages/*.py")]:
        if path.name in ("safe_text.py", "import_rows.py"):
            continue
        source = path.read_text()
        for writer in ("csv.writer(", "csv.DictWriter(", ".to_csv("):
            assert writer not in source, f"{path.relative_to(ROOT)} writes CSV without core.safe_text.csv_text"


@pytest.mark.parametrize(
    ("query", "ok"),
    [("김", True), ("x" * MAX_QUERY_CHARS, True), ("x" * (MAX_QUERY_CHARS + 1), False), ("x" * 50_000, False),
     ("a\x00b", False), ("a\nb", False), ("a\x1bb", False), ("  김  ", True), ("", True)],
)
def test_search_words_at_the_edge(query: str, ok: bool) -> None:
    if ok:
        assert search_words(query) == query.strip()
    else:
        with pytest.raises(ValidationFailed):
            search_words(query)


def test_wildcards_match_themselves(engine: Engine) -> None:
    with Session(engine) as session:
        for name in ("100%_할인", "김철수", "이_영희", "박%수"):
            session.add(Customer(name=name, phone=None))
        session.commit()
        names = lambda q: sorted(c.name for c in inquiries.find_customers(session, q))  # noqa: E731
        assert names("%") == ["100%_할인", "박%수"]
        assert names("_") == ["100%_할인", "이_영희"]
        assert names("%_") == ["100%_할인"]
        found = service.list_messages(session, service.MessageFilter(customer_query="%"))
        assert found == []  # no message rows: but the wildcard did not match every customer either
        for bad in ("x" * 50_000, "a\x00b"):
            with pytest.raises(ValidationFailed):
                inquiries.find_customers(session, bad)
            with pytest.raises(ValidationFailed):
                service.list_messages(session, service.MessageFilter(customer_query=bad))


@pytest.mark.parametrize("query", ["x" * 50_000, "a\x00b"], ids=["50000-chars", "nul"])
def test_the_message_search_shows_a_message_not_a_crash(sqlite_engine: Engine, sqlite_actors, query: str) -> None:  # type: ignore[no-untyped-def]
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/messages.py")
    at.text_input(key="msg_customer").input(query).run()
    assert not at.exception
    assert any("검색어" in e.value for e in at.error)


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://shop:s3cret-pw@db.example:54x32/shop", "postgres ql://shop:s3cret-pw@db/shop",
     "mysql://shop:s3cret-pw@db/shop", "postgresql://shop:s3cret-pw@@db/shop"],
    ids=["bad-port", "not-a-url", "mysql", "double-at"],
)
def test_a_malformed_database_url_never_shows_its_password(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import ConfigError, get_settings, load_settings

    try:
        load_settings({"DATABASE_URL": url})
    except ConfigError as exc:
        assert "s3cret-pw" not in str(exc) and "DATABASE_URL" in str(exc)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
        shown = " ".join(str(e.value) for e in at.error) + str(at.exception)
        assert "s3cret-pw" not in shown
    finally:
        get_settings.cache_clear()


def test_uploads_are_capped_for_every_role() -> None:
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] <= 10
    for path in ROOT.glob("pages/*.py"):
        source = path.read_text()
        for call in source.split("st.file_uploader(")[1:]:
            assert "max_upload_size=" in call[:300], f"{path.name}: an uploader without max_upload_size"
