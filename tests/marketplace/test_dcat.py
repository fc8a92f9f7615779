"""The catalogue for data spaces: anonymous reads of the published catalogue (on and off), the DCAT-AP 3
export (JSON-LD and Turtle, paged, validated against the repository's SHACL shapes), each listing's ODRL
offer and a settled trade's ODRL agreement, seen by the two parties only."""

import json
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, FOAF, ODRL2
from rdflib.namespace import DCTERMS as DCT
from rest_framework.test import APIClient

from config.outage import guarded_cache
from config.throttling import PublicCatalogueRateThrottle
from marketplace.models import Dataset, Trade
from marketplace.selectors.catalogue_export import CATALOGUE_DATES_KEY
from marketplace.services.dataset_files import dataset_file_upload
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SHAPES = Graph().parse(ROOT / "marketplace" / "dcat" / "shapes" / "dcat-ap-3.ttl", format="turtle")
ODRL = ODRL2
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
COUNTRY = Namespace("http://publications.europa.eu/resource/authority/country/")
PRIVATE_FIELDS = {"subjects", "flags", "exporter_flags", "exporter", "pi_duties_attested"}
TURTLE = {"HTTP_ACCEPT": "text/turtle"}
JSONLD = {"HTTP_ACCEPT": "application/ld+json"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def fresh_catalogue_dates():
    """The catalogue's dates are cached for a minute; another test's (rolled-back) rows must not show."""
    guarded_cache.delete(CATALOGUE_DATES_KEY)


@pytest.fixture
def anonymous() -> APIClient:
    """A client from an address of its own, so no other test's anonymous reads count against it."""
    client = APIClient()
    client.defaults["REMOTE_ADDR"] = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    return client


@pytest.fixture
def listing(provider_cn):
    """A published Chinese listing with a CSV version, health and contact categories, resale allowed."""
    dataset = DatasetFactory.create(
        provider=provider_cn.organisation, title="Guangdong clinic visits", description="Visits, 2024–2025.",
        subject_jurisdictions=["CN", "HK"], storage_jurisdiction="SG", categories=["health", "contact"],
        classification="personal", subjects=250_000, flags=["gov_geofence"], exporter_flags=["cn_ftz"],
        pi_duties_attested=True, price=Decimal("1200.00"), currency="EUR", pricing="subscription",
        licence={"term_days": 365, "resale": True, "terms": "No re-identification."},
        published_at=timezone.now(),
    )
    dataset_file_upload(
        dataset_id=dataset.id, membership=provider_cn,
        upload=SimpleUploadedFile("visits.csv", b"visit,clinic\n1,Guangzhou\n2,Shenzhen\n"),
    )
    return dataset


def graph_of(response, fmt: str) -> Graph:
    return Graph().parse(data=response.content.decode(), format=fmt)


def shacl(graph: Graph, *, allow_warnings: bool = False) -> tuple[bool, str]:
    conforms, _, text = validate(graph, shacl_graph=SHAPES, allow_warnings=allow_warnings)
    return conforms, text


# --- anonymous reads of the published catalogue ---------------------------------------------------


def test_anonymous_callers_read_published_listings_without_private_fields(anonymous, listing, provider_cn):
    draft = DatasetFactory.create(provider=provider_cn.organisation, status=Dataset.Status.DRAFT, title="Draft")
    withdrawn = DatasetFactory.create(provider=provider_cn.organisation, status=Dataset.Status.WITHDRAWN)

    page = anonymous.get("/api/v1/datasets/")
    detail = anonymous.get(f"/api/v1/datasets/{listing.id}/")

    assert page.status_code == 200 and [d["id"] for d in page.json()["results"]] == [str(listing.id)]
    assert detail.status_code == 200
    body = detail.json()
    assert body["title"] == "Guangdong clinic visits" and body["provider_name"] == provider_cn.organisation.name
    assert body["licence"] == {"term_days": 365, "resale": True, "terms": "No re-identification."}
    assert PRIVATE_FIELDS.isdisjoint(body) and all(PRIVATE_FIELDS.isdisjoint(d) for d in page.json()["results"])
    for hidden in (draft, withdrawn):
        assert anonymous.get(f"/api/v1/datasets/{hidden.id}/").status_code == 404
        assert anonymous.get(f"/api/v1/catalogue/datasets/{hidden.id}/", **TURTLE).status_code == 404
        assert anonymous.get(f"/api/v1/datasets/{hidden.id}/policy/").status_code == 404


def test_members_still_see_every_field_of_a_listing(client_for, buyer_us, listing):
    body = client_for(buyer_us).get(f"/api/v1/datasets/{listing.id}/").json()

    assert body["subjects"] == 250_000 and body["flags"] == ["gov_geofence"] and "exporter" in body


def test_anonymous_callers_cannot_write(anonymous, listing):
    assert anonymous.post("/api/v1/datasets/", {"title": "x"}, format="json").status_code == 401
    assert anonymous.patch(f"/api/v1/datasets/{listing.id}/", {"title": "x"}, format="json").status_code == 401
    assert anonymous.post(f"/api/v1/datasets/{listing.id}/withdraw/").status_code == 401
    assert anonymous.get(f"/api/v1/datasets/{listing.id}/compliance-preview/").status_code == 401
    assert anonymous.get(f"/api/v1/datasets/{listing.id}/files/").status_code == 401
    assert Dataset.objects.get(id=listing.id).title == "Guangdong clinic visits"


def test_with_the_public_catalogue_off_anonymous_callers_get_401(anonymous, listing, settings, client_for, buyer_us):
    settings.ELEMENTA_PUBLIC_CATALOGUE = False
    urls = ["/api/v1/datasets/", f"/api/v1/datasets/{listing.id}/", f"/api/v1/datasets/{listing.id}/policy/",
            "/api/v1/catalogue/", f"/api/v1/catalogue/datasets/{listing.id}/"]

    for url in urls:
        response = anonymous.get(url, **TURTLE) if "catalogue" in url else anonymous.get(url)
        assert response.status_code == 401, url
        assert response["Content-Type"].startswith("application/json") and response.json()["code"] == (
            "not_authenticated"
        )
    member = client_for(buyer_us)
    assert member.get("/api/v1/catalogue/", **TURTLE).status_code == 200
    assert member.get(f"/api/v1/datasets/{listing.id}/").status_code == 200


def test_anonymous_reads_are_throttled_per_address_and_members_are_not(anonymous, listing, monkeypatch, client_for,
                                                                        buyer_us):
    monkeypatch.setattr(PublicCatalogueRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    codes = [anonymous.get("/api/v1/datasets/").status_code for _ in range(3)]
    codes.append(anonymous.get("/api/v1/catalogue/", **TURTLE).status_code)
    member = client_for(buyer_us)

    assert codes == [200, 200, 200, 429]
    throttled = anonymous.get(f"/api/v1/datasets/{listing.id}/policy/")
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled" and throttled["Retry-After"]
    assert [member.get("/api/v1/datasets/").status_code for _ in range(5)] == [200] * 5


# --- the DCAT-AP 3 export -------------------------------------------------------------------------


def test_a_dataset_in_turtle_and_json_ld_is_dcat_ap_and_conforms_to_the_shapes(anonymous, listing):
    turtle = anonymous.get(f"/api/v1/catalogue/datasets/{listing.id}/", **TURTLE)
    jsonld = anonymous.get(f"/api/v1/catalogue/datasets/{listing.id}/", **JSONLD)

    assert turtle.status_code == 200 and turtle["Content-Type"].startswith("text/turtle")
    assert jsonld.status_code == 200 and jsonld["Content-Type"].startswith("application/ld+json")
    assert "Accept" in turtle["Vary"]
    graphs = [graph_of(turtle, "turtle"), graph_of(jsonld, "json-ld")]
    assert len(graphs[0]) == len(graphs[1]) and graphs[0].isomorphic(graphs[1])
    graph = graphs[0]
    node = URIRef(f"http://testserver/api/v1/catalogue/datasets/{listing.id}/")
    assert (node, RDF.type, DCAT.Dataset) in graph
    assert graph.value(node, DCT.title) == Literal("Guangdong clinic visits", lang="en")
    assert graph.value(node, DCT.identifier) == Literal(str(listing.id))
    # subjects in CN and HK, stored in SG: EU country authority IRIs (alpha-3)
    assert set(graph.objects(node, DCT.spatial)) == {COUNTRY.CHN, COUNTRY.HKG, COUNTRY.SGP}
    assert {str(k) for k in graph.objects(node, DCAT.keyword)} == {"health", "contact", "personal"}
    assert URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL") in set(
        graph.objects(node, DCAT.theme)
    )
    publisher = graph.value(node, DCT.publisher)
    assert graph.value(publisher, FOAF.name) == Literal(listing.provider.name, lang="en")
    assert graph.value(node, DCT.issued) is not None and graph.value(node, DCT.modified) is not None
    distribution = graph.value(node, DCAT.distribution)
    assert graph.value(distribution, DCAT.accessURL) == URIRef(f"http://testserver/api/v1/datasets/{listing.id}/")
    assert graph.value(distribution, DCAT.byteSize).toPython() == len(b"visit,clinic\n1,Guangzhou\n2,Shenzhen\n")
    assert str(graph.value(distribution, DCAT.mediaType)).endswith("/text/csv")
    assert str(graph.value(distribution, DCT.format)).endswith("/file-type/CSV")
    policy = URIRef(f"http://testserver/api/v1/datasets/{listing.id}/policy/")
    assert graph.value(distribution, DCT.license) == policy and graph.value(distribution, ODRL.hasPolicy) == policy
    # nothing provider-private: the subject count and the flags appear nowhere
    text = turtle.content.decode()
    assert "250000" not in text and "gov_geofence" not in text and "cn_ftz" not in text
    for g in graphs:
        conforms, report = shacl(g)  # strict: recommended properties too
        assert conforms, report


def test_the_catalogue_pages_by_hydra_next_links_and_each_page_conforms(anonymous, listing, provider_eu):
    others = [DatasetFactory.create(provider=provider_eu.organisation, categories=["financial"]) for _ in range(4)]
    DatasetFactory.create(provider=provider_eu.organisation, status=Dataset.Status.DRAFT, title="Not for harvest")
    expected = sorted(str(d.id) for d in [listing, *others])

    seen: list[str] = []
    url: str | None = "/api/v1/catalogue/?page_size=2"
    pages = 0
    while url:
        response = anonymous.get(url, **TURTLE)
        assert response.status_code == 200, response.content
        graph = graph_of(response, "turtle")
        catalogue = URIRef("http://testserver/api/v1/catalogue/")
        assert (catalogue, RDF.type, DCAT.Catalog) in graph
        ids = sorted(str(graph.value(d, DCT.identifier)) for d in graph.objects(catalogue, DCAT.dataset))
        seen += ids
        conforms, report = shacl(graph, allow_warnings=True)
        assert conforms, report
        view = graph.value(catalogue, HYDRA.view)
        nxt = graph.value(view, HYDRA.next)
        assert (response.get("Link") is not None) == (nxt is not None)
        url = str(nxt).removeprefix("http://testserver") if nxt is not None else None
        pages += 1

    assert pages == 3 and sorted(seen) == expected and len(seen) == len(set(seen))
    full = anonymous.get("/api/v1/catalogue/", **JSONLD)
    graph = graph_of(full, "json-ld")
    catalogue = URIRef("http://testserver/api/v1/catalogue/")
    assert graph.value(catalogue, DCT.title) is not None and graph.value(catalogue, DCT.publisher) is not None
    assert graph.value(catalogue, DCT.issued) is not None and graph.value(catalogue, DCT.modified) is not None
    assert len(list(graph.objects(catalogue, DCAT.dataset))) == 5


def test_a_catalogue_page_costs_the_same_few_queries_however_many_datasets(anonymous, provider_eu):
    for _ in range(30):
        DatasetFactory.create(provider=provider_eu.organisation)

    with CaptureQueriesContext(connection) as queries:
        response = anonymous.get("/api/v1/catalogue/?page_size=25", **TURTLE)
    with CaptureQueriesContext(connection) as again:
        anonymous.get("/api/v1/catalogue/?page_size=25", **TURTLE)

    assert response.status_code == 200
    assert len(list(graph_of(response, "turtle").subjects(RDF.type, DCAT.Dataset))) == 25
    # the page (datasets, providers, latest file facts) and, once a minute, the catalogue's dates
    assert len(queries) <= 2 and len(again) == 1, [q["sql"] for q in queries]


def test_bad_paging_parameters_are_400_in_json(anonymous, listing):
    for query in ("after=not-a-uuid", "page_size=0", "page_size=100000"):
        response = anonymous.get(f"/api/v1/catalogue/?{query}", **TURTLE)
        assert response.status_code == 400, query
        assert response["Content-Type"].startswith("application/json") and response.json()["code"] == "invalid"


def test_other_formats_are_406_and_format_query_selects_turtle(anonymous, listing):
    assert anonymous.get("/api/v1/catalogue/", HTTP_ACCEPT="application/xml").status_code == 406
    response = anonymous.get("/api/v1/catalogue/?format=ttl")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/turtle")
    assert anonymous.get("/api/v1/datasets/", HTTP_ACCEPT="application/json").status_code == 200


def test_a_dataset_without_files_or_description_still_conforms(anonymous, provider_eu):
    bare = DatasetFactory.create(provider=provider_eu.organisation, description="", categories=["statistics"],
                                 subject_jurisdictions=["DE"], storage_jurisdiction="DE")

    graph = graph_of(anonymous.get(f"/api/v1/catalogue/datasets/{bare.id}/", **TURTLE), "turtle")

    node = URIRef(f"http://testserver/api/v1/catalogue/datasets/{bare.id}/")
    assert str(graph.value(node, DCT.description)).startswith(bare.title)
    conforms, report = shacl(graph, allow_warnings=True)  # no theme, no format: warnings only
    assert conforms, report
    assert not shacl(graph)[0]


def test_the_shapes_catch_what_dcat_ap_makes_mandatory():
    graph = Graph()
    dataset, distribution = URIRef("https://example.org/d"), URIRef("https://example.org/d#x")
    graph.add((dataset, RDF.type, DCAT.Dataset))  # no title, no description
    graph.add((dataset, DCAT.distribution, distribution))
    graph.add((distribution, RDF.type, DCAT.Distribution))  # no access URL

    conforms, report = shacl(graph, allow_warnings=True)

    assert not conforms
    assert "A dataset has a title." in report and "A distribution has an access URL." in report


# --- ODRL -----------------------------------------------------------------------------------------


def test_a_listings_licence_is_an_odrl_offer(anonymous, listing):
    response = anonymous.get(f"/api/v1/datasets/{listing.id}/policy/")

    assert response.status_code == 200 and response["Content-Type"].startswith("application/ld+json")
    offer = response.json()
    assert offer["type"] == "Offer" and offer["uid"] == f"http://testserver/api/v1/datasets/{listing.id}/policy/"
    assert offer["assigner"] == f"http://testserver/api/v1/organisations/{listing.provider_id}/"
    assert [p["action"] for p in offer["permission"]] == ["use", "distribute"]  # resale allowed
    use = offer["permission"][0]
    left = {c["leftOperand"]: c for c in use["constraint"]}
    assert left["purpose"]["operator"] == "isAnyOf" and "resale" in left["purpose"]["rightOperand"]
    assert left["elapsedTime"]["rightOperand"]["@value"] == "P365D"
    pay = use["duty"][0]["action"][0]
    assert pay["rdf:value"] == {"@id": "odrl:compensate"}
    assert pay["refinement"][0]["rightOperand"]["@value"] == "1200.00"
    assert pay["refinement"][0]["unit"].endswith("/currency/EUR")
    assert offer["dct:description"] == "No re-identification."
    graph = graph_of(response, "json-ld")
    policy = URIRef(offer["uid"])
    assert (policy, RDF.type, ODRL.Offer) in graph
    assert {graph.value(p, ODRL.action) for p in graph.objects(policy, ODRL.permission)} == {ODRL.use, ODRL.distribute}
    turtle = anonymous.get(f"/api/v1/datasets/{listing.id}/policy/", **TURTLE)
    assert turtle.status_code == 200 and graph_of(turtle, "turtle").isomorphic(graph)


def test_without_resale_the_offer_permits_use_only(anonymous, provider_eu):
    dataset = DatasetFactory.create(provider=provider_eu.organisation, licence={"resale": False})

    offer = anonymous.get(f"/api/v1/datasets/{dataset.id}/policy/").json()

    assert [p["action"] for p in offer["permission"]] == ["use"]
    assert {c["leftOperand"] for c in offer["permission"][0]["constraint"]} == {"purpose"}


@pytest.fixture
def settled(listing, provider_cn):
    buyer = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Singapore Analytics", jurisdiction="SG"), role="buyer"
    )
    trade = TradeFactory.create(
        dataset=listing, buyer=buyer.organisation, destination="SG", purpose="contract_with_subject",
        pricing="subscription", licence=listing.licence, status=Trade.Status.APPROVED,
    )
    from marketplace.services.settlement import trade_settle

    trade_settle(trade_id=trade.id)
    trade.refresh_from_db()
    return trade, buyer


def test_a_settled_trade_has_an_odrl_agreement_for_its_two_parties(client_for, settled, provider_cn, officer):
    trade, buyer = settled
    grant = trade.grant

    responses = {who: client_for(m).get(f"/api/v1/trades/{trade.id}/agreement/")
                 for who, m in {"buyer": buyer, "provider": provider_cn, "officer": officer}.items()}

    assert {who: r.status_code for who, r in responses.items()} == {"buyer": 200, "provider": 200, "officer": 200}
    agreement = responses["buyer"].json()
    assert agreement["type"] == "Agreement"
    assert agreement["assigner"] == f"http://testserver/api/v1/organisations/{trade.provider_id}/"
    assert agreement["assignee"] == f"http://testserver/api/v1/organisations/{trade.buyer_id}/"
    use = agreement["permission"][0]
    constraints = {(c["leftOperand"], c["operator"]): c["rightOperand"] for c in use["constraint"]}
    assert constraints[("purpose", "eq")] == "contract_with_subject"
    assert constraints[("spatial", "eq")] == {"@id": str(COUNTRY.SGP)}
    assert constraints[("dateTime", "lteq")]["@value"] == grant.valid_until.isoformat()
    assert grant.valid_until - grant.valid_from == timedelta(days=365)
    refinement = use["duty"][0]["action"][0]["refinement"]
    assert refinement[0]["rightOperand"]["@value"] == "1200.00"
    assert refinement[1] == {"leftOperand": "timeInterval", "operator": "eq",
                             "rightOperand": {"@value": "P365D", "@type": "xsd:duration"}}
    graph = graph_of(responses["provider"], "json-ld")
    node = URIRef(agreement["uid"])
    assert (node, RDF.type, ODRL.Agreement) in graph
    assert graph.value(node, ODRL.assignee) == URIRef(agreement["assignee"])
    turtle = client_for(buyer).get(f"/api/v1/trades/{trade.id}/agreement/", **TURTLE)
    assert turtle.status_code == 200 and graph_of(turtle, "turtle").isomorphic(graph)


def test_other_tenants_and_anonymous_callers_cannot_read_an_agreement(client_for, settled, buyer_us, provider_eu,
                                                                      anonymous):
    trade, _ = settled
    url = f"/api/v1/trades/{trade.id}/agreement/"

    assert client_for(buyer_us).get(url).status_code == 404
    assert client_for(provider_eu).get(url).status_code == 404
    assert anonymous.get(url).status_code == 401
    assert client_for(buyer_us).get(f"/api/v1/trades/{trade.id}/agreement/", **TURTLE).json()["code"] == "not_found"


def test_an_unsettled_trade_has_no_agreement_yet(client_for, listing):
    buyer = MembershipFactory.create(organisation=OrganisationFactory.create(jurisdiction="SG"), role="buyer")
    trade = TradeFactory.create(dataset=listing, buyer=buyer.organisation, status=Trade.Status.IN_REVIEW)

    response = client_for(buyer).get(f"/api/v1/trades/{trade.id}/agreement/", **TURTLE)

    assert response.status_code == 409 and response.json()["code"] == "agreement_not_available"


def test_json_ld_documents_need_no_network_to_parse(anonymous, listing):
    """The @context is inline: parsing with rdflib fetches nothing (a remote context would fail here)."""
    offer = anonymous.get(f"/api/v1/datasets/{listing.id}/policy/").json()
    catalogue = json.loads(anonymous.get("/api/v1/catalogue/", **JSONLD).content)

    assert isinstance(offer["@context"], dict) and isinstance(catalogue["@context"], dict)
