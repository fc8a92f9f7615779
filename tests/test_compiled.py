"""config/compiled.py: a lookup compiled once gives what the plain queryset gives (fields, related
rows, annotations), in one statement, on whichever database the suite runs on; and it refuses
what the ORM refuses."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from compliance.models import Review
from marketplace.models import DatasetFile, Trade
from marketplace.services.grants import grant_context_annotations
from marketplace.services.trade_transitions import trade_lock
from marketplace.services.trades import trade_create

pytestmark = pytest.mark.django_db

RELATED = ("dataset", "dataset__provider", "provider", "buyer")


def _plain(trade_id: uuid.UUID) -> Trade:
    return Trade.objects.select_related(*RELATED).annotate(**grant_context_annotations()).get(pk=trade_id)


def _fields(obj: object) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}  # type: ignore[attr-defined]


def test_the_compiled_lock_reads_what_the_queryset_reads_in_one_statement(rulepacks, buyer_eu, eu_personal, officer):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id)
    DatasetFile.objects.create(dataset=eu_personal, version=3, file="f.csv", original_name="f.csv",
                               content_type="text/csv", size=1, sha256="0" * 64)
    Review.objects.create(subject_type="trade", subject_id=trade.id, verdict="approve", reason="fine",
                          officer=officer.user)
    expected = _plain(trade.id)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = trade_lock(trade_id=str(trade.id), related=True, for_settlement=True)
        assert locked is not None
        related = [locked.dataset, locked.dataset.provider, locked.provider, locked.buyer]

    assert len([q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]) == 1
    assert _fields(locked) == _fields(expected)
    for got, want in zip(related, [expected.dataset, expected.dataset.provider, expected.provider, expected.buyer],
                         strict=True):
        assert _fields(got) == _fields(want)
    assert (locked.grant_context_existing, bool(locked.grant_context_approved), locked.grant_context_latest) == (
        None, True, 3)


def test_each_shape_of_the_lock_finds_the_row_or_none(rulepacks, buyer_eu, eu_personal):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id)
    with transaction.atomic():
        for related in (False, True):
            for for_settlement in (False, True):
                found = trade_lock(trade_id=trade.id, related=related, for_settlement=for_settlement)
                assert found is not None and _fields(found) == _fields(Trade.objects.get(pk=trade.id))
                assert trade_lock(trade_id=uuid.uuid4(), related=related, for_settlement=for_settlement) is None


def test_the_compiled_lock_refuses_what_the_orm_refuses(rulepacks, buyer_eu, eu_personal):
    trade_create(membership=buyer_eu, dataset_id=eu_personal.id)
    with pytest.raises(ValidationError):
        with transaction.atomic():
            trade_lock(trade_id="not-a-uuid")


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    # Where the database has row locks, refused before any statement runs, as the ORM refuses it;
    # on SQLite both let it through. No trade is created: its committed check would go to a worker
    # of another test and race this test's flush.
    def outcome(lookup):
        try:
            return lookup()
        except TransactionManagementError as error:
            return type(error)

    key = uuid.uuid4()
    compiled = outcome(lambda: trade_lock(trade_id=key, related=True, for_settlement=True))
    plain = outcome(lambda: Trade.objects.select_for_update().filter(pk=key).first())
    assert compiled == plain
    if connection.features.has_select_for_update:
        assert compiled is TransactionManagementError


def test_the_compiled_next_waiting_trade_is_the_oldest_in_checking_as_the_queryset_finds_it(
    rulepacks, buyer_eu, eu_personal
):
    from marketplace.services.trade_transitions import trade_lock_next_checking

    older, newer = (trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True) for _ in range(2))
    Trade.objects.filter(pk=older.id).update(status_changed_at=newer.status_changed_at - timedelta(seconds=1))
    with transaction.atomic():
        for for_settlement in (False, True):
            for wait in (False, True):
                found = trade_lock_next_checking(for_settlement=for_settlement, wait=wait)
                assert found is not None and _fields(found) == _fields(_plain(older.id))
                assert _fields(found.dataset) == _fields(_plain(older.id).dataset)
    Trade.objects.filter(pk=older.id).update(redrives=1)  # re-driven: its own task has it
    with transaction.atomic():
        assert trade_lock_next_checking(for_settlement=True).id == newer.id
    Trade.objects.filter(pk=newer.id).update(status="settled")
    with transaction.atomic():
        assert trade_lock_next_checking(for_settlement=True) is None
