"""Access grants: what a buyer may download, issued at settlement, revocable, and every download recorded.

The rules:
- valid_from is the settlement time; a subscription renewal (trade.renews) starts when the grant it
  renews ends, if that is later (renewing early does not shorten the current term). A revoked or
  open-ended renewed grant chains nothing: the renewal starts at settlement.
- valid_until is valid_from + licence["term_days"] days, or no expiry when the licence sets no term.
- Versions: a one-time purchase covers versions 1…N, N being the latest at settlement (1 if nothing
  was uploaded yet: the buyer gets the first upload); a subscription covers every version.
"""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from compliance.models import Review
from config.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from marketplace.errors import (
    DatasetFileNotFoundError,
    GrantAlreadyRevokedError,
    GrantInactiveError,
    GrantSuspendedError,
    RangeNotSatisfiableError,
    VersionNotCoveredError,
)
from marketplace.models import AccessGrant, Dataset, DatasetFile, GrantDownload, Membership, Trade
from marketplace.selectors.members import is_officer
from marketplace.services.dataset_files import dataset_file_latest_version
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)


# --- issuing and revoking ---------------------------------------------------------------------


def _term_days(licence: Any) -> int | None:
    term = licence.get("term_days") if isinstance(licence, dict) else None
    if isinstance(term, bool) or not isinstance(term, int) or term <= 0:
        return None
    return term


@transaction.atomic
def grant_issue(*, trade: Trade) -> AccessGrant:
    """Issue the buyer's access grant for a trade that is settling.

    Called by trade_apply_transition inside the settlement transaction, with the trade row locked;
    idempotent: a trade that already has a grant gets it back. The OneToOne on trade is the last guard.
    """
    existing = AccessGrant.objects.filter(trade_id=trade.id).first()
    if existing is not None:
        return existing
    valid_from = trade.settled_at or timezone.now()
    if trade.renews_id is not None:
        renewed = AccessGrant.objects.filter(trade_id=trade.renews_id, revoked_at__isnull=True).only("valid_until").first()
        if renewed is not None and renewed.valid_until is not None and renewed.valid_until > valid_from:
            valid_from = renewed.valid_until
    term = _term_days(trade.licence)
    # An officer may approve on condition that access is shorter than the licence (e.g. 90 days).
    limits = [r.conditions["grant_valid_days"] for r in Review.objects.filter(subject_type="trade", subject_id=trade.id, verdict="approve")
              if isinstance(r.conditions, dict) and r.conditions.get("grant_valid_days")]
    if limits:
        term = min([term, *limits]) if term else min(limits)
    if trade.pricing == "subscription":
        max_version = None
    else:
        max_version = dataset_file_latest_version(dataset_id=trade.dataset_id) or 1
    grant = AccessGrant.objects.create(
        trade=trade, buyer_id=trade.buyer_id, dataset_id=trade.dataset_id, max_version=max_version,
        destination=trade.destination, valid_from=valid_from,
        valid_until=valid_from + timedelta(days=term) if term else None,
    )
    logger.info("trade %s: grant %s issued, valid %s to %s, versions ≤ %s", trade.id, grant.id, grant.valid_from, grant.valid_until,
                grant.max_version or "all")
    event_emit(kind="grant.issued", subject_type="grant", subject_id=grant.id, actor_label="system:settlement",
               organisation_ids=[trade.buyer_id, trade.provider_id],
               data={"trade": str(trade.id), "dataset": str(trade.dataset_id), "buyer": str(trade.buyer_id), "max_version": max_version,
                     "valid_from": grant.valid_from, "valid_until": grant.valid_until, "destination": grant.destination})
    return grant


def grant_revoke_locked(*, grant: AccessGrant, user: User | None, label: str, reason: str) -> AccessGrant:
    """Revoke a grant whose row the caller has locked in its transaction; both parties are told."""
    grant.revoked_at = timezone.now()
    grant.revoked_reason = reason
    grant.revoked_by = user
    grant.revoked_by_label = label[:150]
    grant.save(update_fields=["revoked_at", "revoked_reason", "revoked_by", "revoked_by_label"])
    logger.info("grant %s revoked by %s: %s", grant.id, grant.revoked_by_label, reason)
    provider_id = Dataset.objects.filter(pk=grant.dataset_id).values_list("provider_id", flat=True).first()
    event_emit(kind="grant.revoked", subject_type="grant", subject_id=grant.id, actor=user, actor_label=grant.revoked_by_label,
               organisation_ids=[grant.buyer_id] if provider_id is None else [grant.buyer_id, provider_id],
               data={"trade": str(grant.trade_id), "dataset": str(grant.dataset_id), "reason": reason})
    return grant


@transaction.atomic
def grant_revoke(*, grant_id: UUID, actor_membership: Membership, reason: str) -> AccessGrant:
    """Revoke a grant without a refund: an officer, with a reason (re-screening flags). Downloads stop
    at once; downloads already streaming finish (the check is made when a download starts). A
    provider does not revoke alone: see grant_revocations.grant_revocation_request."""
    grant = AccessGrant.objects.select_for_update(of=("self",)).select_related("dataset").filter(pk=grant_id).first()
    if grant is None:
        raise NotFoundError("No such grant.")
    user = actor_membership.user
    if not is_officer(user):
        raise PermissionDeniedError("Only an officer may revoke a grant.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError("A reason is required.", fields={"reason": ["this field is required"]})
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError(f"The grant was already revoked on {_utc(grant.revoked_at)}.")
    return grant_revoke_locked(grant=grant, user=user, label=user.get_username(), reason=reason)


@transaction.atomic
def grant_revoke_for_trade(*, trade: Trade, actor: User | Membership | str | None, reason: str) -> None:
    """Revoke the grant a trade issued (refunds). No-op if the trade has no grant or it is already
    revoked (the first revocation's reason stands). `actor` is a user, a membership, a label such as
    "system:refund", or None ("system")."""
    grant = AccessGrant.objects.select_for_update().filter(trade_id=trade.id).first()
    if grant is None or grant.revoked_at is not None:
        return
    if isinstance(actor, Membership):
        actor = actor.user
    if isinstance(actor, str) or actor is None:
        grant_revoke_locked(grant=grant, user=None, label=actor or "system", reason=reason or "refunded")
    else:
        grant_revoke_locked(grant=grant, user=actor, label=actor.get_username(), reason=reason or "refunded")


# --- reads ------------------------------------------------------------------------------------
# (Selectors; kept here, next to the grant services they serve, rather than in marketplace/selectors/.)


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "?"


def grant_inactive_message(grant: AccessGrant, now: datetime | None = None) -> str:
    status = grant.status_at(now)
    if status == AccessGrant.Status.REVOKED:
        return f"The grant was revoked on {_utc(grant.revoked_at)}: {grant.revoked_reason}"
    if status == AccessGrant.Status.SUSPENDED:
        return f"The grant was suspended on {_utc(grant.suspended_at)} until an officer reviews it: {grant.suspended_reason}"
    if status == AccessGrant.Status.EXPIRED:
        return f"The grant expired on {_utc(grant.valid_until)}."
    if status == AccessGrant.Status.PENDING:
        return f"The grant starts on {_utc(grant.valid_from)}."
    return "The grant is active."


# --- downloads --------------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


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
        n = int(match[2])
        if n == 0:
            raise RangeNotSatisfiableError(size=size)
        return max(size - n, 0), size - 1
    first = int(match[1])
    if match[2] and int(match[2]) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiableError(size=size)
    return first, min(int(match[2]) if match[2] else size - 1, size - 1)


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
    wanted = None if if_range and if_range.strip() != etag_of(dataset_file) else byte_range_parse(range_header, size=dataset_file.size)
    first, last = wanted if wanted is not None else (0, dataset_file.size - 1)
    user = membership.user
    download = None
    if record:
        download = GrantDownload.objects.create(
            grant=grant, file=dataset_file, version=dataset_file.version, user=user, username=user.get_username(),
            range_header=(range_header or "")[:200], first_byte=first, last_byte=last, length=last - first + 1,
        )
        event_emit(kind="grant.downloaded", subject_type="grant", subject_id=grant.id, actor=membership.user, data={
            "download": str(download.id), "version": dataset_file.version, "sha256": dataset_file.sha256, "range": range_header})
    return DownloadPlan(file=dataset_file, download=download, first_byte=first, last_byte=last, partial=wanted is not None)


def grant_download_finish(*, download_id: int, bytes_sent: int, completed: bool) -> None:
    """Record how much of a download's body was streamed, once the stream ends (autocommit: the
    response is already on its way; nothing else in the request is left to roll back)."""
    GrantDownload.objects.filter(pk=download_id).update(bytes_sent=bytes_sent, completed_at=timezone.now() if completed else None)


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
            logger.error("dataset file %s is shorter than its recorded size %s", self._plan.file.id, self._plan.file.size)
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
            grant_download_finish(download_id=download.id, bytes_sent=self._sent, completed=self._sent == self._plan.length)
        except Exception:  # the client has its bytes; a failed bookkeeping update must not turn into an error
            logger.exception("could not record the end of download %s", download.id)
