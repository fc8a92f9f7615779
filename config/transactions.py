"""Whether a service's transaction needs a SAVEPOINT of its own.

A service nested in another transaction normally opens a savepoint (two statements), so that a
caller catching its error could go on. Inside `request_transaction` (the Idempotency-Key
wrapper's transaction, which rolls back whole on any error and catches nothing inside) there is
no such caller: the hottest services skip the savepoint there (`savepoint_needed()` is False)
and keep it everywhere else (tests, other services, the worker)."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_whole: ContextVar[bool] = ContextVar("elementa_request_transaction", default=False)


@contextmanager
def request_transaction() -> Iterator[None]:
    with transaction.atomic():
        token = _whole.set(True)
        try:
            yield
        finally:
            _whole.reset(token)


def savepoint_needed() -> bool:
    return not _whole.get()
