"""ISO 3166 validation: country codes (alpha-2) and subdivisions such as UA-43, from pycountry."""

from functools import lru_cache

import pycountry


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    countries = {c.alpha_2 for c in pycountry.countries}
    subdivisions = {s.code for s in pycountry.subdivisions}
    return frozenset(countries | subdivisions)


def is_jurisdiction(code: object) -> bool:
    return isinstance(code, str) and code in _known_codes()


def country_of(code: str) -> str:
    """UA-43 → UA; DE → DE."""
    return code.split("-", 1)[0]
