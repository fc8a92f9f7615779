"""Providers' listings: create, edit, publish, withdraw."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from compliance.engine.vocabulary import PERSONAL_CLASSIFICATIONS
from marketplace.errors import DatasetFactsLockedError, DatasetInconsistentError, TradeTransitionNotAllowedError
from marketplace.models import Dataset, Membership

# The facts a compliance decision turns on: frozen once buyers can see the listing.
LEGAL_FACTS = ("subject_jurisdictions", "storage_jurisdiction", "classification", "categories", "subjects", "de_identified", "flags")
COMMERCIAL = ("title", "description", "price", "currency", "pricing", "licence")


def dataset_validate_facts(values: dict[str, Any]) -> None:
    """Cross-field consistency; field-level checks are the serializer's. Raises DatasetInconsistentError."""
    errors: dict[str, list[str]] = {}
    classification = values.get("classification")
    subjects = values.get("subjects", 0) or 0
    if classification in PERSONAL_CLASSIFICATIONS and subjects <= 0:
        errors.setdefault("subjects", []).append(f"{classification} data is about people: give how many (at least 1)")
    if classification in ("public", "non_personal", "anonymous") and values.get("de_identified"):
        errors.setdefault("de_identified", []).append("only personal data can be de-identified")
    if classification == "public" and set(values.get("categories") or ()) - {"statistics", "telemetry"}:
        errors.setdefault("categories", []).append("public data cannot carry personal-data categories")
    if errors:
        raise DatasetInconsistentError(fields=errors)


def _index(codes: list[str]) -> str:
    return "|" + "|".join(dict.fromkeys(codes)) + "|"


def _reindex(dataset: Dataset) -> None:
    """Keep the catalogue's search columns in step with the facts."""
    dataset.jurisdiction_index = _index([*dataset.subject_jurisdictions, dataset.storage_jurisdiction])
    dataset.category_index = _index(list(dataset.categories))


@transaction.atomic
def dataset_create(*, membership: Membership, values: dict[str, Any]) -> Dataset:
    values = dict(values)
    values.setdefault("storage_jurisdiction", (values.get("subject_jurisdictions") or [""])[0])
    dataset_validate_facts(values)
    dataset = Dataset(provider=membership.organisation, status=Dataset.Status.DRAFT, **values)
    _reindex(dataset)
    dataset.save()
    return dataset


@transaction.atomic
def dataset_update(*, dataset_id: object, values: dict[str, Any]) -> Dataset:
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    changed_facts = [k for k in values if k in LEGAL_FACTS and values[k] != getattr(dataset, k)]
    if changed_facts and dataset.status != Dataset.Status.DRAFT:
        raise DatasetFactsLockedError(fields={k: ["cannot change once published"] for k in changed_facts})
    merged = {k: getattr(dataset, k) for k in LEGAL_FACTS} | values
    dataset_validate_facts(merged)
    for key, value in values.items():
        setattr(dataset, key, value)
    _reindex(dataset)
    dataset.save()
    return dataset


@transaction.atomic
def dataset_publish(*, dataset_id: object) -> Dataset:
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    if dataset.status == Dataset.Status.PUBLISHED:
        return dataset  # publishing twice is harmless
    if dataset.status != Dataset.Status.DRAFT:
        raise TradeTransitionNotAllowedError("Only a draft can be published.")
    dataset.status = Dataset.Status.PUBLISHED
    dataset.published_at = timezone.now()
    dataset.save(update_fields=["status", "published_at", "updated_at"])
    return dataset


@transaction.atomic
def dataset_withdraw(*, dataset_id: object) -> Dataset:
    """Take a listing out of the catalogue; trades already open go on."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
    dataset.status = Dataset.Status.WITHDRAWN
    dataset.save(update_fields=["status", "updated_at"])
    return dataset
