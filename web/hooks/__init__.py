"""HTTP hooks outside systems call (the KakaoTalk chatbot skill, Toss webhooks): thin handlers that
verify, parse, call one core service in one short transaction and answer (ARCHITECTURE.md)."""

from __future__ import annotations

from sqlalchemy import Engine
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
