"""A real HTTP server on 127.0.0.1 that plays KakaoPay or Toss and misbehaves on cue.

Each path gets a queue of behaviours. Before doing anything: "busy" (KakaoPay USER_LOCKED), "429"
(rate limited), "500", "html" (a proxy's 502 page), "lost" (answers after the read timeout, having
done nothing). After doing the work (the money moved), then answering badly, the way gateways and
their proxies do on a bad day (issue 13): "slow" (after the read timeout), "drop" (connection closed
without an answer), and every entry of BAD_ANSWERS: "done_500", "done_html" (HTML 502), "html200",
"empty", "malformed", "list", "string", "tid_null", "no_amount". The server counts what it did.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]

# behaviour -> (status, body bytes or a function of the real answer): sent after the work was done.
BAD_ANSWERS: dict[str, tuple[int, Any]] = {
    "done_500": (500, b'{"error_code": -9, "error_message": "internal"}'),
    "done_html": (502, b"<html><body>502 Bad Gateway</body></html>"),
    "html200": (200, b"<!DOCTYPE html><html>proxy</html>"),
    "empty": (200, b""),
    "malformed": (200, b'{"tid": "T'),
    "list": (200, lambda answer: json.dumps([answer]).encode()),
    "string": (200, b'"SUCCESS_PAYMENT"'),
    "tid_null": (200, lambda answer: json.dumps({**answer, "tid": None, "paymentKey": None}).encode()),
    "no_amount": (
        200,
        lambda answer: json.dumps(
            {k: v for k, v in answer.items() if k not in ("amount", "totalAmount", "approved_cancel_amount", "cancels")}
        ).encode(),
    ),
}


class GatewayRefusal(Exception):
    """Raised by an answer to refuse the request with the gateway's error body (HTTP 400)."""

    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        super().__init__(str(body))
        self.body, self.status = body, status


class FakeGateway:
    def __init__(self, answers: dict[str, Answer], slow_seconds: float = 0.6) -> None:
        self.answers = answers
        self.script: dict[str, deque[str]] = defaultdict(deque)
        self.done: list[str] = []  # paths whose work was actually done (money moved)
        self.seen: list[str] = []
        self.headers: list[dict[str, str]] = []  # each request's headers (Idempotency-Key)
        self.slow_seconds = slow_seconds

    def plan(self, path: str, *behaviours: str) -> None:
        self.script[path].extend(behaviours)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path
                fake.seen.append(path)
                fake.headers.append(dict(self.headers.items()))
                queue = fake.script.get(path)
                behaviour = queue.popleft() if queue else "ok"
                if behaviour == "busy":
                    return self._send(
                        400,
                        {
                            "error_code": -780,
                            "error_message": "approval failure!",
                            "extras": {
                                "method_result_code": "USER_LOCKED",
                                "method_result_message": "잠시 후 다시",
                            },
                        },
                    )
                if behaviour == "429":
                    return self._send(429, None, raw=b"<html>Too Many Requests</html>")
                if behaviour == "500":
                    return self._send(500, {"error_code": -9, "error_message": "internal"})
                if behaviour == "html":
                    return self._send(502, None, raw=b"<html>bad gateway</html>")
                if behaviour == "lost":  # no answer in time, and the work was never done
                    time.sleep(fake.slow_seconds)
                    return self._send(504, {"error_code": -9, "error_message": "gateway timeout"})
                try:
                    answer = fake.answers[path](path, body)
                except GatewayRefusal as refusal:
                    return self._send(refusal.status, refusal.body)
                fake.done.append(path)
                if behaviour == "slow":
                    time.sleep(fake.slow_seconds)
                if behaviour == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if behaviour in BAD_ANSWERS:
                    status, data = BAD_ANSWERS[behaviour]
                    return self._send(status, None, raw=data(answer) if callable(data) else data)
                return self._send(200, answer)

            do_POST = _serve
            do_GET = _serve

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html" if raw is not None else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


@contextmanager
def serve(fake: FakeGateway) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
