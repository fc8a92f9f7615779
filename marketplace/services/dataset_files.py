"""Dataset files: each upload is a new immutable version, stored through Django's storage API."""

import hashlib
import logging
import mimetypes
import os
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max

from config.errors import NotFoundError, PermissionDeniedError
from marketplace.errors import UploadRejectedError
from marketplace.models import Dataset, DatasetFile, Membership
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)

DEFAULT_MAX_DATASET_FILE_BYTES = 512 * 1024 * 1024
# A compressed file is served as what it is on the wire (data.csv.gz is gzip, not CSV).
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
}


def dataset_file_max_bytes() -> int:
    return int(getattr(settings, "ELEMENTA_MAX_DATASET_FILE_BYTES", DEFAULT_MAX_DATASET_FILE_BYTES))


def dataset_file_content_type(name: str) -> str:
    """The content type a file name implies; application/octet-stream when it implies none."""
    content_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    return content_type or "application/octet-stream"


_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".br", ".zst", ".zip"}


def dataset_file_extension(name: str) -> str:
    """The format a file name states, lower case without the dot: csv, parquet, csv.gz; "" for none."""
    base, last = os.path.splitext(os.path.basename(name))
    if not last or len(last) > 12:
        return ""
    last = last.lower()
    if last in _COMPRESSION_SUFFIXES:
        inner = os.path.splitext(base)[1].lower()
        if inner and len(inner) <= 12 and inner not in _COMPRESSION_SUFFIXES:
            return f"{inner[1:]}{last}"
    return last[1:]


def dataset_file_latest_version(*, dataset_id: UUID) -> int | None:
    return DatasetFile.objects.filter(dataset_id=dataset_id).aggregate(latest=Max("version"))["latest"]


def upload_digest(upload: UploadedFile) -> tuple[str, int]:
    """The SHA-256 (hex) and size of an upload, read in chunks; the upload is rewound for storing."""
    digest, size = hashlib.sha256(), 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return digest.hexdigest(), size


def upload_check_size(upload: UploadedFile, *, limit: int) -> None:
    if upload.size is None or upload.size == 0:
        raise UploadRejectedError("The file is empty.", fields={"file": ["the file is empty"]})
    if upload.size > limit:
        raise UploadRejectedError("The file is too large.", fields={"file": [f"at most {limit:,} bytes"]})


@transaction.atomic
def dataset_file_upload(*, dataset_id: UUID, membership: Membership, upload: UploadedFile) -> DatasetFile:
    """Store `upload` as the dataset's next version (latest + 1), with its SHA-256, size and type.
    Audited as `dataset.file_uploaded` (version, hash, size) with the uploader. Only the dataset's
    provider may upload."""
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFoundError("No such dataset.")
    if dataset.provider_id != membership.organisation_id:
        raise PermissionDeniedError("Only the dataset's provider may upload its files.")
    return _dataset_file_store(dataset=dataset, upload=upload, user=membership.user)


@transaction.atomic
def dataset_file_store(*, dataset_id: UUID, upload: UploadedFile, user: Any = None) -> DatasetFile:
    """`dataset_file_upload` without the provider check, for the platform's own loaders (demo data,
    test factories): `user` None records the upload as the system's."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    return _dataset_file_store(dataset=dataset, upload=upload, user=user)


def _dataset_file_store(*, dataset: Dataset, upload: UploadedFile, user: Any) -> DatasetFile:
    """The caller holds the dataset row lock: it serialises concurrent uploads so versions are
    gap-free (the unique (dataset, version) constraint is the last guard) and keeps the dataset's
    file summary (count, bytes, formats, latest version) in step with the versions."""
    upload_check_size(upload, limit=dataset_file_max_bytes())
    sha256, size = upload_digest(upload)
    original_name = os.path.basename(upload.name or "") or "data"
    dataset_file = DatasetFile(
        dataset=dataset,
        version=(dataset_file_latest_version(dataset_id=dataset.id) or 0) + 1,
        original_name=original_name[-255:],
        content_type=dataset_file_content_type(original_name),
        size=size,
        sha256=sha256,
        uploaded_by=user,
        uploaded_by_label=user.get_username() if user is not None else "system",
    )
    dataset_file.file.save(original_name, upload, save=False)
    try:
        dataset_file.save()
    except Exception:
        # The row did not make it: do not leave an orphan object in storage. (A rollback of an
        # enclosing transaction after we return can still orphan one; storage is cheap to sweep.)
        dataset_file.file.storage.delete(dataset_file.file.name)
        raise
    dataset.file_count += 1
    dataset.file_total_bytes += size
    dataset.file_formats = list(dict.fromkeys([*dataset.file_formats, dataset_file.content_type]))
    dataset.latest_file_version = dataset_file.version
    dataset.latest_file_uploaded_at = dataset_file.created_at
    dataset.save(update_fields=["file_count", "file_total_bytes", "file_formats", "latest_file_version",
                                "latest_file_uploaded_at", "updated_at"])
    event_emit(
        kind="dataset.file_uploaded",
        subject_type="dataset",
        subject_id=dataset.id,
        actor=user,  # None: recorded as the system's
        data={
            "provider": str(dataset.provider_id),
            "version": dataset_file.version,
            "sha256": dataset_file.sha256,
            "size": size,
            "content_type": dataset_file.content_type,
            "name": dataset_file.original_name,
        },
    )
    logger.info(
        "dataset %s: version %s uploaded (%s bytes, sha256 %s)",
        dataset.id,
        dataset_file.version,
        size,
        dataset_file.sha256,
    )
    return dataset_file
