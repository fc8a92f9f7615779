"""The running export tallies: a check reads the same earlier exports as a scan of the records,
whatever history led there, and reads them in the same number of statements after one earlier
export or a thousand."""

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.models import ExportRecord
from compliance.services.exports import (
    export_commit,
    export_lock,
    export_prior,
    export_prior_scan,
    export_release,
    export_reserve,
)
from marketplace.models import Trade
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create

pytestmark = pytest.mark.django_db

EXPORTERS = [uuid.UUID(int=1), uuid.UUID(int=2)]
BUYERS = [uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)]
KINDS = [("personal", ["contact"]), ("personal", ["contact", "financial"]), ("sensitive_personal", ["health"])]
START = date(2025, 1, 1)


def canonical(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (e["date"], e["classification"], tuple(e["categories"]), int(e["subjects"]), bool(e["same_buyer"]))
        for e in entries
    )


# one step of a history: (operation, subject index, exporter, buyer, kind, day offset, subjects)
steps = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "commit", "release", "record"]),
        st.integers(0, 7),
        st.sampled_from(EXPORTERS),
        st.sampled_from(BUYERS),
        st.sampled_from(KINDS),
        st.integers(0, 800),
        st.integers(1, 5000),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, checks=st.lists(st.tuples(st.integers(0, 830), st.sampled_from(BUYERS), st.integers(-1, 7)),
                                      min_size=1, max_size=6))
def test_tallies_equal_the_scan_over_any_history(history, checks):
    subjects = [uuid.UUID(int=100 + i) for i in range(8)]
    with transaction.atomic():
        for op, index, exporter, buyer, (classification, categories), offset, count in history:
            day, subject = START + timedelta(days=offset), subjects[index]
            if op == "reserve":
                export_reserve(subject_type="trade", subject_id=subject, exporter_id=exporter, buyer_id=buyer,
                               day=day, classification=classification, categories=categories, subjects=count)
            elif op == "commit":
                export_commit(subject_type="trade", subject_id=subject, day=day)
            elif op == "release":
                export_release(subject_type="trade", subject_id=subject)
            else:  # a row written past the services (the admin, a fixture): the triggers still count it
                ExportRecord.objects.create(
                    subject_type="grant", subject_id=uuid.uuid4(), exporter_id=exporter, buyer_id=buyer, date=day,
                    classification=classification, categories=categories, subjects=count,
                    state=["reserved", "committed", "released"][count % 3],
                )
        for offset, buyer, excluded in checks:
            for exporter in EXPORTERS:
                arguments = {"exporter_id": exporter, "buyer_id": buyer, "trade_date": START + timedelta(days=offset),
                             "exclude_subject_id": subjects[excluded] if excluded >= 0 else None}
                assert canonical(export_prior(**arguments)) == canonical(export_prior_scan(**arguments))
        transaction.set_rollback(True)


def test_a_deleted_record_leaves_the_tallies():
    exporter, buyer = EXPORTERS[0], BUYERS[0]
    export_reserve(subject_type="trade", subject_id=uuid.UUID(int=5), exporter_id=exporter, buyer_id=buyer,
                   day=START, classification="personal", categories=["contact"], subjects=10)
    assert export_prior(exporter_id=exporter, buyer_id=buyer, trade_date=START)[0]["subjects"] == 10

    ExportRecord.objects.all().delete()

    assert export_prior(exporter_id=exporter, buyer_id=buyer, trade_date=START) == []


def _history(provider_id: uuid.UUID, count: int) -> None:
    today = date.today()
    ExportRecord.objects.bulk_create(
        ExportRecord(subject_type="trade", subject_id=uuid.uuid4(), exporter_id=provider_id, buyer_id=uuid.uuid4(),
                     date=today - timedelta(days=i % 300), classification="personal", categories=["contact"],
                     subjects=1, state="committed")
        for i in range(count)
    )


def _check_statements(membership: Any, dataset: Any) -> int:
    trade = trade_create(membership=membership, dataset_id=dataset.id, repeat=True)
    with CaptureQueriesContext(connection) as queries:
        settled = trade_check_compliance(trade_id=trade.id, settle=True)
    assert settled is not None and settled.status == Trade.Status.SETTLED
    return len(queries.captured_queries)


def test_the_check_reads_as_many_statements_after_a_thousand_exports_as_after_one(
    rulepacks, buyer_eu, eu_personal
):
    _history(eu_personal.provider_id, 1)
    _check_statements(buyer_eu, eu_personal)  # warms the per-process caches (rule packs, subscriptions)
    after_one = _check_statements(buyer_eu, eu_personal)
    _history(eu_personal.provider_id, 1000)

    assert _check_statements(buyer_eu, eu_personal) == after_one


def test_export_lock_is_one_statement():
    with CaptureQueriesContext(connection) as queries:
        export_lock(exporter_id=EXPORTERS[0])
        export_lock(exporter_id=EXPORTERS[0])
    assert len(queries.captured_queries) == 2
