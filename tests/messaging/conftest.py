"""Messaging tests: registers the `slow` marker (process-killing and multi-worker tests)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts processes or threads; seconds, not milliseconds")
