"""Every /api/v1/ endpoint, called as every role, on objects of organisation A.

The endpoints are enumerated from the OpenAPI schema drf-spectacular generates from the URL
configuration (and cross-checked against the URL resolver), so an endpoint added without an entry in
EXPECTED fails `test_every_endpoint_has_a_permission_decision`; one with a missing permission check
fails its (endpoint, role) case here.

Expectations: OK = the call got past authorization (anything but 401/403/404 and never 5xx; a
400/409 for the minimal body is fine); an int = exactly that status, and the database is unchanged.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Model
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from compliance.models import AuditEvent, RulePack, RulePackBacktest
from compliance.services.backtests import rulepack_backtest
from compliance.services.checks import compliance_evaluate
from compliance.services.rulepacks import rulepack_load_shipped
from compliance.services.sanctions_lists import sanctions_list_import
from marketplace.models import (
    AccessGrant,
    ApiKey,
    ComputeOffer,
    ComputeQuery,
    Dataset,
    Deposit,
    GrantFlag,
    GrantRevocationRequest,
    Membership,
    Organisation,
    OrganisationFacts,
    OrganisationMechanism,
    Trade,
    TradeDocument,
    WebhookDelivery,
    WebhookEndpoint,
)
from marketplace.services.api_keys import api_key_create
from marketplace.services.dataset_files import dataset_file_upload
from marketplace.services.dataset_samples import dataset_sample_upload
from marketplace.services.deposits import deposit_request
from marketplace.services.grant_revocations import grant_revocation_request
from marketplace.services.mechanisms import mechanism_add
from marketplace.services.sessions import session_create
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_facts import transfer_facts
from marketplace.services.webhooks import webhook_endpoint_create, webhook_endpoint_ping
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory

PREFIX = "/api/v1/"
OK = "ok"
ROLES = ("anonymous", "buyer", "buyer_other", "provider", "provider_other", "officer")
METHODS = ("get", "post", "put", "patch", "delete")

Expectation = dict[str, int | str]


def expect(default: int | str, **overrides: int | str) -> Expectation:
    """anonymous → 401 unless overridden; every other role → `default` unless overridden."""
    unknown = set(overrides) - set(ROLES)
    assert not unknown, unknown
    return {"anonymous": 401, **{r: default for r in ROLES[1:]}, **overrides}


MEMBERS = expect(OK)  # any signed-in member; each sees its own organisation's rows
OFFICERS = expect(403, officer=OK)  # officers only: everyone else is refused before any lookup
PROVIDERS = expect(403, provider=OK, provider_other=OK)  # IsProvider: create a listing
BUYERS = expect(403, buyer=OK, buyer_other=OK)  # IsBuyer, no object of another organisation involved
# Org A's published dataset: visible to every member, so a write by another organisation is a 403
OWN_DATASET_WRITE = expect(403, provider=OK)
# A trade (and its grant) between buyer A and provider A: the two parties and officers see it;
# another organisation gets a 404, as if it did not exist.
TRADE_PARTIES = expect(OK, buyer_other=404, provider_other=404)
# Rows of buyer A's organisation alone (mechanism, webhook endpoint, delivery): a 404 for everyone
# else, officers included (their queryset is their own organisation's).
BUYER_ORG_ONLY = expect(404, buyer=OK)
# Published listings: anyone, signed in or not, while ELEMENTA_PUBLIC_CATALOGUE is on (the default
# outside production; tests/marketplace/test_dcat.py checks it off).
PUBLIC_CATALOGUE = expect(OK, anonymous=OK)

EXPECTED: dict[tuple[str, str], Expectation] = {
    # --- public ---------------------------------------------------------------------------------
    ("post", "auth/token/"): expect(OK, anonymous=OK),  # the login: no authentication at all (400 for a bad body)
    ("get", "me/"): MEMBERS,
    ("post", "compliance/evaluate/"): MEMBERS,  # a dry run that changes nothing; open to every member
    # --- sessions and API keys (docs/authentication.md) -----------------------------------------
    ("post", "auth/logout/"): MEMBERS,  # ends the caller's own session
    ("post", "auth/logout-all/"): MEMBERS,  # ends the caller's own sessions
    ("post", "auth/password/"): MEMBERS,  # the caller's own password (400 for the minimal body)
    ("get", "auth/sessions/"): MEMBERS,  # the caller's own sessions only
    ("delete", "auth/sessions/{id}/"): expect(
        404, buyer=OK
    ),  # buyer A's session: anyone else's is a 404, officers' too
    ("get", "api-keys/"): MEMBERS,  # each organisation lists its own
    ("post", "api-keys/"): expect(
        OK, officer=403
    ),  # providers and buyers (400 for the minimal body); officers give machines nothing
    ("delete", "api-keys/{id}/"): BUYER_ORG_ONLY,  # buyer A's organisation's key
    # --- audit (officers) -----------------------------------------------------------------------
    ("get", "audit/"): OFFICERS,
    ("get", "audit/{id}/"): OFFICERS,
    ("get", "audit/verify/"): OFFICERS,
    # --- datasets -------------------------------------------------------------------------------
    ("get", "datasets/"): PUBLIC_CATALOGUE,
    ("post", "datasets/"): PROVIDERS,
    ("get", "datasets/{id}/"): PUBLIC_CATALOGUE,  # published: the catalogue
    ("patch", "datasets/{id}/"): OWN_DATASET_WRITE,
    ("post", "datasets/{id}/publish/"): OWN_DATASET_WRITE,
    ("post", "datasets/{id}/withdraw/"): OWN_DATASET_WRITE,
    ("get", "datasets/{id}/compliance-preview/"): BUYERS,  # any buyer may preview a published listing
    # files: the provider, officers, and a buyer holding an active grant (buyer A does)
    ("get", "datasets/{dataset_id}/policy/"): PUBLIC_CATALOGUE,  # the listing's ODRL offer
    # --- the catalogue as linked data (DCAT-AP): published listings only ---------------------------
    ("get", "catalogue/"): PUBLIC_CATALOGUE,
    ("get", "catalogue/datasets/{dataset_id}/"): PUBLIC_CATALOGUE,
    ("get", "datasets/{dataset_id}/files/"): expect(OK, buyer_other=403, provider_other=403),
    ("post", "datasets/{dataset_id}/files/"): OWN_DATASET_WRITE,
    # the sample of a published listing: anyone who sees the listing downloads it; its provider changes it
    ("get", "datasets/{dataset_id}/sample/"): MEMBERS,
    ("post", "datasets/{dataset_id}/sample/"): OWN_DATASET_WRITE,
    ("delete", "datasets/{dataset_id}/sample/"): OWN_DATASET_WRITE,
    ("get", "datasets/{dataset_id}/compute-offer/"): MEMBERS,  # the offer of a published listing: the catalogue
    ("put", "datasets/{dataset_id}/compute-offer/"): OWN_DATASET_WRITE,
    ("post", "datasets/{dataset_id}/compute-offer/review-policy/"): OFFICERS,
    # --- trades ---------------------------------------------------------------------------------
    ("get", "trades/"): MEMBERS,
    ("post", "trades/"): BUYERS,
    ("get", "trades/{id}/"): TRADE_PARTIES,
    ("get", "trades/{id}/evidence/"): TRADE_PARTIES,
    ("get", "trades/{trade_id}/agreement/"): TRADE_PARTIES,  # the ODRL agreement of the settled trade
    ("get", "trades/{id}/documents/"): TRADE_PARTIES,
    ("post", "trades/{id}/documents/"): expect(
        OK, buyer_other=404, provider_other=404, officer=403
    ),  # the two parties add evidence
    ("post", "trades/{id}/cancel/"): expect(403, buyer=OK, buyer_other=404, provider_other=404),  # the buyer only
    ("post", "trades/{id}/renew/"): expect(403, buyer=OK, buyer_other=404),  # IsBuyer first, then the lookup
    ("get", "trades/{id}/renew/"): expect(403, buyer=OK, buyer_other=404),  # the next period's terms
    ("post", "trades/{id}/approve/"): OFFICERS,
    ("post", "trades/{id}/reject/"): OFFICERS,
    ("post", "trades/{id}/refund/"): OFFICERS,  # over the four-eyes threshold: 202 until a second officer refunds
    ("get", "reviews/"): OFFICERS,
    # --- grants ---------------------------------------------------------------------------------
    ("get", "grants/"): MEMBERS,
    ("get", "grants/{id}/"): TRADE_PARTIES,
    ("get", "grants/{id}/downloads/"): TRADE_PARTIES,
    ("get", "grants/{id}/download/"): expect(
        403, buyer=OK, buyer_other=404, provider_other=404
    ),  # the buying organisation only
    # the provider files a request (202), an officer revokes with a refund decision (400 here: no refund)
    ("post", "grants/{id}/revoke/"): expect(403, provider=OK, officer=OK, buyer_other=404, provider_other=404),
    ("post", "grants/{id}/reinstate/"): OFFICERS,
    # revocation requests on trade A's grant: the two parties and officers see them, others get 404
    ("get", "revocation-requests/"): MEMBERS,
    (
        "post",
        "revocation-requests/",
    ): PROVIDERS,  # provider_other: 400 for the minimal body (no grant); 404 for A's grant
    ("get", "revocation-requests/{id}/"): TRADE_PARTIES,
    ("post", "revocation-requests/{id}/decide/"): OFFICERS,
    # compute-to-data: queries under trade A's grant (a download grant: buyer A's POST is a 409), their results
    ("get", "grants/{id}/queries/"): expect(OK, provider=403, buyer_other=404, provider_other=404),  # not the provider
    ("post", "grants/{id}/queries/"): expect(
        403, buyer=OK, buyer_other=404, provider_other=404
    ),  # the buying organisation only
    ("get", "queries/"): MEMBERS,  # each sees its own organisation's queries (officers all)
    ("get", "queries/{id}/"): expect(404, buyer=OK, officer=OK),  # buyer A's query: the provider never sees the SQL
    ("post", "queries/{id}/release/"): OFFICERS,  # 409 query_not_held for the minimal world's released query
    ("post", "queries/{id}/refuse/"): OFFICERS,
    ("get", "reviews/grants/"): OFFICERS,
    ("get", "reviews/grants/{id}/"): OFFICERS,
    ("post", "reviews/grants/{id}/resolve/"): OFFICERS,
    # --- mechanisms on file ---------------------------------------------------------------------
    ("get", "mechanisms/"): MEMBERS,  # officers see every organisation's, to review them
    ("post", "mechanisms/"): MEMBERS,
    ("get", "mechanisms/{id}/"): expect(404, buyer=OK, officer=OK),
    ("delete", "mechanisms/{id}/"): expect(404, buyer=OK, officer=403),  # only the organisation that keeps it
    ("post", "mechanisms/{id}/accept/"): OFFICERS,
    ("post", "mechanisms/{id}/reject/"): OFFICERS,
    # --- evidence review (officers) -------------------------------------------------------------
    ("get", "documents/"): OFFICERS,
    ("get", "documents/{id}/"): OFFICERS,
    ("post", "documents/{id}/accept/"): OFFICERS,
    ("post", "documents/{id}/reject/"): OFFICERS,
    # --- rule packs (officers) ------------------------------------------------------------------
    ("get", "rulepacks/"): OFFICERS,
    ("post", "rulepacks/"): OFFICERS,
    ("get", "rulepacks/{id}/"): OFFICERS,
    ("patch", "rulepacks/{id}/"): OFFICERS,
    ("post", "rulepacks/{id}/approve/"): OFFICERS,  # a second officer's approval (409 for the shipped, active pack)
    ("post", "rulepacks/{id}/activate/"): OFFICERS,
    ("post", "rulepacks/{id}/validate/"): OFFICERS,
    ("post", "rulepacks/{id}/backtest/"): OFFICERS,
    ("get", "rulepacks/{id}/backtests/"): OFFICERS,
    ("get", "rulepacks/{id}/backtests/{backtest_id}/"): OFFICERS,
    ("get", "rulepacks/{id}/export/"): OFFICERS,
    # --- money ----------------------------------------------------------------------------------
    ("get", "wallet/"): MEMBERS,
    ("get", "wallet/entries/"): MEMBERS,
    ("get", "wallet/payouts.csv"): MEMBERS,
    ("get", "wallet/platform/"): OFFICERS,
    ("get", "wallet/deposits/"): MEMBERS,
    (
        "post",
        "wallet/deposits/",
    ): MEMBERS,  # a request that waits for an officer (an officer's direct credit, for a second officer)
    ("get", "wallet/deposits/{id}/"): expect(
        404, buyer=OK, officer=OK
    ),  # buyer A's deposit; operators see every deposit
    ("post", "wallet/deposits/{id}/approve/"): OFFICERS,
    ("post", "wallet/deposits/{id}/reject/"): OFFICERS,
    # --- webhooks (buyer A's organisation) ------------------------------------------------------
    ("get", "webhooks/"): MEMBERS,
    ("post", "webhooks/"): MEMBERS,
    ("get", "webhooks/{id}/"): BUYER_ORG_ONLY,
    ("patch", "webhooks/{id}/"): BUYER_ORG_ONLY,
    ("delete", "webhooks/{id}/"): BUYER_ORG_ONLY,
    ("get", "webhooks/{id}/deliveries/"): BUYER_ORG_ONLY,
    ("post", "webhooks/{id}/rotate-secret/"): BUYER_ORG_ONLY,
    ("post", "webhooks/{id}/test/"): BUYER_ORG_ONLY,
    ("get", "webhooks/deliveries/{id}/"): BUYER_ORG_ONLY,
    ("post", "webhooks/deliveries/{id}/redeliver/"): BUYER_ORG_ONLY,
    # --- organisations: onboarding, legal facts, members (buyer A's organisation) ----------------
    ("post", "organisations/apply/"): expect(OK, anonymous=OK),  # anyone may apply (400 for the minimal body)
    ("post", "invitations/accept/"): expect(OK, anonymous=OK),  # whoever holds the token (400 without one)
    ("get", "organisations/"): MEMBERS,  # a member sees its own organisation, officers every one
    ("get", "organisations/{id}/"): expect(404, buyer=OK, officer=OK),
    ("get", "organisations/{id}/facts/"): expect(404, buyer=OK, officer=OK),
    ("get", "organisations/{id}/members/"): expect(404, buyer=OK, officer=OK),
    # its administrator only: buyer A is a member but not the administrator; officers see it but may not act for it
    ("post", "organisations/{id}/facts/"): expect(404, buyer=403, officer=403),
    ("post", "organisations/{id}/invitations/"): expect(404, buyer=403, officer=403),
    ("patch", "organisations/{id}/members/{user_id}/"): expect(404, buyer=403, officer=403),
    ("get", "organisations/{id}/screening/"): OFFICERS,
    ("get", "organisation-facts/"): MEMBERS,  # the verification queue for officers; a member sees its own versions
    ("get", "organisation-facts/{id}/"): expect(404, buyer=OK, officer=OK),
    ("post", "organisation-facts/{id}/verify/"): OFFICERS,
    # --- party screening (officers) -------------------------------------------------------------
    ("get", "sanctions-lists/"): OFFICERS,
    ("get", "sanctions-lists/{id}/"): OFFICERS,
    ("get", "screening/false-positives/"): OFFICERS,
    ("post", "screening/false-positives/"): OFFICERS,
    # --- the caller's own notification preferences ----------------------------------------------
    ("get", "me/notifications/"): MEMBERS,
    ("patch", "me/notifications/"): MEMBERS,
}

# Outside /api/v1/ and open to anyone: the health check and the API description.
PUBLIC_URLS = ("/healthz", "/api/schema/", "/api/docs/")

# A minimal, mostly valid body: enough for the allowed role to get past validation on many
# endpoints; a 400 for the rest is fine (authorization came first).
BODY = {"reason": "authorization matrix", "note": "authorization matrix"}


# --- enumeration ------------------------------------------------------------------------------


@cache
def schema_operations() -> tuple[tuple[str, str], ...]:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    ops = [(method, path.removeprefix(PREFIX)) for path, item in paths.items() if path.startswith(PREFIX)
           for method in item if method in METHODS]
    return tuple(sorted(ops))


def _template(route: str) -> str:
    """`^trades/(?P<pk>[^/.]+)/cancel/$` and `datasets/<uuid:dataset_id>/files/` → `trades/{}/cancel/`, …"""
    route = route.removeprefix("^").removesuffix("$").replace("\\.", ".")
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "{}", route)
    return re.sub(r"<(?:\w+:)?\w+>", "{}", route)


def resolver_operations() -> set[tuple[str, str]]:
    """(method, path template) of every view the URL configuration routes under /api/v1/."""
    found: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + _template(route))
                continue
            assert isinstance(p, URLPattern)
            if "(?P<format>" in route:  # the router's .json suffix variants of the same views
                continue
            path = prefix + _template(route)
            if not path.startswith(PREFIX.lstrip("/")):
                continue
            view_class = getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None)
            allowed = set(getattr(view_class, "http_method_names", METHODS))
            actions = getattr(p.callback, "actions", None)
            methods = (
                set(actions) if actions else {m for m in METHODS if view_class is not None and hasattr(view_class, m)}
            )
            found.update((m, path.removeprefix(PREFIX.lstrip("/"))) for m in methods & allowed & set(METHODS))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_endpoint_has_a_permission_decision() -> None:
    """A new endpoint fails here until someone writes down who may call it."""
    missing = [f"{m.upper()} {PREFIX}{p}" for m, p in schema_operations() if (m, p) not in EXPECTED]
    assert not missing, f"endpoints without an entry in EXPECTED (decide who may call them): {missing}"
    stale = [f"{m.upper()} {PREFIX}{p}" for m, p in EXPECTED if (m, p) not in schema_operations()]
    assert not stale, f"EXPECTED names endpoints the schema no longer has: {stale}"


def test_the_schema_lists_every_routed_endpoint() -> None:
    """The enumeration above is complete: nothing is routed under /api/v1/ that the schema hides."""
    in_schema = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in schema_operations()}
    routed = resolver_operations()
    assert len(routed) >= 60
    assert routed - in_schema == set(), "routed but missing from the schema (so from this matrix)"


@pytest.mark.django_db
@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_urls_answer_anonymous_callers(url: str) -> None:
    response = APIClient().get(url)
    assert response.status_code == 200, (url, response.status_code)


# --- the world: one object of each kind, of organisation A -------------------------------------


@dataclass
class World:
    members: dict[str, Membership | None]
    ids: dict[str, object]  # path parameter values, by the path's first segment
    tracked: list[tuple[type[Model], Any]]  # rows whose fields a refused call must not change


def build_world() -> World:
    rulepack_load_shipped()
    operator = OrganisationFactory.create(name="Platform", is_operator=True)
    officer = MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)
    provider_eu = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Rhein GmbH", jurisdiction="DE"), role=Membership.Role.PROVIDER
    )
    provider_cn = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Huaxia Co.", jurisdiction="CN"), role=Membership.Role.PROVIDER
    )
    buyer_eu = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Berlin Insights", jurisdiction="DE"), role=Membership.Role.BUYER
    )
    buyer_us = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Acme Inc.", jurisdiction="US"), role=Membership.Role.BUYER
    )
    eu_personal = DatasetFactory.create(
        provider=provider_eu.organisation, title="German retail customers", classification="personal", subjects=50000,
        with_file=False,  # its file is uploaded next, by its provider
    )
    dataset_file_upload(
        dataset_id=eu_personal.id, membership=provider_eu, upload=SimpleUploadedFile("a.csv", b"id,city\n1,Berlin\n")
    )
    dataset_sample_upload(
        dataset_id=eu_personal.id, membership=provider_eu, upload=SimpleUploadedFile("s.csv", b"city\nBerlin\n"),
        contains_personal_data=False,
    )
    trade = TradeFactory.create(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)
    trade_settle(trade_id=trade.id)
    grant = AccessGrant.objects.get(trade=trade)
    pack = RulePack.objects.order_by("loaded_at", "id").first()
    assert pack is not None
    today = timezone.localdate()
    backtest = rulepack_backtest(
        pack_id=pack.id, scope=RulePackBacktest.Scope.PERIOD, period_from=today, period_to=today, actor=officer.user
    )
    decision = compliance_evaluate(
        raw_facts=transfer_facts(
            dataset=eu_personal,
            buyer=buyer_eu.organisation,
            destination="DE",
            purpose="resale",
            mechanisms=[],
            trade_date=today,
        )
    ).as_dict()
    flag = GrantFlag.objects.create(
        grant=grant, rulepack=pack, rulepack_ref=f"{pack.regime}@matrix", decision=decision, reason="matrix"
    )
    revocation = grant_revocation_request(grant_id=grant.id, membership=provider_eu, reason="matrix")
    pdf = b"%PDF-1.7\n%%EOF\n"
    mechanism = mechanism_add(membership=buyer_eu, code="eu_scc", reference="SCC-1", approved_on=today,
                              upload=SimpleUploadedFile("scc.pdf", pdf, content_type="application/pdf"))
    document = TradeDocument.objects.create(trade=trade, code="eu_tia", reference="TIA-1", approved_on=today,
                                            organisation=buyer_eu.organisation, uploaded_by=buyer_eu.user)
    deposit = deposit_request(membership=buyer_eu, amount=Decimal("10.00"), currency="EUR")
    facts = OrganisationFacts.objects.create(
        organisation=buyer_eu.organisation, number=1, kind="change", facts={"legal_name": "Berlin Insights"}
    )
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sanctions" / "ofac-v1"
    snapshot, _ = sanctions_list_import(
        source="ofac_sdn", files={n: (folder / n).read_bytes() for n in ("sdn.csv", "alt.csv", "add.csv")}
    )
    endpoint = webhook_endpoint_create(
        membership=buyer_eu, url="https://hooks.example.com/elementa", events=["trade.status_changed"]
    )
    delivery = webhook_endpoint_ping(endpoint_id=endpoint.id)
    session, _ = session_create(user=buyer_eu.user)
    api_key, _ = api_key_create(membership=buyer_eu, name="matrix", scopes=["trades:read"])
    offer = ComputeOffer.objects.create(
        dataset=eu_personal,
        table_name="customers",
        columns={"id": "identifier", "city": "quasi_identifier"},
        price=Decimal("10.00"),
        currency="EUR",
    )
    query = ComputeQuery.objects.create(
        grant=grant,
        buyer=buyer_eu.organisation,
        dataset=eu_personal,
        user=buyer_eu.user,
        username="b",
        sql="SELECT COUNT(*) FROM customers",
        sql_sha256="0" * 64,
        status=ComputeQuery.Status.RELEASED,
        queue="compute.de",
        k=10,
        result={"columns": ["count_star()"], "rows": [[1]]},
    )
    event = AuditEvent.objects.order_by("id").first()
    assert event is not None
    ids = {
        "audit": event.id,
        "datasets": eu_personal.id,
        "trades": trade.id,
        "grants": grant.id,
        "reviews": flag.id,
        "mechanisms": mechanism.id,
        "documents": document.id,
        "rulepacks": pack.id,
        "backtest_id": backtest.id,
        "wallet": deposit.id,
        "webhooks": endpoint.id,
        "webhooks/deliveries": delivery.id,
        "revocation-requests": revocation.id,
        "queries": query.id,
        "auth": session.token_key,
        "api-keys": api_key.prefix,
        "organisations": buyer_eu.organisation_id,
        "organisation-facts": facts.id,
        "sanctions-lists": snapshot.id,
        "user_id": buyer_eu.user_id,
    }
    members = {"anonymous": None, "buyer": buyer_eu, "buyer_other": buyer_us, "provider": provider_eu,
               "provider_other": provider_cn, "officer": officer}
    tracked: list[tuple[type[Model], Any]] = [
        (Dataset, eu_personal.id),
        (Trade, trade.id),
        (AccessGrant, grant.id),
        (GrantFlag, flag.id),
        (RulePack, pack.id),
        (GrantRevocationRequest, revocation.id),
        (OrganisationMechanism, mechanism.id),
        (TradeDocument, document.id),
        (Deposit, deposit.id),
        (WebhookEndpoint, endpoint.id),
        (WebhookDelivery, delivery.id),
        (ApiKey, api_key.id),
        (ComputeOffer, offer.id),
        (ComputeQuery, query.id),
        (Organisation, buyer_eu.organisation_id),
        (OrganisationFacts, facts.id),
        (Membership, buyer_eu.id),
    ]
    return World(members=members, ids=ids, tracked=tracked)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once for the module inside a transaction that is rolled back at the end; each test
    runs in its own savepoint inside it (the `db` fixture), so what one call changes is undone."""
    media = override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"))
    with django_db_blocker.unblock():
        media.enable()
        outer = transaction.atomic()
        outer.__enter__()
        built = build_world()
    try:
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            media.disable()


def fill(path: str, ids: dict[str, object]) -> str:
    first = "webhooks/deliveries" if path.startswith("webhooks/deliveries/") else path.split("/")[0]
    path = path.replace("{backtest_id}", str(ids["backtest_id"])).replace("{dataset_id}", str(ids["datasets"]))
    path = path.replace("{user_id}", str(ids["user_id"])).replace("{trade_id}", str(ids["trades"]))
    return PREFIX + (path.replace("{id}", str(ids[first])) if "{id}" in path else path)


def snapshot(world: World) -> tuple[dict[str, int], dict[str, Any]]:
    counts = {m._meta.label: m._default_manager.count() for m in apps.get_models() if m._meta.managed}
    rows = {
        f"{model.__name__}:{pk}": model._default_manager.filter(pk=pk).values().first() for model, pk in world.tracked
    }
    return counts, rows


def call(client: APIClient, method: str, path: str, url: str) -> Any:
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    if path == "datasets/{dataset_id}/files/":
        return client.post(url, {"file": SimpleUploadedFile("b.csv", b"id\n2\n")}, format="multipart")
    if path == "datasets/{dataset_id}/sample/":
        sample = {"file": SimpleUploadedFile("t.csv", b"city\nBonn\n"), "contains_personal_data": "false"}
        return client.post(url, sample, format="multipart")
    send: Callable[..., Any] = getattr(client, method)
    return send(url, json.dumps(BODY), content_type="application/json")


CASES = [pytest.param(m, p, role, id=f"{m.upper()} {p} as {role}") for m, p in sorted(EXPECTED) for role in ROLES]


@pytest.mark.parametrize(("method", "path", "role"), CASES)
def test_endpoint_as_role(
    method: str, path: str, role: str, world: World, db: None, client_for: Callable[[Membership | None], APIClient]
) -> None:
    expected = EXPECTED[(method, path)][role]
    client = client_for(world.members[role])
    url = fill(path, world.ids)
    before = snapshot(world) if expected != OK else None

    response = call(client, method, path, url)
    status = response.status_code
    # Consumed through the test client's wrapper (closing it by hand would close the test's connection).
    body = (b"".join(response.streaming_content) if response.streaming else response.content)[:300]

    assert status < 500, f"{method.upper()} {url} as {role}: {status} {body!r}"
    if expected == OK:
        assert status not in (401, 403, 404), (
            f"{method.upper()} {url} as {role}: expected access, got {status} {body!r}"
        )
        return
    assert status == expected, f"{method.upper()} {url} as {role}: expected {expected}, got {status} {body!r}"
    after = snapshot(world)
    assert after == before, f"{method.upper()} {url} as {role} was refused ({status}) but changed the database"
