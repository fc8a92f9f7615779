"""`Idempotency-Key` for POSTs that create something (the semantics payment APIs use).

- Same key, same method, path and body → the first response again (status and body), with
  `Idempotent-Replayed: true`; nothing is done twice.
- Same key, different request → 422 `idempotency_key_reused`.
- A duplicate while the first is still running → 409 `idempotency_key_in_use`.
- Keys are scoped to the calling user and kept at least 24 hours (ELEMENTA_IDEMPOTENCY_TTL).

The claim is committed first, so a concurrent duplicate sees it; the action and the stored
response then commit together, so a crash leaves neither. A claim whose request died
(still in progress after ELEMENTA_IDEMPOTENCY_LEASE seconds, its action rolled back) can be
taken over by a retry.
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


def _claim(user: Any, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Create the in-progress record, or answer from an existing one."""
    now = timezone.now()
    IdempotencyRecord.objects.filter(
        user=user, key=key, created_at__lt=now - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_TTL)
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user=user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().get(user=user, key=key)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError()
        if record.status == IdempotencyRecord.Status.DONE:
            response = Response(record.response_body, status=record.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        if record.created_at > now - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_LEASE):
            raise IdempotencyKeyInUseError()
        record.created_at = now  # the first attempt died: this retry takes the claim over
        record.save(update_fields=["created_at"])
        return record


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a DRF view method that creates something."""

    @wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST":
            return view(self, request, *args, **kwargs)
        if not (1 <= len(key) <= 255) or not key.isprintable():
            raise IdempotencyKeyInvalidError(fields={HEADER: ["1 to 255 printable characters"]})
        claimed = _claim(request.user, key, _fingerprint(request))
        if isinstance(claimed, Response):
            return claimed
        try:
            with transaction.atomic():
                response = view(self, request, *args, **kwargs)
                if response.status_code >= 500:
                    raise RuntimeError("server error: not stored")
                IdempotencyRecord.objects.filter(pk=claimed.pk).update(
                    status=IdempotencyRecord.Status.DONE, response_status=response.status_code,
                    response_body=json.loads(json.dumps(response.data, default=str)), completed_at=timezone.now(),
                )
                return response
        except ApplicationError as exc:
            # An expected refusal (400/409/...) is the request's answer: store it, as payment APIs do.
            from config.api import error_body

            body = error_body(exc.code, exc.message, json.loads(json.dumps(exc.fields, default=str)))
            IdempotencyRecord.objects.filter(pk=claimed.pk).update(
                status=IdempotencyRecord.Status.DONE,
                response_status=exc.status_code,
                response_body=body,
                completed_at=timezone.now(),
            )
            raise
        except BaseException:
            IdempotencyRecord.objects.filter(pk=claimed.pk).delete()  # nothing happened: a retry may try again
            raise

    return wrapper


def idempotency_purge() -> int:
    """Forget keys past their retention (run periodically)."""
    cutoff = timezone.now() - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_TTL)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
