"""A per-address cap on customer requests that write, kept in the server's memory.

Why in memory: /r/ writes a payment link and a referral row for each browser without its cookie, so a
script requesting it in a loop would fill the store and the 매출 link funnel with visits nobody made.
The count lives beside the one server process that answers customers (a restart forgets it: a flood
gets one window more); the /help form counts in the inbound log instead, because it logs each post
anyway. Korean carriers put many phones behind one address, so the cap is far above what one
person does (30 new checkouts in 10 minutes), not a per-person limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class AddressWindow:
    """At most `limit` requests per address within `window` seconds (a sliding window)."""

    def __init__(self, limit: int, window: float, *, now: Callable[[], float] = time.monotonic,
                 max_addresses: int = 50_000) -> None:
        self.limit, self.window, self._now, self._max = limit, window, now, max_addresses
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        """Count this request and say whether it may go on (refused ones are not counted: a flood
        that stops is let through again one window after its last allowed request)."""
        now = self._now()
        with self._lock:
            times = self._seen.get(address)
            if times is None:
                if len(self._seen) >= self._max:
                    self._forget_idle(now)
                times = self._seen[address] = deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True

    def _forget_idle(self, now: float) -> None:
        """Addresses with nothing inside the window go; if all are busy, the oldest half goes (the
        memory stays bounded under a flood from many addresses)."""
        idle = [a for a, t in self._seen.items() if not t or t[-1] <= now - self.window]
        for address in idle or list(self._seen)[: len(self._seen) // 2]:
            del self._seen[address]

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


REFERRAL_VISITS = AddressWindow(limit=30, window=600)
