"""web/customer/throttle.py: the per-address cap on customer requests that write (/r/)."""

from __future__ import annotations

import pytest

from web.customer.throttle import AddressWindow


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("requests", "allowed"), [(1, 1), (29, 29), (30, 30), (31, 30), (100, 30)])
def test_at_most_the_limit_within_the_window(requests: int, allowed: int) -> None:
    window = AddressWindow(30, 600, now=Clock())
    assert sum(window.allow("203.0.113.9") for _ in range(requests)) == allowed


def test_the_window_slides_and_addresses_are_apart() -> None:
    clock = Clock()
    window = AddressWindow(2, 600, now=clock)
    assert window.allow("a")
    clock.t += 10
    assert window.allow("a") and not window.allow("a")
    assert window.allow("b")  # another address has its own count
    clock.t += 589.9
    assert not window.allow("a")  # still inside the window of the first
    clock.t += 0.1
    assert window.allow("a")  # the first left the window: one place free
    assert not window.allow("a")


def test_memory_stays_bounded_under_many_addresses() -> None:
    clock = Clock()
    window = AddressWindow(5, 60, now=clock, max_addresses=100)
    for i in range(1_000):
        assert window.allow(f"198.51.{i // 256}.{i % 256}")
    assert len(window._seen) <= 100
