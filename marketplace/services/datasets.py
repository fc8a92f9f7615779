"""Providers' listings: create, edit, publish, withdraw. Each writes an audit event (kind
`dataset.*`, subject the dataset) with the acting user, in the same transaction."""

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.engine.vocabulary import PERSONAL_CLASSIFICATIONS
from marketplace.errors import (
    AttestationRequiredError,
    DatasetFactsLockedError,
    DatasetHasNoFileError,
    DatasetInconsistentError,
)
from marketplace.lifecycles import dataset_ensure_transition
from marketplace.models import Dataset, DatasetFile, Membership
from marketplace.services.events import event_emit
from marketplace.services.organisations import organisation_require_verified

# The facts a compliance decision turns on: frozen once buyers can see the listing.
LEGAL_FACTS = (
    "subject_jurisdictions",
    "storage_jurisdiction",
    "classification",
    "categories",
    "subjects",
    "de_identified",
    "flags",
    "exporter_flags",
    "pi_duties_attested",
)
# Categories that are sensitive in every regime Elementa encodes (GDPR Art. 9, PIPL Art. 28, the US rule).
ALWAYS_SENSITIVE = {"health", "biometric", "genomic", "omic"}
COMMERCIAL = ("title", "description", "price", "currency", "pricing", "licence")
# The terms a buyer agrees to: changing any of them moves the listing's licence_version on, so a
# buyer who pinned the version it saw (`expected_licence_version`) gets 409 `price_changed`.
TERMS = ("price", "currency", "pricing", "licence")


def dataset_validate_facts(values: dict[str, Any]) -> None:
    """Cross-field consistency; field-level checks are the serializer's. Raises DatasetInconsistentError."""
    errors: dict[str, list[str]] = {}
    classification = values.get("classification")
    subjects = values.get("subjects", 0) or 0
    if classification in PERSONAL_CLASSIFICATIONS and subjects <= 0:
        errors.setdefault("subjects", []).append(f"{classification} data is about people: give how many (at least 1)")
    if classification in ("public", "non_personal", "anonymous") and values.get("de_identified"):
        errors.setdefault("de_identified", []).append("only personal data can be de-identified")
    categories = set(values.get("categories") or ())
    if classification == "public" and categories - {"statistics", "telemetry"}:
        errors.setdefault("categories", []).append("public data cannot carry personal-data categories")
    if classification == "personal" and categories & ALWAYS_SENSITIVE:
        errors.setdefault("classification", []).append(
            f"{', '.join(sorted(categories & ALWAYS_SENSITIVE))} data is sensitive: classify it as sensitive_personal"
        )
    if "gov_geofence" in (values.get("flags") or ()) and "precise_geolocation" not in categories:
        errors.setdefault("flags", []).append(
            "gov_geofence describes precise geolocation points: add the precise_geolocation category"
        )
    if errors:
        raise DatasetInconsistentError(fields=errors)


def _index(codes: list[str]) -> str:
    return "|" + "|".join(dict.fromkeys(codes)) + "|"


def dataset_reindex(dataset: Dataset) -> None:
    """Keep the catalogue's search columns in step with the facts (not saved: the caller saves)."""
    dataset.jurisdiction_index = _index([*dataset.subject_jurisdictions, dataset.storage_jurisdiction])
    dataset.category_index = _index(list(dataset.categories))


def _audit(*, kind: str, dataset: Dataset, actor: Any, data: dict[str, Any]) -> None:
    event_emit(kind=kind, subject_type="dataset", subject_id=dataset.id, actor=actor,
               data={"provider": str(dataset.provider_id), "title": dataset.title, **data})


def _snapshot(dataset: Dataset, fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: getattr(dataset, k) for k in fields}


@transaction.atomic
def dataset_create(*, membership: Membership, values: dict[str, Any], actor: Any) -> Dataset:
    """A draft listing of the member's organisation. Audited as `dataset.created` with its facts and terms."""
    values = dict(values)
    values.setdefault("storage_jurisdiction", (values.get("subject_jurisdictions") or [""])[0])
    dataset_validate_facts(values)
    dataset = Dataset(provider=membership.organisation, status=Dataset.Status.DRAFT, **values)
    dataset_reindex(dataset)
    dataset.save()
    _audit(kind="dataset.created", dataset=dataset, actor=actor,
           data={"facts": _snapshot(dataset, LEGAL_FACTS), "terms": _snapshot(dataset, COMMERCIAL)})
    return dataset


@transaction.atomic
def dataset_update(*, dataset_id: UUID, values: dict[str, Any], actor: Any) -> Dataset:
    """Edit a listing; legal facts only while it is a draft. Audited as `dataset.updated` with each
    changed field's old and new value (nothing is recorded when nothing changed)."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    changed_facts = [k for k in values if k in LEGAL_FACTS and values[k] != getattr(dataset, k)]
    if changed_facts and dataset.status != Dataset.Status.DRAFT:
        raise DatasetFactsLockedError(fields={k: ["cannot change once published"] for k in changed_facts})
    merged = {k: getattr(dataset, k) for k in LEGAL_FACTS} | values
    dataset_validate_facts(merged)
    changes = {k: {"from": getattr(dataset, k), "to": v} for k, v in values.items() if v != getattr(dataset, k)}
    for key, value in values.items():
        setattr(dataset, key, value)
    if any(k in TERMS for k in changes):
        dataset.licence_version += 1
        changes["licence_version"] = {"from": dataset.licence_version - 1, "to": dataset.licence_version}
    dataset_reindex(dataset)
    dataset.save()
    if changes:
        _audit(kind="dataset.updated", dataset=dataset, actor=actor, data={"changes": changes})
    return dataset


@transaction.atomic
def dataset_publish(*, dataset_id: UUID, actor: Any) -> Dataset:
    """Put a draft in the catalogue. It needs at least one uploaded file version (409
    `dataset_has_no_file`: a listing is sold with its data, compute offers included), and Chinese
    personal information needs the provider's attestation of its PIPL duties. Audited as
    `dataset.published` with the attestation, the frozen facts and the latest file version."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    if dataset.status == Dataset.Status.PUBLISHED:
        return dataset  # publishing twice is harmless
    dataset_ensure_transition(current=dataset.status, target=Dataset.Status.PUBLISHED)
    organisation_require_verified(organisation=dataset.provider)
    holds_chinese_pi = dataset.classification in PERSONAL_CLASSIFICATIONS and (
        "CN" in {j.split("-")[0] for j in dataset.subject_jurisdictions}
        or dataset.storage_jurisdiction.split("-")[0] == "CN"
    )
    if holds_chinese_pi and not dataset.pi_duties_attested:
        raise AttestationRequiredError(fields={"pi_duties_attested": ["required for Chinese personal information"]})
    # The versions themselves, not the summary columns: the row lock above orders this with uploads.
    latest = DatasetFile.objects.filter(dataset_id=dataset.id).order_by("-version").first()
    if latest is None:
        raise DatasetHasNoFileError(fields={"files": ["upload the dataset's file before publishing"]})
    dataset.status = Dataset.Status.PUBLISHED
    dataset.published_at = timezone.now()
    dataset.save(update_fields=["status", "published_at", "updated_at"])
    _audit(kind="dataset.published", dataset=dataset, actor=actor, data={
        "attestation": {"pi_duties_attested": dataset.pi_duties_attested, "required": holds_chinese_pi},
        "facts": _snapshot(dataset, LEGAL_FACTS),
        "file": {"version": latest.version, "sha256": latest.sha256, "size": latest.size},
    })
    return dataset


@transaction.atomic
def dataset_withdraw(*, dataset_id: UUID, actor: Any) -> Dataset:
    """Take a listing out of the catalogue; trades already open go on. Audited as `dataset.withdrawn`
    (withdrawing twice changes and records nothing)."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    if dataset.status == Dataset.Status.WITHDRAWN:
        return dataset
    previous = dataset.status
    dataset_ensure_transition(current=previous, target=Dataset.Status.WITHDRAWN)
    dataset.status = Dataset.Status.WITHDRAWN
    dataset.save(update_fields=["status", "updated_at"])
    _audit(kind="dataset.withdrawn", dataset=dataset, actor=actor, data={"from": previous})
    return dataset
