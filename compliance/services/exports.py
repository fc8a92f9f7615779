"""The export ledger behind cumulative thresholds: reserve, commit, release, and the sums a check reads."""

import json
import uuid
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, Case, Field, Max, Sum, Value, When
from django.utils import timezone

from compliance.models import ExporterLock, ExportRecord

COUNTED = (ExportRecord.State.RESERVED, ExportRecord.State.COMMITTED)


def export_lock(*, exporter_id: UUID) -> None:
    """Serialise checks of one exporter until the caller's transaction ends. One statement: on
    PostgreSQL the upsert creates the exporter's row or, if it exists, row-locks it (ON CONFLICT
    DO UPDATE locks the conflicting row); SQLite's IMMEDIATE transactions already serialise every
    writer, so there it only makes sure the row exists."""
    table = ExporterLock._meta.db_table
    key = ExporterLock._meta.get_field("exporter_id").get_db_prep_value(exporter_id, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (exporter_id) VALUES (%s) "
                "ON CONFLICT (exporter_id) DO UPDATE SET exporter_id = EXCLUDED.exporter_id",
                [key],
            )
        else:
            cursor.execute(f"INSERT OR IGNORE INTO {table} (exporter_id) VALUES (%s)", [key])


# The exporter's running tallies (ExportTally, kept by triggers) less the excluded subject's own
# record, netted per day and buyer first (so a day whose only transfer is the excluded one has
# none left and cannot date its bucket), then summed per window bucket.
_PRIOR_SQL = """
SELECT classification, categories, same_buyer, recent, SUM(subjects), MAX(day) FROM (
    SELECT classification, categories, buyer_id = %(buyer)s AS same_buyer, day >= %(year_start)s AS recent, day,
           SUM(subjects) AS subjects
    FROM (
        SELECT classification, categories, buyer_id, day, subjects, transfers
        FROM compliance_exporttally
        WHERE exporter_id = %(exporter)s AND day >= %(since)s AND day <= %(until)s AND transfers > 0
        UNION ALL
        SELECT classification, categories, buyer_id, date, -subjects, -1
        FROM compliance_exportrecord
        WHERE subject_type = %(subject_type)s AND subject_id = %(subject)s AND exporter_id = %(exporter)s
              AND state IN ('reserved', 'committed') AND date >= %(since)s AND date <= %(until)s
    ) AS rows
    GROUP BY classification, categories, buyer_id, day
    HAVING SUM(transfers) > 0
) AS days
GROUP BY classification, categories, same_buyer, recent
"""


def export_prior(
    *, exporter_id: UUID, buyer_id: UUID, trade_date: date, exclude_subject_id: UUID | None = None,
    exclude_subject_type: str = "trade",
) -> list[dict[str, Any]]:
    """The exporter's earlier counted transfers (reserved or committed), summed per window bucket.

    Every window a rule uses ends on the trade date: China counts since 1 January of the trade
    year, the US rule the 12 months before it. So two buckets suffice, since 1 January (inside both
    windows) and the rest of the last 12 months (the US window only); each is summed per
    classification, category set and same-buyer flag, and dated by its latest transfer. One
    statement over the running tallies (ExportTally: one row per day, buyer and kind of data), so
    a check reads at most a few hundred rows whether the exporter made ten transfers or a million.
    The excluded subject's own record is found by its unique key (type and id): by id alone, the
    only index was the exporter's, and the lookup read the exporter's whole year (192 ms at a
    million exports, bench/history.py)."""
    year_start = date(trade_date.year, 1, 1)
    since = min(year_start, trade_date - timedelta(days=366))
    vendor = connection.vendor

    def uuid_param(value: UUID | None) -> Any:
        if value is None:
            return None
        value = value if isinstance(value, UUID) else UUID(str(value))
        return value if vendor == "postgresql" else value.hex

    def day_param(value: date) -> Any:
        return value if vendor == "postgresql" else value.isoformat()

    params = {
        "exporter": uuid_param(exporter_id), "buyer": uuid_param(buyer_id), "subject": uuid_param(exclude_subject_id),
        "subject_type": exclude_subject_type,
        "year_start": day_param(year_start), "since": day_param(since), "until": day_param(trade_date),
    }
    with connection.cursor() as cursor:
        cursor.execute(_PRIOR_SQL, params)
        rows = cursor.fetchall()
    entries: list[dict[str, Any]] = []
    for recent in (True, False):  # the scan's order: this year's bucket first
        for classification, categories, same_buyer, is_recent, total, last in rows:
            if bool(is_recent) != recent:
                continue
            if isinstance(categories, str):  # SQLite returns JSON as text; psycopg decodes jsonb
                categories = json.loads(categories)
            if isinstance(last, str):  # SQLite's MAX over a date column is text
                last = date.fromisoformat(last)
            entries.append({"date": last.isoformat(), "classification": classification, "categories": categories,
                            "subjects": int(total), "same_buyer": bool(same_buyer)})
    return entries


def export_prior_scan(
    *, exporter_id: UUID, buyer_id: UUID, trade_date: date, exclude_subject_id: UUID | None = None,
    exclude_subject_type: str = "trade",
) -> list[dict[str, Any]]:
    """export_prior computed from the records themselves (the scan the tallies replaced): the
    reference the tests hold the tallies to, and a way to check them by hand."""
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
    classification: str, categories: list[str], subjects: int, committed: bool = False,
) -> None:
    """Count a transfer a check let through (again, if a re-check lets it through once more). Call
    under export_lock, in the check's transaction. One upsert; the triggers move the tallies.
    `committed`: the check settles the trade in the same transaction, dated `day` (what
    export_commit would do next, without its statement)."""
    now = timezone.now()
    state = ExportRecord.State.COMMITTED if committed else ExportRecord.State.RESERVED
    values = {"id": uuid.uuid4(), "exporter_id": exporter_id, "buyer_id": buyer_id, "subject_type": subject_type,
              "subject_id": subject_id, "date": day, "classification": classification, "categories": categories,
              "subjects": subjects, "state": state, "created_at": now, "updated_at": now}
    # get_field is typed as any field or relation; these are all concrete columns
    fields: dict[str, Field[Any, Any]] = {name: ExportRecord._meta.get_field(name) for name in values}  # type: ignore[misc]
    columns = ", ".join(field.column for field in fields.values())
    updates = ", ".join(f"{fields[n].column} = EXCLUDED.{fields[n].column}" for n in values if n not in
                        ("id", "subject_type", "subject_id", "created_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ExportRecord._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(values))}) "
            f"ON CONFLICT (subject_type, subject_id) DO UPDATE SET {updates}",
            [fields[name].get_db_prep_save(value, connection) for name, value in values.items()],
        )


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
