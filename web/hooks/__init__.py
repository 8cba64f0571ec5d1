"""HTTP hooks outside systems call (the KakaoTalk chatbot skill, Toss webhooks): thin handlers that
verify, parse, call one core service in one short transaction and answer (ARCHITECTURE.md)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.requests import Request

from core.db import get_engine


def engine() -> Engine:
    """The store the hooks write to (tests point it elsewhere)."""
    return get_engine()


def client_address(request: Request) -> str:
    client = request.scope.get("client")
    return str(client[0])[:64] if client else ""


class BodyTooLarge(Exception):
    """The body passed the limit: refused before it is all read."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read up to `limit` bytes (a bigger one is refused, not buffered)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


# SQLite has one writer at a time, and a writer waiting on its busy timeout polls: under a burst,
# one unlucky request can lose every race for 30 s ("database is locked"). Inbound writes of this
# process therefore queue here first (in Python, in order), so only one of them at a time competes
# with the worker for the file lock. PostgreSQL needs no gate.
_SQLITE_WRITES = threading.Lock()
LOCKED_RETRIES = 3


@contextlib.contextmanager
def write_gate(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _SQLITE_WRITES:
        yield


def with_retry_on_locked(engine: Engine, work):  # type: ignore[no-untyped-def]
    """Run `work()` inside the write gate; a "database is locked" (the worker held the file past the
    busy timeout) is tried again, a few times, instead of losing the customer's message."""
    for attempt in range(LOCKED_RETRIES):
        try:
            with write_gate(engine):
                return work()
        except OperationalError as exc:
            if "locked" not in str(exc).lower() or attempt == LOCKED_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
