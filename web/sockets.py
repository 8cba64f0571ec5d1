"""TCP_NODELAY on the server's listening sockets, so no answer waits on Nagle's algorithm.

Why: Streamlit 1.67 binds the st.App socket itself (`starlette_server._bind_socket`, created as
`socket.socket(family=...)`, so its `proto` is 0) and hands it to uvicorn. asyncio turns Nagle off
only for sockets whose `proto` is IPPROTO_TCP, so every accepted connection kept Nagle on. uvicorn
writes a response's headers and its body in two writes: the body then waited for the ACK of the
headers, which the browser delays (40 ms on Linux, up to 200 ms elsewhere; one round trip more on
a phone network). Measured on a keep-alive connection: every /pay answer took 48 ms instead of 5-8
(bench/README.md, issue 21). Linux copies TCP_NODELAY from a listening socket to the sockets it
accepts, so setting it once on the listener at startup covers every connection.
"""

from __future__ import annotations

import os
import socket
import stat

FD_DIR = "/proc/self/fd"


def _listening_tcp(sock: socket.socket) -> bool:
    return (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    )


def no_delay_on_listeners() -> int:
    """Set TCP_NODELAY on every listening TCP socket of this process; how many were set.

    Found by their descriptors (the app is not handed the socket); where /proc is missing (not
    Linux), nothing is changed and 0 is returned."""
    try:
        descriptors = [int(name) for name in os.listdir(FD_DIR)]
    except OSError:
        return 0
    done = 0
    for fd in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=fd)  # wraps the descriptor; detached below, never closed here
        except OSError:
            continue
        try:
            if _listening_tcp(sock):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                done += 1
        except OSError:
            pass
        finally:
            sock.detach()
    return done
