"""A fake Solapi on 127.0.0.1 (stdlib http.server in a thread) for fault tests and the benchmark.

It speaks the documented shapes (send-many/detail, list), records every key it receives (so a test
can prove "exactly once"), and misbehaves on request: slow answers, 500s, dropped connections,
HTML, empty bodies, and per-message failures inside an HTTP 200.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

KEY_FIELD = "idempotencyKey"


class FakeSolapi:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.script: list[str] = []  # per send request: ok, 500, drop_before, drop_after, html, empty, slow
        self.fail_codes: dict[str, str] = {}  # key -> statusCode to put in failedMessageList
        self.received: Counter[str] = Counter()  # key -> times received (accepted or not)
        self.received_at: dict[str, float] = {}  # key -> time.time() of first receipt
        self.accepted: dict[str, dict[str, Any]] = {}
        self.requests = 0
        # Delivery reports (GET list by groupId): key -> fields laid over the accepted item,
        # e.g. {"statusCode": "3019"} or {"statusCode": "4000", "type": "LMS", "replacement": True}.
        self.reports: dict[str, dict[str, Any]] = {}
        self.default_report: dict[str, Any] = {"statusCode": "4000", "statusMessage": "수신 완료"}
        self.report_queries: list[dict[str, str]] = []
        self.auth_headers: list[str] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests += 1
                    fake.auth_headers.append(self.headers.get("Authorization", ""))
                    action = fake.script.pop(0) if fake.script else "ok"
                if action == "drop_before":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "500":
                    return self._reply(500, b'{"errorCode":"InternalError","errorMessage":"boom"}')
                if action == "html":
                    return self._reply(200, b"<html><body>Bad Gateway</body></html>", "text/html")
                group_id = "G4V" + uuid.uuid4().hex[:16].upper()
                failed, accepted = [], []
                with fake.lock:
                    for m in payload.get("messages", []):
                        key = m.get("customFields", {}).get(KEY_FIELD)
                        fake.received[key] += 1
                        fake.received_at.setdefault(key, time.time())
                        item = {
                            "to": m["to"],
                            "messageId": "M4V" + uuid.uuid4().hex[:16].upper(),
                            "customFields": m.get("customFields", {}),
                            "groupId": group_id,
                        }
                        code = fake.fail_codes.get(key)
                        if code:
                            failed.append(dict(item, statusCode=code, statusMessage=f"code {code}"))
                        else:
                            item = dict(item, statusCode="2000", statusMessage="정상 접수")
                            accepted.append(item)
                            fake.accepted[key] = item
                if fake.delay or action == "slow":
                    time.sleep(fake.delay if action != "slow" else 30)
                if action == "drop_after":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "empty":
                    return self._reply(200, b"")
                body = {
                    "groupInfo": {
                        "groupId": group_id,
                        "count": {
                            "total": len(failed) + len(accepted),
                            "registeredSuccess": len(accepted),
                            "registeredFailed": len(failed),
                        },
                    },
                    "failedMessageList": failed,
                    "messageList": accepted,
                }
                self._reply(200, json.dumps(body).encode())

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                if url.path != "/messages/v4/list":
                    return self._reply(404, b'{"errorCode":"NotFound"}')
                query = parse_qs(url.query)
                start = int(query.get("startKey", ["0"])[0])
                limit = int(query.get("limit", ["500"])[0])
                with fake.lock:
                    items = list(fake.accepted.values())
                    if query.get("criteria") == ["groupId"]:
                        fake.report_queries.append({k: v[0] for k, v in query.items()})
                        group = query.get("value", [""])[0]
                        items = [
                            dict(
                                i,
                                **(fake.reports.get(i["customFields"].get(KEY_FIELD)) or fake.default_report),
                            )
                            for i in items
                            if i["groupId"] == group
                        ]
                page = items[start : start + limit]
                body = {
                    "messageList": {i["messageId"]: i for i in page},
                    "nextKey": str(start + limit) if start + limit < len(items) else None,
                }
                self._reply(200, json.dumps(body).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSolapi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    """`python tests/messaging/fake_solapi.py [delay]`: serve until killed, print the URL."""
    import sys

    with FakeSolapi(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as fake:
        print(fake.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
