"""Browser tests run last: they are the slowest, and they start the session's Celery worker, which
tests collected after them expect not to be running yet (tests/integration/test_concurrency.py
races services by hand)."""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: "e2e" in item.keywords)  # a stable sort: everything else keeps its order
