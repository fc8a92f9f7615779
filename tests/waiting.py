"""One way for tests to wait for another process (the worker, a receiver): poll until true."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05,
               message: str | Callable[[], str] = "the condition never held") -> T:
    """Call `predicate` until it returns something truthy and return that; fail after `timeout` s
    with `message` (a callable message is built at failure time, to show the last state seen)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError((message() if callable(message) else message) + f" (after {timeout:g}s)")
        time.sleep(interval)
    return result
