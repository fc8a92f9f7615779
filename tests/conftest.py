"""Shared fixtures: API clients per role, the shipped rule packs, and a real Celery worker."""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from compliance.services.rulepacks import rulepack_load_shipped
from marketplace.models import Dataset, Membership, Organisation, Trade
from marketplace.services.compute import compute_queues
from marketplace.services.sessions import session_create
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks; run with DATABASE_URL=postgres://… (CI does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _media_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Uploaded files (the dataset factory uploads one per dataset) go to the session's own folder,
    which pytest removes with its old temporary folders, not to the var folder."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")):
        yield


@pytest.fixture
def rulepacks(db: None) -> None:
    rulepack_load_shipped()


@pytest.fixture
def client_for() -> Callable[[Membership | None], APIClient]:
    """An API client that sends `Authorization: Bearer <token>` for the member's user (a new session each call)."""

    def make(membership: Membership | None) -> APIClient:
        client = APIClient()
        if membership is not None:
            _, token = session_create(user=membership.user)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def operator(db: None) -> Organisation:
    return OrganisationFactory.create(name="Platform", is_operator=True)


@pytest.fixture
def officer(operator: Organisation) -> Membership:
    return MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)


@pytest.fixture
def second_officer(operator: Organisation) -> Membership:
    """Another officer of the operator: the second pair of eyes for money and rule packs."""
    return MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)


@pytest.fixture
def provider_eu(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Rhein GmbH", jurisdiction="DE"), role=Membership.Role.PROVIDER
    )


@pytest.fixture
def provider_cn(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Huaxia Co.", jurisdiction="CN"), role=Membership.Role.PROVIDER
    )


@pytest.fixture
def buyer_eu(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Berlin Insights", jurisdiction="DE"), role=Membership.Role.BUYER
    )


@pytest.fixture
def buyer_us(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Acme Inc.", jurisdiction="US"), role=Membership.Role.BUYER
    )


@pytest.fixture
def buyer_ir(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Tehran Trading", jurisdiction="IR"), role=Membership.Role.BUYER
    )


@pytest.fixture
def eu_personal(provider_eu: Membership) -> Dataset:
    return DatasetFactory.create(
        provider=provider_eu.organisation, title="German retail customers", classification="personal", subjects=50000
    )


@pytest.fixture
def eu_public(provider_eu: Membership) -> Dataset:
    return DatasetFactory.create(
        provider=provider_eu.organisation,
        title="Electricity prices",
        classification="public",
        categories=["statistics"],
        subjects=0,
    )


@pytest.fixture
def eu_health(provider_eu: Membership) -> Dataset:
    """Special-category data: the EU pack sends its sale to an officer (EU-ART9-1)."""
    return DatasetFactory.create(
        provider=provider_eu.organisation,
        title="Wearable heart rates",
        classification="sensitive_personal",
        categories=["health"],
        subjects=8000,
    )


@pytest.fixture
def cn_personal(provider_cn: Membership) -> Dataset:
    return DatasetFactory.create(provider=provider_cn.organisation, title="Shanghai retail panel", currency="USD")


# --- a real Celery worker -------------------------------------------------------------------


def _database_url_for_worker() -> str:
    """The URL of the database the tests are using right now (the test database, not the dev one)."""
    sd = connection.settings_dict
    if sd["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{sd['NAME']}"
    auth = sd["USER"] + (f":{sd['PASSWORD']}" if sd.get("PASSWORD") else "")
    return f"postgres://{auth}@{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}/{sd['NAME']}"


def start_worker(queues: list[str], *, name: str, env: dict[str, str] | None = None,
                 log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """Start `celery worker` on `queues` against the test database and wait until it consumes.

    Test receivers listen on 127.0.0.1, which webhooks may reach only when explicitly allowed."""
    full_env = {**os.environ, "DATABASE_URL": _database_url_for_worker(), "ELEMENTA_SWEEP_INTERVAL": "3600",
                "ELEMENTA_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "ELEMENTA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
                **(env or {})}  # the worker reads the files the tests upload
    log = open(Path(settings.VAR_DIR) / log_name, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2", "-l", "info", "--without-mingle",
         "--without-gossip", "-Q", ",".join(queues), "-n", f"{name}-{os.getpid()}@%h"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own descriptor
    from config.celery_app import noop
    from config.queues import task_queue

    try:
        # declared as the worker declares it (a quorum queue on RabbitMQ)
        noop.apply_async(queue=task_queue(queues[0], settings.CELERY_BROKER_URL)).get(timeout=60)
    except Exception:
        proc.kill()
        raise
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: object, _media_root: None
) -> Iterator[subprocess.Popen[bytes]]:
    """`celery worker` as a separate process on the configured broker and the test database:
    tasks run exactly as in production, after the API's transaction commits. It serves the default
    queue and every compute queue (compute.cn, compute.de, …), as `make run`'s worker does."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        proc = start_worker([settings.CELERY_TASK_DEFAULT_QUEUE, *compute_queues()], name="test")
    yield proc
    stop_worker(proc)


def wait_for_status(trade_id: uuid.UUID | str, statuses: set[str], timeout: float = 60.0) -> Trade:
    """Poll the database until the worker has moved the trade into one of `statuses`."""
    seen: list[Trade] = []

    def arrived() -> Trade | None:
        seen[:] = [Trade.objects.get(pk=trade_id)]
        return seen[0] if seen[0].status in statuses else None

    return eventually(arrived, timeout=timeout,
                      message=lambda: f"trade {trade_id} still {seen[0].status}; expected {statuses}")


@pytest.fixture
def no_trade_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For a test that drives the trade services itself (races on row locks): nothing is published
    for the session's worker, and the trades it creates in `checking` are out of reach of a check
    drain an earlier test left behind (a drain takes any waiting trade with no re-drive, where a
    stray single-trade task only ever touched its own trade)."""
    from django.db.models.signals import post_save

    from marketplace.services import trade_transitions

    monkeypatch.setattr(trade_transitions, "trade_enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr(trade_transitions, "trade_check_request", lambda *args, **kwargs: None)

    def out_of_reach(sender: type[Trade], instance: Trade, created: bool, **kwargs: object) -> None:
        if created and instance.status == Trade.Status.CHECKING:
            Trade.objects.filter(pk=instance.pk).update(redrives=1)

    post_save.connect(out_of_reach, sender=Trade, weak=False, dispatch_uid="tests-no-trade-work")
    yield
    post_save.disconnect(sender=Trade, dispatch_uid="tests-no-trade-work")


@pytest.fixture(autouse=True)
def _outage_breakers_closed() -> Iterator[None]:
    """A test that makes the cache or the broker fail must not leave the next test's publishes
    skipped by an open circuit breaker (config/outage.py)."""
    from config.outage import broker_breaker, cache_breaker
    from marketplace.services.webhooks.subscriptions import subscriptions

    yield
    cache_breaker.reset()
    broker_breaker.reset()
    subscriptions.clear()  # rows a test rolled back must not linger in this process's copy
    _forget_the_drain_claim()


def _forget_the_drain_claim() -> None:
    """A test whose publishes went nowhere may have claimed this second's outbox drain or check
    drain: the next test's notifications and trades must not wait for a drain never published."""
    from config.outage import guarded_cache
    from marketplace.services.notifications import DRAIN_KEY
    from marketplace.services.trade_transitions import CHECK_DRAIN_KEY

    for key in (DRAIN_KEY, CHECK_DRAIN_KEY):
        guarded_cache.delete(key)  # the shared cache, or this process's stand-in while it is down
        guarded_cache.local.delete(key)
