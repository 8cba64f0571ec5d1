"""web/sockets.py: the server's listening socket gets TCP_NODELAY, and so every connection it accepts.

The rule behind it (issue 21): a customer's page must not wait for an ACK. Without TCP_NODELAY a
response written as headers + body held the body until the browser ACKed the headers (40 ms on
Linux, a round trip more on a phone network); the live server test is
tests/web/test_customer_pages_browser.py::test_keep_alive_answers_are_not_held_back.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from web import sockets


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    # Bound as Streamlit 1.67 binds the st.App socket: socket.socket(family=...), so proto is 0 and
    # asyncio would not turn Nagle off on the connections it accepts.
    sock = socket.socket(family=socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def _nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_accepted_connections_have_nagle_off(listener: socket.socket) -> None:
    assert listener.proto == 0
    before_client = socket.create_connection(listener.getsockname())
    before, _ = listener.accept()
    assert _nodelay(before) == 0  # the bug: what the server accepted until now

    assert sockets.no_delay_on_listeners() >= 1

    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert _nodelay(listener) == 1
        assert _nodelay(accepted) == 1
        assert _nodelay(client) == 0  # a connected socket (not listening) is not ours to change
        listener.getsockname()  # the listener is still open and usable: the descriptor was not closed
    finally:
        for sock in (client, accepted, before_client, before):
            sock.close()


def test_other_descriptors_are_left_alone(tmp_path, listener: socket.socket) -> None:  # type: ignore[no-untyped-def]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with open(tmp_path / "f.txt", "w") as file:
        sockets.no_delay_on_listeners()
        file.write("still open")  # a file descriptor wrapped and detached, never closed
    assert udp.fileno() != -1
    udp.close()


def test_without_proc_nothing_changes(monkeypatch: pytest.MonkeyPatch, listener: socket.socket) -> None:
    monkeypatch.setattr(sockets, "FD_DIR", "/nonexistent/fd")
    assert sockets.no_delay_on_listeners() == 0
    assert _nodelay(listener) == 0
