"""The app's HTTP routes through Starlette's TestClient against server.app, on a migrated store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

import server
import web.hooks
from core import settings_store
from core.accounts.actor import Actor
from core.models import Role
from web.customer import render
from web.hooks import kakao_skill

SECRET = "skill-secret-0123456789-abcdef"
OWNER = Actor(id=None, name="테스트 사장님", role=Role.OWNER)


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    kakao_skill._secret_cache.clear()
    yield
    kakao_skill._secret_cache.clear()


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """server.app with its routes writing to the test store (no lifespan: the store is migrated)."""
    monkeypatch.setattr(web.hooks, "engine", lambda: engine)
    monkeypatch.setattr(render, "engine", lambda: engine)  # the pages' refund policy (base.html) reads here
    monkeypatch.setattr(server, "_engine", lambda: engine)
    with Session(engine) as session:
        settings_store.put(session, OWNER, kakao_skill.SECRET_SETTING, SECRET)
        session.commit()
    yield TestClient(server.app, raise_server_exceptions=False, client=("203.0.113.7", 50000))
