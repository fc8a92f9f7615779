"""Downloads: the HTTP mechanics of serving what a grant covers — byte ranges, ETags, a streamed
body — and the record of every download. Whether a grant allows it is decided in services/grants.py."""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from config.errors import NotFoundError, PermissionDeniedError
from marketplace.errors import (
    DatasetFileNotFoundError,
    GrantComputeOnlyError,
    GrantInactiveError,
    GrantSuspendedError,
    RangeNotSatisfiableError,
    VersionNotCoveredError,
)
from marketplace.models import AccessGrant, DatasetFile, GrantDownload, Membership, Trade
from marketplace.selectors.grants import grant_inactive_message
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
# A byte position longer than this is beyond any file: compared as a string length, so a header with
# thousands of digits never reaches int() (Python refuses to convert more than 4,300 digits).
_MAX_POSITION_DIGITS = 18
_BEYOND_ANY_FILE = 10**_MAX_POSITION_DIGITS


def _position(digits: str) -> int:
    return _BEYOND_ANY_FILE if len(digits.lstrip("0")) > _MAX_POSITION_DIGITS else int(digits)


def byte_range_parse(header: str, *, size: int) -> tuple[int, int] | None:
    """The (first, last) byte, inclusive, that a `Range` header asks of a `size`-byte file, or None
    to serve the whole file: no header, another unit, a malformed header, or several ranges (RFC 9110
    §14.2 lets a server ignore Range). Raises RangeNotSatisfiableError (416) when it is outside the file."""
    unit, _, spec = (header or "").partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # suffix: the last n bytes
        n = _position(match[2])
        if n == 0:
            raise RangeNotSatisfiableError(size=size)
        return max(size - n, 0), size - 1
    first = _position(match[1])
    last = _position(match[2]) if match[2] else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiableError(size=size)
    return first, size - 1 if last is None else min(last, size - 1)


def etag_of(dataset_file: DatasetFile) -> str:
    return f'"{dataset_file.sha256}"'


@dataclass(frozen=True)
class DownloadPlan:
    """What a download response carries: the file, the bytes, and the record of it."""

    file: DatasetFile
    download: GrantDownload | None  # None for a HEAD request: nothing is downloaded
    first_byte: int
    last_byte: int
    partial: bool

    @property
    def length(self) -> int:
        return self.last_byte - self.first_byte + 1


@transaction.atomic
def grant_download_open(
    *, grant_id: UUID, membership: Membership, version: int | None = None, range_header: str = "", if_range: str = "",
    record: bool = True,
) -> DownloadPlan:
    """Check that the grant allows this download now and record it (unless `record` is False: a HEAD).

    The grant row is locked so a revocation and the start of a download are ordered. Errors: 404
    (no grant, no such version), 403 `grant_suspended` / `grant_inactive` / `version_not_covered` / not the buyer,
    416 `range_not_satisfiable` (nothing recorded).
    """
    grant = AccessGrant.objects.select_for_update().filter(pk=grant_id).first()
    if grant is None:
        raise NotFoundError("No such grant.")
    if grant.buyer_id != membership.organisation_id:
        raise PermissionDeniedError("Only the buying organisation downloads under a grant.")
    if Trade.objects.filter(pk=grant.trade_id, delivery="compute").exists():
        raise GrantComputeOnlyError()  # the data never leaves its storage jurisdiction
    now = timezone.now()
    if grant.status_at(now) == AccessGrant.Status.SUSPENDED:
        raise GrantSuspendedError(grant_inactive_message(grant, now))
    if grant.status_at(now) != AccessGrant.Status.ACTIVE:
        raise GrantInactiveError(grant_inactive_message(grant, now))
    files = DatasetFile.objects.filter(dataset_id=grant.dataset_id)
    if version is None:
        if grant.max_version is not None:
            files = files.filter(version__lte=grant.max_version)
        dataset_file = files.order_by("-version").first()
        if dataset_file is None:
            raise DatasetFileNotFoundError("The provider has not uploaded a file this grant covers yet.")
    else:
        if not grant.covers(version):
            raise VersionNotCoveredError(f"The grant covers versions 1 to {grant.max_version}.")
        dataset_file = files.filter(version=version).first()
        if dataset_file is None:
            raise DatasetFileNotFoundError(f"The dataset has no version {version}.")

    # If-Range: serve a range only of the representation the client already has part of.
    wanted = (
        None
        if if_range and if_range.strip() != etag_of(dataset_file)
        else byte_range_parse(range_header, size=dataset_file.size)
    )
    first, last = wanted if wanted is not None else (0, dataset_file.size - 1)
    user = membership.user
    download = None
    if record:
        download = GrantDownload.objects.create(
            grant=grant, file=dataset_file, version=dataset_file.version, user=user, username=user.get_username(),
            range_header=(range_header or "")[:200], first_byte=first, last_byte=last, length=last - first + 1,
        )
        event_emit(
            kind="grant.downloaded",
            subject_type="grant",
            subject_id=grant.id,
            actor=membership.user,
            data={
                "download": str(download.id),
                "version": dataset_file.version,
                "sha256": dataset_file.sha256,
                "range": (range_header or "")[:200],
            },
        )
    return DownloadPlan(
        file=dataset_file, download=download, first_byte=first, last_byte=last, partial=wanted is not None
    )


def grant_download_finish(*, download_id: int, bytes_sent: int, completed: bool) -> None:
    """Record how much of a download's body was streamed, once the stream ends (autocommit: the
    response is already on its way; nothing else in the request is left to roll back)."""
    GrantDownload.objects.filter(pk=download_id).update(
        bytes_sent=bytes_sent, completed_at=timezone.now() if completed else None
    )


class DownloadStream:
    """The body of a download: the planned bytes of the stored file, read through the storage API in
    chunks; closing it (Django does, when the response ends or the client goes away) records what
    was sent."""

    chunk_size = 256 * 1024  # 256 KiB: a few system calls per MB, little memory per concurrent download

    def __init__(self, plan: DownloadPlan) -> None:
        self._plan = plan
        self._remaining = plan.length
        self._sent = 0
        self._closed = False
        # Opened now, not on the first chunk: a missing object fails the request before any header is sent.
        self._file: IO[bytes] = plan.file.file.storage.open(plan.file.file.name, "rb")
        if plan.first_byte:
            self._file.seek(plan.first_byte)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._remaining <= 0:
            raise StopIteration
        chunk = self._file.read(min(self.chunk_size, self._remaining))
        if not chunk:  # the stored object is shorter than recorded: stop; close() records the shortfall
            logger.error(
                "dataset file %s is shorter than its recorded size %s", self._plan.file.id, self._plan.file.size
            )
            raise StopIteration
        self._remaining -= len(chunk)
        self._sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._file.close()
        download = self._plan.download
        if download is None:
            return
        try:
            grant_download_finish(
                download_id=download.id, bytes_sent=self._sent, completed=self._sent == self._plan.length
            )
        except Exception:  # the client has its bytes; a failed bookkeeping update must not turn into an error
            logger.exception("could not record the end of download %s", download.id)
