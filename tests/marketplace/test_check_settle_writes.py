"""What a trade that the engine allows writes when its check settles it in the same task: the same
records as deciding, approving and settling one at a time, written with fewer statements (the
audit records in one INSERT, the trade row once, each party's members told once by one task)."""

from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from compliance.models import AuditEvent
from compliance.services.audit import audit_deferred, audit_record, audit_verify
from marketplace.models import (
    LedgerTransaction,
    Membership,
    Notification,
    Settlement,
    Trade,
    Wallet,
    WebhookDelivery,
    WebhookEndpoint,
)
from marketplace.money import AMOUNT_MAX
from marketplace.services.ledger import EscrowMissingError, ledger_pay_provider
from marketplace.services.notifications import notifications_send
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _audit_since(last_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.data.get("to", "")) for e in AuditEvent.objects.filter(id__gt=last_id).order_by("id")]


def test_the_audit_trail_reads_decided_approved_granted_settled_in_order(rulepacks, buyer_eu, eu_personal):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]

    settled = trade_check_compliance(trade_id=trade.id, settle=True)

    assert settled is not None and settled.status == Trade.Status.SETTLED
    assert _audit_since(last) == [
        ("trade.decided", ""),
        ("trade.status_changed", "approved"),
        ("grant.issued", ""),
        ("trade.status_changed", "settled"),
    ]
    assert [(e.from_status, e.to_status) for e in settled.events.order_by("id")] == [
        ("", "checking"), ("checking", "approved"), ("approved", "settled")]
    assert audit_verify().ok  # deferred records chain like any others


def test_each_member_is_told_once_that_the_trade_settled_by_one_message(
    rulepacks, buyer_eu, eu_personal, django_capture_on_commit_callbacks
):
    colleague = MembershipFactory.create(organisation=buyer_eu.organisation, role=Membership.Role.BUYER)
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    before = set(Notification.objects.values_list("id", flat=True))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        trade_check_compliance(trade_id=trade.id, settle=True)

    told = Notification.objects.exclude(id__in=before).filter(kind="trade_status")
    members = {buyer_eu.user_id, colleague.user_id,
               *Membership.objects.filter(organisation_id=eu_personal.provider_id).values_list("user_id", flat=True)}
    assert sorted(n.user_id for n in told) == sorted(members)  # once each, not once per status
    assert {n.subject for n in told} == {f"Trade {str(trade.id)[:8]} is now settled"}
    assert len([c for c in callbacks if "_enqueue" in repr(c)]) == 1


def test_a_purchase_emails_nobody_until_the_check_has_decided_and_webhooks_still_hear_of_it(
    rulepacks, buyer_eu, eu_personal
):
    endpoint = WebhookEndpoint.objects.create(organisation=buyer_eu.organisation, url="https://hooks.example.org/in",
                                              secret="s3cret", events=["trade.status_changed"])
    before = set(Notification.objects.values_list("id", flat=True))

    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)

    assert not Notification.objects.exclude(id__in=before).exists()  # "checking" waits on nobody
    delivered = WebhookDelivery.objects.filter(endpoint=endpoint, kind="trade.status_changed")
    assert [d.payload["data"]["to"] for d in delivered] == ["checking"]

    trade_check_compliance(trade_id=trade.id, settle=True)

    told = Notification.objects.exclude(id__in=before).filter(user_id=buyer_eu.user_id)
    assert [n.subject for n in told] == [f"Trade {str(trade.id)[:8]} is now settled"]


def test_webhook_deliveries_of_deferred_events_carry_the_events_real_ids(rulepacks, buyer_eu, eu_personal):
    endpoint = WebhookEndpoint.objects.create(organisation=buyer_eu.organisation, url="https://hooks.example.org/in",
                                              secret="s3cret", events=["trade.status_changed", "grant.issued"])
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    before = set(WebhookDelivery.objects.values_list("id", flat=True))

    trade_check_compliance(trade_id=trade.id, settle=True)

    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(id__in=before).order_by("created_at")
    ids = {f"evt_{pk}" for pk in AuditEvent.objects.filter(
        kind__in=["trade.status_changed", "grant.issued"]).values_list("id", flat=True)}
    assert len(deliveries) == 3  # approved, grant issued, settled
    assert {d.event_id for d in deliveries} <= ids and "evt_None" not in {d.event_id for d in deliveries}


def test_a_deferred_block_that_fails_records_nothing(db):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic(), audit_deferred():
        audit_record(kind="test.one", subject_type="test", subject_id="a")
        raise RuntimeError("the action failed")
    assert AuditEvent.objects.count() == before


def test_deferred_records_are_one_insert_in_the_order_recorded(db):
    with CaptureQueriesContext(connection) as queries, audit_deferred():
        for n in range(5):
            audit_record(kind=f"test.{n}", subject_type="test", subject_id="b")
        assert AuditEvent.objects.filter(subject_id="b").count() == 0  # not yet: at the end of the block
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "compliance_auditevent"')]
    assert len(inserts) == 1
    assert list(AuditEvent.objects.filter(subject_id="b").order_by("id").values_list("kind", flat=True)) == [
        f"test.{n}" for n in range(5)]


# --- the batched e-mail task --------------------------------------------------------------------


def _outbox(buyer_eu: Membership, count: int) -> list[str]:
    from marketplace.services.notifications import notify

    buyer_eu.user.email = "buyer@example.org"
    buyer_eu.user.save(update_fields=["email"])
    with transaction.atomic():
        rows = notify(kind="trade_status", user_ids=[buyer_eu.user_id] * 1, subject="s", body="b")
        rows += [
            Notification.objects.create(kind="trade_status", email=f"person{n}@example.org", subject=f"s{n}", body="b")
            for n in range(count - 1)
        ]
    return [str(n.id) for n in rows]


def test_one_task_sends_each_notification_once(buyer_eu):
    ids = _outbox(buyer_eu, 4)
    mail.outbox.clear()

    assert notifications_send(notification_ids=ids) == 4
    assert notifications_send(notification_ids=ids) == 0  # a duplicate message sends nothing again

    assert len(mail.outbox) == 4
    assert Notification.objects.filter(id__in=ids, sent_at__isnull=True).count() == 0


def test_a_mail_server_failure_part_way_keeps_what_was_sent_and_retries_only_the_rest(buyer_eu, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    ids = _outbox(buyer_eu, 3)
    mail.outbox.clear()
    real_send = EmailBackend.send_messages
    calls = {"n": 0}

    def flaky(self, messages):  # the second message fails
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("mail server went away")
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    with pytest.raises(OSError):
        notifications_send(notification_ids=ids)
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(id__in=ids, sent_at__isnull=False).count() == 1

    monkeypatch.setattr(EmailBackend, "send_messages", real_send)
    assert notifications_send(notification_ids=ids) == 2  # the retry: only the two not yet sent
    assert len(mail.outbox) == 3


# --- settlement's money in two statements (PostgreSQL) -----------------------------------------

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="the two-statement settlement is PostgreSQL's path")


def _approved(buyer_eu: Membership, eu_personal) -> Trade:
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    Wallet.objects.get_or_create(organisation_id=trade.provider_id, currency=trade.currency)
    return trade


@postgres_only
def test_settlement_moves_the_money_and_records_it_in_two_statements(rulepacks, buyer_eu, eu_personal):
    trade = _approved(buyer_eu, eu_personal)
    buyer_before = Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency)
    provider_before = Wallet.objects.get(organisation_id=trade.provider_id, currency=trade.currency)

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        ledger_pay_provider(trade=trade)

    assert len([q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]) == 2
    fee = Settlement.objects.get(trade=trade).platform_fee
    assert Wallet.objects.get(pk=buyer_before.pk).held == buyer_before.held - trade.price
    assert Wallet.objects.get(pk=provider_before.pk).available == provider_before.available + trade.price - fee
    settle = LedgerTransaction.objects.get(trade=trade, kind="settle")
    assert sum(e.amount for e in settle.entries.all()) == Decimal(0)
    assert {e.account for e in settle.entries.all()} == {"held", "available", "revenue"}


@postgres_only
def test_a_provider_wallet_that_would_overflow_settles_nothing(rulepacks, buyer_eu, eu_personal):
    from marketplace.errors import AmountOutOfRangeError

    trade = _approved(buyer_eu, eu_personal)
    Wallet.objects.filter(organisation_id=trade.provider_id, currency=trade.currency).update(available=AMOUNT_MAX)
    buyer_held = Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency).held

    with pytest.raises(AmountOutOfRangeError), transaction.atomic():
        ledger_pay_provider(trade=trade)

    assert not Settlement.objects.filter(trade=trade).exists()
    assert not LedgerTransaction.objects.filter(trade=trade, kind="settle").exists()
    assert Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency).held == buyer_held


@postgres_only
def test_held_funds_that_do_not_cover_the_price_settle_nothing(rulepacks, buyer_eu, eu_personal):
    trade = _approved(buyer_eu, eu_personal)
    Wallet.objects.filter(organisation_id=trade.buyer_id, currency=trade.currency).update(held=0)

    with pytest.raises(EscrowMissingError), transaction.atomic():
        ledger_pay_provider(trade=trade)

    assert not Settlement.objects.filter(trade=trade).exists()


# --- the outbox drain: at most one task per period, whoever writes ------------------------------


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list, float | None]]:
    sent: list[tuple[str, list, float | None]] = []
    monkeypatch.setattr("config.enqueue.send",
                        lambda name, args, countdown, queue: sent.append((name, args, countdown)))
    return sent


def _tell(buyer_eu: Membership, subject: str) -> None:
    from marketplace.services.notifications import notify

    with transaction.atomic():
        notify(kind="trade_status", user_ids=[buyer_eu.user_id], subject=subject, body="b")


@pytest.mark.django_db(transaction=True)
def test_one_drain_stands_for_every_action_until_it_starts_and_sends_all_of_them(buyer_eu, published, settings):
    from marketplace.services.notifications import notifications_drain

    buyer_eu.user.email = "buyer@example.org"
    buyer_eu.user.save(update_fields=["email"])
    for n in range(3):
        _tell(buyer_eu, f"action {n}")

    assert [(name, countdown) for name, _, countdown in published] == [("marketplace.notifications_drain", None)]
    mail.outbox.clear()
    assert notifications_drain() == 3
    assert sorted(m.subject for m in mail.outbox) == ["[Elementa] action 0", "[Elementa] action 1",
                                                      "[Elementa] action 2"]
    assert notifications_drain() == 0  # a duplicate drain finds nothing left

    _tell(buyer_eu, "after the drain started")  # the drain released the claim: this action publishes its own
    assert [name for name, _, _ in published] == ["marketplace.notifications_drain"] * 2


@pytest.mark.django_db(transaction=True)
def test_with_the_shared_cache_down_each_process_claims_the_drain_in_memory(
    buyer_eu, published, settings, monkeypatch
):
    from config.outage import guarded_cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    settings.ELEMENTA_NOTIFY_DRAIN_SECONDS = 30
    monkeypatch.setattr(guarded_cache, "_errors", (ConnectionError,))
    monkeypatch.setattr("django.core.cache.backends.filebased.FileBasedCache.add", down)
    monkeypatch.setattr("django.core.cache.backends.redis.RedisCache.add", down)
    guarded_cache.local.delete("elementa:notifications:drain")
    _tell(buyer_eu, "one")
    _tell(buyer_eu, "two")  # claimed in this process's memory: no second drain

    assert [name for name, _, _ in published] == ["marketplace.notifications_drain"]


@pytest.mark.django_db(transaction=True)
def test_a_drain_that_could_not_be_published_leaves_the_period_unclaimed(buyer_eu, settings, monkeypatch):
    attempts: list[str] = []

    def broker_down(name, args, countdown, queue):
        attempts.append(name)
        raise OSError("broker down")

    monkeypatch.setattr("config.enqueue.send", broker_down)
    settings.ELEMENTA_NOTIFY_DRAIN_SECONDS = 30
    _tell(buyer_eu, "one")
    _tell(buyer_eu, "two")  # not blocked for 30 s by a claim whose drain was never published

    assert attempts == ["marketplace.notifications_drain"] * 2


@pytest.mark.django_db(transaction=True)
def test_with_no_drain_period_each_action_publishes_its_own_send(buyer_eu, published, settings):
    settings.ELEMENTA_NOTIFY_DRAIN_SECONDS = 0
    _tell(buyer_eu, "one")

    assert [name for name, _, _ in published] == ["marketplace.notification_send"]
