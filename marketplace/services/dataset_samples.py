"""Dataset samples: one small free file per listing that anyone who can see the listing may download.

A sample goes through no transfer check (nobody buys it), so samples that hold personal data are
refused outright: the provider declares `contains_personal_data: false` with every upload."""

import logging
import os
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from config.errors import NotFoundError, PermissionDeniedError
from marketplace.errors import DatasetSampleNotFoundError, SamplePersonalDataRefusedError
from marketplace.models import Dataset, DatasetSample, Membership
from marketplace.services.dataset_files import dataset_file_content_type, upload_check_size, upload_digest
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_MAX_BYTES = 1024 * 1024


def sample_max_bytes() -> int:
    return int(getattr(settings, "ELEMENTA_SAMPLE_MAX_BYTES", DEFAULT_SAMPLE_MAX_BYTES))


def _own_dataset_locked(*, dataset_id: UUID, membership: Membership) -> Dataset:
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFoundError("No such dataset.")
    if dataset.provider_id != membership.organisation_id:
        raise PermissionDeniedError("Only the dataset's provider may change its sample.")
    return dataset


def _delete_stored_on_commit(name: str, storage: Any) -> None:
    # After commit: a rollback keeps the row, and the row keeps its object.
    transaction.on_commit(lambda: storage.delete(name))


@transaction.atomic
def dataset_sample_upload(
    *, dataset_id: UUID, membership: Membership, upload: UploadedFile, contains_personal_data: bool
) -> DatasetSample:
    """Attach (or replace) the dataset's sample; the provider only. Refused: a sample declared to hold
    personal data (400 `sample_personal_data_refused`), an empty one or one over ELEMENTA_SAMPLE_MAX_BYTES
    (400 `upload_rejected`). Audited as `dataset.sample_uploaded` (hash, size, the declaration)."""
    dataset = _own_dataset_locked(dataset_id=dataset_id, membership=membership)
    if contains_personal_data:
        raise SamplePersonalDataRefusedError(
            fields={"contains_personal_data": ["a sample must hold no personal data; it is refused, not checked"]}
        )
    upload_check_size(upload, limit=sample_max_bytes())
    sha256, size = upload_digest(upload)
    previous = DatasetSample.objects.filter(dataset=dataset).first()
    original_name = os.path.basename(upload.name or "") or "sample"
    sample = DatasetSample(
        dataset=dataset,
        original_name=original_name[-255:],
        content_type=dataset_file_content_type(original_name),
        size=size,
        sha256=sha256,
        contains_personal_data=False,
        uploaded_by=membership.user,
        uploaded_by_label=membership.user.get_username(),
    )
    sample.file.save(original_name, upload, save=False)
    try:
        if previous is not None:
            _delete_stored_on_commit(previous.file.name, previous.file.storage)
            previous.delete()
        sample.save()
    except Exception:
        sample.file.storage.delete(sample.file.name)
        raise
    event_emit(
        kind="dataset.sample_uploaded",
        subject_type="dataset",
        subject_id=dataset.id,
        actor=membership.user,
        data={
            "provider": str(dataset.provider_id),
            "sha256": sha256,
            "size": size,
            "content_type": sample.content_type,
            "name": sample.original_name,
            "contains_personal_data": False,
            "replaced": previous.sha256 if previous is not None else None,
        },
    )
    return sample


@transaction.atomic
def dataset_sample_delete(*, dataset_id: UUID, membership: Membership) -> None:
    """Remove the dataset's sample (the provider only); 404 `dataset_sample_not_found` when it has none.
    Audited as `dataset.sample_deleted`; the stored object goes after commit."""
    dataset = _own_dataset_locked(dataset_id=dataset_id, membership=membership)
    sample = DatasetSample.objects.filter(dataset=dataset).first()
    if sample is None:
        raise DatasetSampleNotFoundError()
    _delete_stored_on_commit(sample.file.name, sample.file.storage)
    sample.delete()
    event_emit(
        kind="dataset.sample_deleted",
        subject_type="dataset",
        subject_id=dataset.id,
        actor=membership.user,
        data={"provider": str(dataset.provider_id), "sha256": sample.sha256, "size": sample.size},
    )


@transaction.atomic
def dataset_sample_download_record(*, sample: DatasetSample, user: Any) -> None:
    """Audit a sample download (`dataset.sample_downloaded`, who and which bytes) and log it. The
    caller (the view) has already checked that the user can see the listing."""
    event_emit(
        kind="dataset.sample_downloaded",
        subject_type="dataset",
        subject_id=sample.dataset_id,
        actor=user,
        data={"provider": str(sample.dataset.provider_id), "sha256": sample.sha256, "size": sample.size},
    )
    logger.info("dataset %s: sample downloaded by %s (%s bytes)", sample.dataset_id, user.get_username(), sample.size)
