"""`Idempotency-Key` for POSTs that create something (the semantics payment APIs use).

- Same key, same method, path and body → the first response again (status and body), with
  `Idempotent-Replayed: true`; nothing is done twice.
- Same key, different request → 422 `idempotency_key_reused`.
- A duplicate while the first is still running → 409 `idempotency_key_in_use`.
- Keys are scoped to the calling user and kept at least 24 hours (ELEMENTA_IDEMPOTENCY_TTL).

The action and the stored response commit together, so a crash leaves neither; the record is
written last, in the action's transaction, and the unique (user, key) constraint makes a
duplicate's transaction roll back and replay the first answer (docs/performance.md: one
statement instead of five). An in-progress record (written by earlier versions, which
committed a claim first) still answers 409 until ELEMENTA_IDEMPOTENCY_LEASE seconds have passed,
then a retry takes it over.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import ApplicationError
from config.transactions import request_transaction
from marketplace.errors import IdempotencyKeyInUseError, IdempotencyKeyInvalidError, IdempotencyKeyReusedError
from marketplace.models import IdempotencyRecord

HEADER = "Idempotency-Key"


def _file_digest(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return f"file:{digest.hexdigest()}"


def _fingerprint(request: Request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form (multipart): every field, and each file by its content's hash
        fields = sorted(
            (k, [_file_digest(v) if isinstance(v, UploadedFile) else str(v) for v in vs]) for k, vs in data.lists()
        )
        body = json.dumps(fields)
    else:
        body = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


class _KeyTaken(Exception):
    """The record insert found the key already used: the action in this transaction rolls back."""


def _has_files(request: Request) -> bool:
    return bool(getattr(request, "FILES", None))


def _existing_answer(user: Any, key: str, fingerprint: str) -> Response | None:
    """What an earlier request with this key decided: its stored response (replayed), 422 for a
    different request, 409 while it is still running; None when there is no record, or it expired
    or was abandoned (then it is deleted and this request acts afresh)."""
    now = timezone.now()
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().filter(user=user, key=key).first()
        if record is None:
            return None
        if record.created_at < now - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_TTL):
            record.delete()
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError()
        if record.status == IdempotencyRecord.Status.DONE:
            response = Response(record.response_body, status=record.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        if record.created_at > now - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_LEASE):
            raise IdempotencyKeyInUseError()
        record.delete()  # the first attempt died: this retry takes the key over
        return None


def _store(user: Any, key: str, fingerprint: str, status: int, body: Any) -> None:
    IdempotencyRecord.objects.create(
        user=user, key=key, fingerprint=fingerprint, status=IdempotencyRecord.Status.DONE,
        response_status=status, response_body=body, completed_at=timezone.now(),
    )


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a DRF view method that creates something.

    One statement on the way of a first request: the action and the record of its response
    are written in one transaction, the record last. The unique (user, key) constraint decides
    between duplicates: a duplicate's insert fails (on PostgreSQL it first waits for a concurrent
    first request to commit), its whole transaction rolls back, and the stored response is
    replayed. A request carrying files is checked first instead, so a replay stores no file."""

    @wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST":
            return view(self, request, *args, **kwargs)
        if not (1 <= len(key) <= 255) or not key.isprintable():
            raise IdempotencyKeyInvalidError(fields={HEADER: ["1 to 255 printable characters"]})
        user, fingerprint = request.user, _fingerprint(request)
        if _has_files(request):
            earlier = _existing_answer(user, key, fingerprint)
            if earlier is not None:
                return earlier
        for _attempt in range(3):
            try:
                with request_transaction():  # services inside skip their savepoints (config/transactions.py)
                    response = view(self, request, *args, **kwargs)
                    if response.status_code >= 500:
                        raise RuntimeError("server error: not stored")
                    body = json.loads(json.dumps(response.data, default=str))
                    try:
                        _store(user, key, fingerprint, response.status_code, body)
                    except IntegrityError:
                        raise _KeyTaken() from None
                    return response
            except _KeyTaken:
                earlier = _existing_answer(user, key, fingerprint)
                if earlier is not None:
                    return earlier
                continue  # the record expired or was abandoned and is gone now: act afresh
            except ApplicationError as exc:
                # An expected refusal (400/409/...) is the request's answer: store it, as payment APIs
                # do, unless an earlier request with this key already answered.
                earlier = _existing_answer(user, key, fingerprint)
                if earlier is not None:
                    return earlier
                from config.api import error_body

                body = error_body(exc.code, exc.message, json.loads(json.dumps(exc.fields, default=str)))
                try:
                    with transaction.atomic():
                        _store(user, key, fingerprint, exc.status_code, body)
                except IntegrityError:
                    pass  # a concurrent duplicate stored its answer first
                raise
        raise IdempotencyKeyInUseError()  # the key kept changing hands under us

    return wrapper


def idempotency_purge() -> int:
    """Forget keys past their retention (run periodically)."""
    cutoff = timezone.now() - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_TTL)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
