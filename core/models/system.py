"""Owner settings, worker heartbeat and job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class Setting(SQLModel, table=True):
    """One owner setting as JSON (business hours, automation toggles, ...)."""

    __tablename__ = "setting"

    key: str = Field(primary_key=True, max_length=64)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = utc_field(default_now=True)
    updated_by: int | None = Field(default=None, foreign_key="staff_user.id")


class WorkerHeartbeat(SQLModel, table=True):
    __tablename__ = "worker_heartbeat"

    worker_id: str = Field(primary_key=True, max_length=64)
    hostname: str = Field(max_length=128)
    pid: int
    started_at: datetime = utc_field(default_now=True)
    last_beat_at: datetime = utc_field(default_now=True)


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=64, index=True)
    worker_id: str = Field(max_length=64)
    started_at: datetime = utc_field(default_now=True, index=True)
    finished_at: datetime | None = utc_field()
    outcome: str = Field(default="running", max_length=16)  # running, ok, error
    counts: dict[str, Any] = json_field()
    error: str | None = Field(default=None, max_length=2000)
