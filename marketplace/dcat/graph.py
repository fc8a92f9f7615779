"""DCAT-AP 3 descriptions of published datasets and of the catalogue, as rdflib graphs.

What goes out is what any signed-in member sees of a published listing, less the provider-private facts
(subject counts, data and exporter flags, attestations): title, description, provider, jurisdictions,
categories, the latest file version's media type and size, the licence (as an ODRL policy) and dates.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.urls import reverse
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from marketplace.dcat import vocab as v
from marketplace.models import Dataset, Organisation

LANG = "en"


@dataclass(frozen=True)
class Links:
    """The IRIs of this deployment's resources, absolute (`base` is scheme://host, no trailing slash)."""

    base: str

    def _url(self, name: str, **kwargs: Any) -> str:
        return self.base + reverse(name, kwargs=kwargs or None)

    def catalogue(self, *, after: UUID | None = None, page_size: int | None = None) -> str:
        params = [f"after={after}"] if after else []
        if page_size:
            params.append(f"page_size={page_size}")
        return self._url("dcat-catalogue") + ("?" + "&".join(params) if params else "")

    def dataset(self, dataset_id: UUID) -> str:
        return self._url("dcat-dataset", dataset_id=dataset_id)

    def dataset_api(self, dataset_id: UUID) -> str:
        return self._url("dataset-detail", pk=dataset_id)

    def policy(self, dataset_id: UUID) -> str:
        return self._url("dataset-policy", dataset_id=dataset_id)

    def organisation(self, organisation_id: UUID) -> str:
        return self._url("organisation-detail", pk=organisation_id)

    def agreement(self, trade_id: UUID) -> str:
        return self._url("trade-agreement", trade_id=trade_id)

    def api(self) -> str:
        return self.base + "/api/v1/"

    def api_description(self) -> str:
        return self._url("schema")


def new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in v.PREFIXES.items():
        graph.bind(prefix, namespace)
    return graph


def _text(value: str) -> Literal:
    return Literal(value, lang=LANG)


def _when(value: datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def add_agent(graph: Graph, organisation: Organisation, links: Links) -> URIRef:
    agent = URIRef(links.organisation(organisation.id))
    graph.add((agent, RDF.type, v.FOAF.Agent))
    graph.add((agent, RDF.type, v.FOAF.Organization))
    graph.add((agent, v.FOAF.name, _text(organisation.name)))
    kind = v.ORGANISATION_KIND_TYPES.get(organisation.kind)
    if kind:
        graph.add((agent, v.DCT.type, v.PUBLISHER_TYPE[kind]))
    return agent


def add_data_service(graph: Graph, links: Links) -> URIRef:
    """The marketplace API: where a listing is bought (POST /api/v1/trades/) and then downloaded."""
    service = URIRef(links.api())
    graph.add((service, RDF.type, v.DCAT.DataService))
    graph.add((service, v.DCT.title, _text("Elementa marketplace API")))
    graph.add((service, v.DCAT.endpointURL, service))
    graph.add((service, v.DCAT.endpointDescription, URIRef(links.api_description())))
    return service


def _description(dataset: Dataset) -> str:
    """DCAT-AP requires a description; a listing may have none, so one is said from its facts."""
    if dataset.description.strip():
        return dataset.description
    return f"{dataset.title}: {dataset.classification.replace('_', ' ')} data offered by {dataset.provider.name}."


def add_policy_reference(graph: Graph, dataset: Dataset, links: Links) -> URIRef:
    policy = URIRef(links.policy(dataset.id))
    graph.add((policy, RDF.type, v.DCT.LicenseDocument))
    graph.add((policy, RDF.type, v.ODRL.Policy))
    graph.add((policy, RDF.type, v.ODRL.Offer))
    graph.add((policy, v.DCT.title, _text(f"Licence of {dataset.title}")))
    return policy


def add_dataset(graph: Graph, dataset: Dataset, links: Links, *, service: URIRef | None = None) -> URIRef:
    """A published dataset, its distribution, publisher and licence. `dataset` carries the annotations
    `file_size` and `file_type` (the latest file version's, None without a file) from the selector."""
    node = URIRef(links.dataset(dataset.id))
    api_page = URIRef(links.dataset_api(dataset.id))
    graph.add((node, RDF.type, v.DCAT.Dataset))
    graph.add((node, v.DCT.title, _text(dataset.title)))
    graph.add((node, v.DCT.description, _text(_description(dataset))))
    graph.add((node, v.DCT.identifier, Literal(str(dataset.id))))
    graph.add((node, v.DCAT.landingPage, api_page))
    graph.add((node, v.DCT.accessRights, v.ACCESS_RIGHT.RESTRICTED))  # bought through a compliance-checked trade
    if dataset.published_at is not None:
        graph.add((node, v.DCT.issued, _when(dataset.published_at)))
    graph.add((node, v.DCT.modified, _when(dataset.updated_at)))
    publisher = add_agent(graph, dataset.provider, links)
    graph.add((node, v.DCT.publisher, publisher))
    contact = BNode()
    graph.add((node, v.DCAT.contactPoint, contact))
    graph.add((contact, RDF.type, v.VCARD.Kind))
    graph.add((contact, RDF.type, v.VCARD.Organization))
    graph.add((contact, v.VCARD.fn, Literal(dataset.provider.name)))
    graph.add((contact, v.VCARD.hasURL, api_page))  # providers are reached through the marketplace
    for category in dataset.categories or []:
        graph.add((node, v.DCAT.keyword, _text(str(category).replace("_", " "))))
        theme = v.CATEGORY_THEMES.get(str(category))
        if theme:
            graph.add((node, v.DCAT.theme, v.DATA_THEME[theme]))
    graph.add((node, v.DCAT.keyword, _text(dataset.classification.replace("_", " "))))
    for code in dict.fromkeys([*(dataset.subject_jurisdictions or []), dataset.storage_jurisdiction]):
        country = v.country_iri(str(code)) if code else None
        if country is not None:
            graph.add((node, v.DCT.spatial, country))
    policy = add_policy_reference(graph, dataset, links)
    graph.add((node, v.ODRL.hasPolicy, policy))

    distribution = URIRef(links.dataset(dataset.id) + "#download")
    graph.add((node, v.DCAT.distribution, distribution))
    graph.add((distribution, RDF.type, v.DCAT.Distribution))
    graph.add((distribution, v.DCT.title, _text(f"{dataset.title} (download after purchase)")))
    graph.add((distribution, v.DCT.description, _text(
        f"The file, stored in {dataset.storage_jurisdiction}, downloadable under an access grant once a trade "
        "for it is checked against transfer law and settled; the licence is the ODRL policy linked here."
    )))
    graph.add((distribution, v.DCAT.accessURL, api_page))
    if service is not None:
        graph.add((distribution, v.DCAT.accessService, service))
    graph.add((distribution, v.DCT.license, policy))
    graph.add((distribution, v.ODRL.hasPolicy, policy))
    graph.add((distribution, v.DCT.accessRights, v.ACCESS_RIGHT.RESTRICTED))
    file_type = getattr(dataset, "file_type", None)
    if file_type:
        media = v.media_type_iri(file_type)
        if media is not None:
            graph.add((distribution, v.DCAT.mediaType, media))
        fmt = v.file_type_iri(file_type)
        if fmt is not None:
            graph.add((distribution, v.DCT.format, fmt))
    file_size = getattr(dataset, "file_size", None)
    if file_size is not None:
        graph.add((distribution, v.DCAT.byteSize, Literal(int(file_size), datatype=XSD.nonNegativeInteger)))
    return node


def dataset_graph(dataset: Dataset, links: Links) -> Graph:
    graph = new_graph()
    add_dataset(graph, dataset, links, service=add_data_service(graph, links))
    return graph


@dataclass(frozen=True)
class CataloguePage:
    """One page of the published catalogue: its datasets (in id order) and where the next page starts."""

    datasets: list[Dataset]
    next_after: UUID | None
    after: UUID | None
    page_size: int
    issued: datetime | None
    modified: datetime | None


def catalogue_graph(page: CataloguePage, links: Links, *, title: str, description: str, publisher: str) -> Graph:
    """A dcat:Catalog holding this page's datasets; the page is a hydra:PartialCollectionView whose
    hydra:next is the next page (absent on the last), so harvesters page through by following it."""
    graph = new_graph()
    catalogue = URIRef(links.catalogue())
    graph.add((catalogue, RDF.type, v.DCAT.Catalog))
    graph.add((catalogue, RDF.type, v.HYDRA.Collection))
    graph.add((catalogue, v.DCT.title, _text(title)))
    graph.add((catalogue, v.DCT.description, _text(description)))
    agent = URIRef(links.api() + "#publisher")
    graph.add((agent, RDF.type, v.FOAF.Agent))
    graph.add((agent, v.FOAF.name, _text(publisher)))
    graph.add((catalogue, v.DCT.publisher, agent))
    graph.add((catalogue, v.FOAF.homepage, catalogue))
    if page.issued is not None:
        graph.add((catalogue, v.DCT.issued, _when(page.issued)))
    if page.modified is not None:
        graph.add((catalogue, v.DCT.modified, _when(page.modified)))
    service = add_data_service(graph, links)
    graph.add((catalogue, v.DCAT.service, service))
    for dataset in page.datasets:
        node = add_dataset(graph, dataset, links, service=service)
        graph.add((catalogue, v.DCAT.dataset, node))
        graph.add((catalogue, v.HYDRA.member, node))
    view = URIRef(links.catalogue(after=page.after, page_size=page.page_size))
    graph.add((catalogue, v.HYDRA.view, view))
    graph.add((view, RDF.type, v.HYDRA.PartialCollectionView))
    graph.add((view, v.HYDRA.first, URIRef(links.catalogue(page_size=page.page_size))))
    if page.next_after is not None:
        graph.add((view, v.HYDRA.next, URIRef(links.catalogue(after=page.next_after, page_size=page.page_size))))
    return graph


def datasets_in(graph: Graph) -> Iterable[URIRef]:
    return (s for s in graph.subjects(RDF.type, v.DCAT.Dataset) if isinstance(s, URIRef))
