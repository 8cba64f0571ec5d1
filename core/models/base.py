"""Helpers for declaring fields the same way in every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from core import clock
from core.models.types import UtcDateTime


def utc_field(*, nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    """A timezone-aware UTC timestamp column."""
    if default_now:
        return Field(
            default_factory=clock.now,
            sa_type=UtcDateTime,
            sa_column_kwargs={"nullable": False},
            index=index,
        )
    return Field(default=None, sa_type=UtcDateTime, sa_column_kwargs={"nullable": nullable}, index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def utcnow() -> datetime:
    return clock.now()
