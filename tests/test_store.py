"""The store: migrations, concurrent writers on SQLite, all-or-nothing units of work."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, func, select

from core.db import DatabaseError, make_engine, session_scope, upgrade
from core.models import AuditLog, Customer


def test_migrations_create_every_table(engine: Engine) -> None:
    from sqlmodel import SQLModel

    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_upgrade_twice_is_harmless(sqlite_engine: Engine) -> None:
    upgrade(sqlite_engine)
    upgrade(sqlite_engine)
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() is not None


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_ui_and_worker_write_at_once_without_database_locked(sqlite_engine: Engine) -> None:
    """Two writers (two engines, as in two processes) each commit 150 small transactions at once."""
    url = sqlite_engine.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        engine = make_engine(url)
        try:
            for i in range(150):
                with session_scope(engine) as session:
                    count = session.exec(select(func.count()).select_from(Customer)).one()
                    session.add(Customer(name=f"{prefix}{i}-{count}", phone=None))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("ui", "worker")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(Customer)).one() == 300


def test_a_failed_unit_of_work_writes_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Customer(name="반쪽", phone="010-1111-2222"))
        session.flush()
        session.add(AuditLog(actor_name="t", action="x", entity_type="customer"))
        raise RuntimeError("fails half-way")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Customer)).one() == 0
        assert session.exec(select(func.count()).select_from(AuditLog)).one() == 0


def test_unwritable_database_location_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="cannot create"):
        make_engine("sqlite:////proc/channeldesk/x.db")


def test_naive_datetimes_are_refused(sqlite_engine: Engine) -> None:
    from datetime import datetime

    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="naive datetime"), Session(sqlite_engine) as session:
        session.add(Customer(name="x", created_at=datetime(2026, 1, 1)))
        session.commit()
