"""Namespaces and the authority tables DCAT-AP asks for (EU Publications Office, IANA, ADMS)."""

from functools import cache

import pycountry
from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, ODRL2

from compliance.engine.jurisdictions import country_of

# rdflib's closed namespaces where it has them: an unknown term is an error, and terms named like str
# methods (dct:title, dct:format) are terms, not methods. The others are open; none of their terms used
# here collides with a str method.
DCT = DCTERMS
ODRL = ODRL2
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
DCATAP = Namespace("http://data.europa.eu/r5r/")

AUTHORITY = "http://publications.europa.eu/resource/authority/"
COUNTRY = Namespace(AUTHORITY + "country/")
CURRENCY = Namespace(AUTHORITY + "currency/")  # codes are ISO 4217's
FILE_TYPE = Namespace(AUTHORITY + "file-type/")
DATA_THEME = Namespace(AUTHORITY + "data-theme/")
ACCESS_RIGHT = Namespace(AUTHORITY + "access-right/")
PUBLISHER_TYPE = Namespace("http://purl.org/adms/publishertype/")
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"

PREFIXES: dict[str, str] = {
    "dcat": str(DCAT), "dct": str(DCT), "foaf": str(FOAF), "vcard": str(VCARD), "odrl": str(ODRL),
    "hydra": str(HYDRA), "dcatap": str(DCATAP),
}


@cache
def country_iri(code: str) -> URIRef | None:
    """An ISO 3166 jurisdiction (DE, or a subdivision such as UA-43: its country) → the EU country
    authority's IRI (…/country/DEU); None for a code ISO 3166-1 does not list."""
    country = pycountry.countries.get(alpha_2=country_of(code.upper()))
    return COUNTRY[country.alpha_3] if country is not None else None


def currency_iri(code: str) -> URIRef:
    """ISO 4217 code → the EU currency authority's IRI (…/currency/EUR); its codes are ISO 4217's."""
    return CURRENCY[code.upper()]


# A listing's categories (compliance vocabulary) → EU data themes. Categories with no fitting theme
# (statistics, telemetry) stay keywords only.
CATEGORY_THEMES = {
    "contact": "SOCI", "identifiers": "SOCI", "purchase_history": "ECON", "profile": "SOCI",
    "location_history": "SOCI", "precise_geolocation": "SOCI", "health": "HEAL", "financial": "ECON",
    "biometric": "HEAL", "genomic": "HEAL", "omic": "HEAL", "minors": "SOCI", "employee": "SOCI",
    "government_related": "GOVE",
}

# Uploaded files' media types → the EU file-type authority.
FILE_TYPES = {
    "text/csv": "CSV", "application/json": "JSON", "application/x-ndjson": "JSON", "application/zip": "ZIP",
    "application/pdf": "PDF", "text/plain": "TXT", "application/xml": "XML", "text/xml": "XML",
    "application/vnd.apache.parquet": "PARQUET", "application/x-parquet": "PARQUET",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
    "application/vnd.ms-excel": "XLS", "application/gzip": "GZIP", "application/x-gzip": "GZIP",
    "text/tab-separated-values": "TSV",
}

ORGANISATION_KIND_TYPES = {"company": "Company"}  # public bodies and courts: no ADMS type that fits for sure


def media_type_iri(content_type: str) -> URIRef | None:
    """`text/csv; charset=utf-8` → IANA's page for text/csv; None for something that is not type/subtype."""
    base = content_type.split(";", 1)[0].strip().lower()
    kind, _, sub = base.partition("/")
    if not kind or not sub or not all(c.isalnum() or c in "+-.!#$&^_" for c in kind + sub):
        return None
    return URIRef(f"{IANA_MEDIA_TYPES}{kind}/{sub}")


def file_type_iri(content_type: str) -> URIRef | None:
    code = FILE_TYPES.get(content_type.split(";", 1)[0].strip().lower())
    return FILE_TYPE[code] if code else None
