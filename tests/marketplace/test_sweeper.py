"""The sweeper re-drives stuck trades, and stops looping on a poison message
(failure F9 in docs/reliability.md)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import AuditEvent
from marketplace.models import Trade
from marketplace.services import trade_transitions
from marketplace.services.sweeper import trades_sweep_stuck
from tests.factories import TradeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """What the sweeper publishes; no worker runs in these tests, so every re-drive 'fails'."""
    published: list[tuple[str, str]] = []
    monkeypatch.setattr(trade_transitions, "trade_enqueue", lambda task, trade_id: published.append((task, trade_id)))
    monkeypatch.setattr(
        "marketplace.services.sweeper.trade_enqueue", lambda task, trade_id: published.append((task, trade_id))
    )
    return published


def stale(status: str, buyer, dataset) -> Trade:
    return TradeFactory.create(
        dataset=dataset, buyer=buyer.organisation, status=status, status_changed_at=timezone.now() - timedelta(hours=1)
    )


def test_a_check_that_keeps_failing_goes_to_an_officer(settings, enqueued, buyer_eu, eu_personal):
    settings.ELEMENTA_MAX_REDRIVES = 3
    trade = stale(Trade.Status.CHECKING, buyer_eu, eu_personal)

    rounds = [trades_sweep_stuck() for _ in range(4)]

    assert [r["check"] for r in rounds] == [1, 1, 1, 0] and rounds[3]["to_review"] == 1
    assert enqueued == [("check", str(trade.id))] * 3
    trade.refresh_from_db()
    assert trade.status == Trade.Status.IN_REVIEW and trade.redrives == 0
    assert "failed after 3 re-drives" in trade.events.last().reason


def test_a_settlement_that_keeps_failing_is_recorded_once_and_left_alone(settings, enqueued, buyer_eu, eu_personal):
    settings.ELEMENTA_MAX_REDRIVES = 2
    trade = stale(Trade.Status.APPROVED, buyer_eu, eu_personal)

    rounds = [trades_sweep_stuck() for _ in range(5)]

    assert [r["settle"] for r in rounds] == [1, 1, 0, 0, 0]
    assert [r["settlement_stuck"] for r in rounds] == [0, 0, 1, 0, 0]
    assert AuditEvent.objects.filter(kind="trade.settlement_stuck", subject_id=str(trade.id)).count() == 1
    assert Trade.objects.get(pk=trade.pk).status == Trade.Status.APPROVED  # money is not moved by the sweeper


def test_progress_resets_the_count(settings, enqueued, buyer_eu, eu_personal):
    settings.ELEMENTA_MAX_REDRIVES = 2
    trade = stale(Trade.Status.CHECKING, buyer_eu, eu_personal)
    trades_sweep_stuck()
    trade_transitions.trade_transition(trade_id=trade.id, to=Trade.Status.NEEDS_DOCUMENTS, actor_label="system:test")
    trade_transitions.trade_transition(trade_id=trade.id, to=Trade.Status.CHECKING, actor_label="system:test")

    assert Trade.objects.get(pk=trade.pk).redrives == 0


def test_fresh_trades_are_not_swept(enqueued, buyer_eu, eu_personal):
    TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)

    assert trades_sweep_stuck()["check"] == 0 and enqueued == []


def test_re_drives_back_off_so_an_outage_does_not_use_them_up(settings, enqueued, buyer_eu, eu_personal):
    """A frequent sweep picks a stuck trade up after ELEMENTA_STUCK_AFTER, then waits twice as long
    for each further re-drive: a worker that is down for a few minutes does not send it to review."""
    settings.ELEMENTA_STUCK_AFTER = timedelta(seconds=30)
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.CHECKING,
                         status_changed_at=timezone.now() - timedelta(seconds=31))
    start = timezone.now()

    sweeps = [trades_sweep_stuck(now=start + timedelta(seconds=s))["check"] for s in range(0, 180, 10)]

    # re-driven at 31 s (×1), then after 60 s and 120 s since the change (×2, ×4): three in three minutes
    assert sum(sweeps) == 3 and enqueued == [("check", str(trade.id))] * 3
    assert Trade.objects.get(pk=trade.pk).status == Trade.Status.CHECKING
