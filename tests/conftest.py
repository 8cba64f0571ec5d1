"""Shared fixtures: a migrated SQLite store per test (copied from one template), PostgreSQL, actors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from core import billing, clock  # noqa: F401 (billing registers its dunning-link hooks, as app.py does)
from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.db import make_engine, upgrade
from core.models import Role

BASE_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
# Each xdist worker gets its own database (test_gw0, test_gw1, ...), created on first use.
POSTGRES_URL = (
    make_url(BASE_POSTGRES_URL).set(database=f"{make_url(BASE_POSTGRES_URL).database}_{_XDIST_WORKER}")
    .render_as_string(hide_password=False)
    if _XDIST_WORKER
    else BASE_POSTGRES_URL
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "channeldesk.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def _ensure_database(url: str) -> None:
    name = make_url(url).database
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _postgres_reason() -> str | None:
    try:
        _ensure_database(POSTGRES_URL)  # each xdist worker's, or the one TEST_POSTGRES_URL names
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}"


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    return _postgres_reason()


@pytest.fixture
def pg_engine(postgres_available: str | None) -> Iterator[Engine]:
    if postgres_available:
        pytest.skip(postgres_available)
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The store under test: every test using it runs on SQLite and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


def make_actors(engine: Engine) -> dict[str, Actor]:
    """One staff user per role (owner1, cs1, staff1; password "password-123"), via the real service."""
    result: dict[str, Actor] = {}
    with Session(engine) as s:
        for role in Role:
            user = create_user(s, None, username=f"{role.value}1", display_name=f"{role.value} 담당",
                               role=role.value, password="password-123")
            result[role.value] = Actor(id=user.id, name=user.display_name, role=role)
        s.commit()
    return result


@pytest.fixture
def actors(engine: Engine) -> dict[str, Actor]:
    return make_actors(engine)


@pytest.fixture
def sqlite_actors(sqlite_engine: Engine) -> dict[str, Actor]:
    return make_actors(sqlite_engine)


# Every test runs on the test clock, never on the machine's: a test that needs another instant sets
# it (clock.set_now / clock.frozen / the worker's --now). CI runs the clock-sensitive tests a second
# time with CHANNELDESK_TEST_NOW years ahead, so a test that mixes "now" with a fixed date fails the
# day it is written, not the day that date passes.
TEST_NOW = clock.parse_instant(os.environ.get("CHANNELDESK_TEST_NOW", "2026-11-20T10:00+09:00"))


@pytest.fixture(autouse=True)
def _test_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    # A browser test drives a real server on the machine's clock: the test reads the same clock.
    if request.node.get_closest_marker("browser") is None:
        clock.set_now(TEST_NOW)
    yield
    clock.set_now(None)
