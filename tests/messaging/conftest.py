"""Messaging tests: registers the `slow` marker (process-killing and multi-worker tests)."""

from collections.abc import Iterator

import pytest

from core import clock
from tests.messaging.helpers import NOON


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts processes or threads; seconds, not milliseconds")


@pytest.fixture(autouse=True)
def _messaging_clock() -> Iterator[None]:
    """Messages are queued at the tests' reference instant, the one the sender runs at."""
    with clock.frozen(NOON):
        yield
