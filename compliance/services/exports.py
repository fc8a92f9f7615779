"""The export ledger behind cumulative thresholds: reserve, commit, release, and the sums a check reads."""

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, Max, Sum, Value, When

from compliance.models import ExporterLock, ExportRecord

COUNTED = (ExportRecord.State.RESERVED, ExportRecord.State.COMMITTED)


def export_lock(*, exporter_id: UUID) -> None:
    """Serialise checks of one exporter until the caller's transaction ends (PostgreSQL row lock;
    SQLite's IMMEDIATE transactions already serialise every writer)."""
    try:
        with transaction.atomic():
            ExporterLock.objects.get_or_create(exporter_id=exporter_id)
    except IntegrityError:  # another check created it first: it exists now
        pass
    ExporterLock.objects.select_for_update().get(exporter_id=exporter_id)


def export_prior(
    *, exporter_id: UUID, buyer_id: UUID, trade_date: date, exclude_subject_id: UUID | None = None
) -> list[dict[str, Any]]:
    """The exporter's earlier counted transfers (reserved or committed), summed per window bucket.

    Every window a rule uses ends on the trade date: China counts since 1 January of the trade
    year, the US rule the 12 months before it. So two buckets suffice, since 1 January (inside both
    windows) and the rest of the last 12 months (the US window only); each is summed per
    classification, category set and same-buyer flag, and dated by its latest transfer. A check
    costs the same after ten trades or ten thousand buckets' worth of rows are summed in SQL."""
    year_start = date(trade_date.year, 1, 1)
    since = min(year_start, trade_date - timedelta(days=366))
    base = ExportRecord.objects.filter(
        exporter_id=exporter_id, state__in=COUNTED, date__gte=since, date__lte=trade_date
    )
    if exclude_subject_id is not None:
        base = base.exclude(subject_id=exclude_subject_id)
    entries: list[dict[str, Any]] = []
    for bucket in (base.filter(date__gte=year_start), base.filter(date__lt=year_start)):
        rows = (
            bucket.annotate(
                same_buyer=Case(
                    When(buyer_id=buyer_id, then=Value(True)), default=Value(False), output_field=BooleanField()
                )
            )
            .values("classification", "categories", "same_buyer")
            .annotate(total=Sum("subjects"), last=Max("date"))
            .order_by()
        )
        entries.extend(
            {"date": r["last"].isoformat(), "classification": r["classification"], "categories": r["categories"],
             "subjects": r["total"], "same_buyer": r["same_buyer"]}
            for r in rows
        )
    return entries


def export_reserve(
    *, subject_type: str, subject_id: UUID, exporter_id: UUID, buyer_id: UUID, day: date,
    classification: str, categories: list[str], subjects: int,
) -> ExportRecord:
    """Count a transfer a check let through. Call under export_lock, in the check's transaction."""
    record, _ = ExportRecord.objects.update_or_create(
        subject_type=subject_type, subject_id=subject_id,
        defaults={"exporter_id": exporter_id, "buyer_id": buyer_id, "date": day, "classification": classification,
                  "categories": categories, "subjects": subjects, "state": ExportRecord.State.RESERVED},
    )
    return record


def export_commit(*, subject_type: str, subject_id: UUID, day: date) -> None:
    """The transfer happened (settlement): it stays counted, dated the day it settled."""
    ExportRecord.objects.filter(subject_type=subject_type, subject_id=subject_id).exclude(
        state=ExportRecord.State.RELEASED
    ).update(state=ExportRecord.State.COMMITTED, date=day)


def export_release(*, subject_type: str, subject_id: UUID) -> None:
    """The transfer will not happen (rejected, cancelled, or re-checked as denied): stop counting it."""
    ExportRecord.objects.filter(
        subject_type=subject_type, subject_id=subject_id, state=ExportRecord.State.RESERVED
    ).update(state=ExportRecord.State.RELEASED)
