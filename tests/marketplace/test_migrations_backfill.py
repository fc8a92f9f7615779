"""The waiting_since, flagged_regimes and one-live-renewal migrations on existing rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("marketplace", "0012_four_eyes"), ("compliance", "0007_rulepack_approval")]
AFTER = [("marketplace", "0013_renewal_and_waiting"), ("compliance", "0008_flagged_regimes")]


@pytest.fixture(autouse=True)
def _back_to_the_latest_schema():
    """These tests move the schema back and forth; every later test needs it fully migrated."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def rows(apps):
    org = apps.get_model("marketplace", "Organisation").objects.create(
        name="Old Buyer", jurisdiction="DE", headquarters="DE"
    )
    provider = apps.get_model("marketplace", "Organisation").objects.create(
        name="Old Seller", jurisdiction="DE", headquarters="DE"
    )
    dataset = apps.get_model("marketplace", "Dataset").objects.create(
        provider=provider,
        title="Old",
        description="x",
        subject_jurisdictions=["DE"],
        storage_jurisdiction="DE",
        classification="personal",
        categories=["contact"],
        subjects=1,
        price="10.00",
        currency="EUR",
        status="published",
    )
    Trade = apps.get_model("marketplace", "Trade")

    def trade(status, changed, **extra):
        return Trade.objects.create(
            dataset=dataset,
            provider=provider,
            buyer=org,
            destination="DE",
            price="10.00",
            currency="EUR",
            pricing="subscription",
            status=status,
            status_changed_at=changed,
            **extra,
        )

    return Trade, trade


def test_existing_rows_are_backfilled():
    apps = migrate(BEFORE)
    Trade, trade = rows(apps)
    TradeEvent = apps.get_model("marketplace", "TradeEvent")
    morning, now = timezone.now() - timedelta(hours=6), timezone.now()
    rechecked = trade("needs_documents", now)
    for from_status, to_status in (
        ("", "checking"),
        ("checking", "needs_documents"),
        ("needs_documents", "checking"),
        ("checking", "needs_documents"),
    ):
        TradeEvent.objects.create(trade=rechecked, from_status=from_status, to_status=to_status, actor_label="x")
    TradeEvent.objects.filter(trade=rechecked).update(at=morning)  # all in the morning, in id order
    silent = trade("in_review", now)
    done = trade("settled", now)
    check = apps.get_model("compliance", "ComplianceCheck").objects.create(
        subject_type="trade",
        subject_id=done.id,
        facts={},
        outcome="review",
        engine_version="1",
        decision={
            "findings": [
                {"regime": "SANCTIONS", "outcome": "allow"},
                {"regime": "EU", "outcome": "review"},
                {"regime": "US", "outcome": "needs_mechanism"},
            ]
        },
    )

    apps = migrate(AFTER)

    Trade = apps.get_model("marketplace", "Trade")
    assert Trade.objects.get(pk=rechecked.pk).waiting_since == morning
    assert Trade.objects.get(pk=silent.pk).waiting_since == now
    assert Trade.objects.get(pk=done.pk).waiting_since is None
    assert apps.get_model("compliance", "ComplianceCheck").objects.get(pk=check.pk).flagged_regimes == "|EU|US|"


def test_two_live_renewals_of_one_period_stop_the_migration_naming_them():
    apps = migrate(BEFORE)
    _, trade = rows(apps)
    first = trade("settled", timezone.now())
    trade("settled", timezone.now(), renews=first)
    trade("checking", timezone.now(), renews=first)

    with pytest.raises(RuntimeError, match=str(first.id)):
        migrate(AFTER)
    migrate(AFTER[1:])  # leave the database migrated for the next test
    apps = migrate(BEFORE)
    apps.get_model("marketplace", "Trade").objects.filter(renews__isnull=False).delete()
    migrate(AFTER)
