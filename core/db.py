"""Engine, sessions and schema upgrades for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so the UI and the worker can write at the same time;
writes take the lock up front (BEGIN IMMEDIATE) so two writers queue instead of failing on upgrade.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from core.config import PROJECT_ROOT, get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(RuntimeError):
    """The store cannot be opened or upgraded; the message tells the operator what to fix."""


def _check_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"데이터베이스 폴더를 만들 수 없습니다 (cannot create {folder}): {exc}") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise DatabaseError(f"데이터베이스 파일에 쓸 수 없습니다 (not writable): {path}")
    if not path.exists() and not os.access(folder, os.W_OK):
        raise DatabaseError(f"데이터베이스 폴더에 쓸 수 없습니다 (not writable): {folder}")


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    url = url or get_settings().database_url
    if url.startswith("sqlite"):
        _check_sqlite_path(url)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _install_sqlite_pragmas(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, emit BEGIN (so we can make it IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # read_scope asks for a plain BEGIN: a read then neither waits for nor blocks a writer.
        deferred = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (Streamlit keeps it in st.cache_resource too)."""
    return make_engine(url)


@contextlib.contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error, so nothing is half-written."""
    session = Session(engine or get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


_READ_ONLY = "channeldesk_read_only"


@contextlib.contextmanager
def read_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A read-only unit of work (rolled back at the end): on SQLite a deferred BEGIN, so a login's
    lookups or a session check never queue behind, or hold up, the shop's writes."""
    with (engine or get_engine()).connect() as connection:
        connection.execution_options(**{_READ_ONLY: True})
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
        finally:
            session.expunge_all()  # what was read stays readable after the rollback below
            session.rollback()
            session.close()


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine | None = None) -> None:
    """Bring the schema to the newest migration (the app and the worker call this on start)."""
    engine = engine or get_engine()
    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise DatabaseError(f"데이터베이스를 열 수 없습니다 (cannot open database {engine.url!r}): {exc.orig}") from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))



ANALYZED_TABLES = ("orders", "order_item", "payment", "refund", "customer", "product", "customer_sales")


def analyze(engine: Engine, tables: tuple[str, ...] = ANALYZED_TABLES) -> None:
    """Refresh the query planner's statistics after a bulk write (import, seed, first rollup).

    Why: SQLite keeps no statistics until ANALYZE, and without them it prefers the status index
    (an equality) over the paid-time range, so the live tail and the lifetime figures scan every
    paid order. A full ANALYZE of these tables takes ~0.1 s per 100,000 orders (SQLite), small
    beside the bulk write before it; sampled statistics (`PRAGMA analysis_limit`) were measured
    to misjudge the status column 4x, so none. PostgreSQL's autovacuum analyzes a table by itself
    once ~10% of it changed; ANALYZE here only makes the statistics current at once.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            for table in tables:
                connection.exec_driver_sql(f'ANALYZE "{table}"')
        else:
            connection.exec_driver_sql("ANALYZE " + ", ".join(f'"{t}"' for t in tables))
