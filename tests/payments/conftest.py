"""Fixtures for the payments tests."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.auth import Actor, create_user
from core.models import Role


@pytest.fixture
def sqlite_actors(sqlite_engine: Engine) -> dict[str, Actor]:
    """Staff users in the SQLite store the page runs on (the shared `actors` follows `engine`)."""
    result: dict[str, Actor] = {}
    with Session(sqlite_engine) as s:
        for role in Role:
            user = create_user(
                s,
                None,
                username=f"{role.value}1",
                display_name=f"{role.value} 담당",
                role=role.value,
                password="password-123",
            )
            result[role.value] = Actor(id=user.id, name=user.display_name, role=role)
        s.commit()
    return result
