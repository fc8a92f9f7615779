"""Transfer facts: the engine's input, parsed and validated from the JSON body of POST /api/v1/compliance/evaluate/
(and the facts the marketplace builds for a trade).

Every problem is reported against the dotted path of the offending field; unknown fields, codes
and jurisdictions are errors, never guesses (the vocabularies are in compliance/engine/vocabulary.py).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from compliance.engine import vocabulary as v
from compliance.engine.jurisdictions import is_jurisdiction

# Bounds on list sizes, so a dry run cannot be made arbitrarily expensive.
MAX_CODES = 300
MAX_MECHANISMS = 50
MAX_PRIOR_EXPORTS = 10_000


class FactsError(ValueError):
    """Invalid transfer facts; `errors` maps a dotted field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(m)}" for k, m in errors.items()))


@dataclass(frozen=True)
class Mechanism:
    code: str
    approved_on: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class PriorExport:
    date: date
    classification: str
    categories: tuple[str, ...]
    subjects: int
    same_buyer: bool = False


@dataclass(frozen=True)
class DataFacts:
    subject_jurisdictions: tuple[str, ...]
    storage_jurisdiction: str
    classification: str
    categories: tuple[str, ...] = ()
    subjects: int = 0
    de_identified: bool = False
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExporterFacts:
    jurisdiction: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuyerFacts:
    jurisdiction: str
    headquarters: str
    owner_jurisdictions: tuple[str, ...] = ()
    kind: str = "company"
    certifications: tuple[str, ...] = ()
    # Places the buyer says the data will also go, besides where it is established (`jurisdiction`).
    # Each is evaluated as a transfer of its own and the stricter decision wins: a declaration can
    # only add law, never replace the law of the buyer's verified establishment.
    declared_destinations: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransferFacts:
    trade_date: date
    data: DataFacts
    exporter: ExporterFacts
    buyer: BuyerFacts
    purpose: str = "resale"
    mechanisms: tuple[Mechanism, ...] = ()
    prior_exports: tuple[PriorExport, ...] = field(default=())
    # "compute": the data stays in its storage jurisdiction; only aggregates released under a
    # release policy (minimum group size, row cap, optional differential privacy) cross the border.
    delivery: str = "download"


class _Reader:
    """Collects every error instead of stopping at the first, so a 400 names them all."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def obj(self, raw: Any, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.fail(path or "non_field_errors", "must be an object")
            return {}
        for key in raw:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key), "unknown field")
        return raw

    def code(self, raw: Any, path: str, choices: Sequence[str] | None, *, required: bool = False, default: str | None = None) -> str | None:
        if raw is None:
            if required:
                self.fail(path, "this field is required")
            return default
        if choices is None:
            if not is_jurisdiction(raw):
                self.fail(path, f"unknown jurisdiction {raw!r}: use an ISO 3166-1 alpha-2 code or an ISO 3166-2 subdivision")
                return default
            return str(raw)
        if raw not in choices:
            self.fail(path, f"unknown value {raw!r}; expected one of: {', '.join(choices)}")
            return default
        return str(raw)

    def codes(self, raw: Any, path: str, choices: Sequence[str] | None, *, required: bool = False) -> tuple[str, ...]:
        if raw is None:
            if required:
                self.fail(path, "this field is required")
            return ()
        if not isinstance(raw, list):
            self.fail(path, "must be a list")
            return ()
        if len(raw) > MAX_CODES:
            self.fail(path, f"at most {MAX_CODES} entries")
            return ()
        if required and not raw:
            self.fail(path, "must not be empty")
        out = []
        for i, item in enumerate(raw):
            value = self.code(item, f"{path}[{i}]", choices)
            if value is not None and value not in out:
                out.append(value)
        return tuple(out)

    def integer(self, raw: Any, path: str, default: int = 0) -> int:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            self.fail(path, "must be a whole number ≥ 0")
            return default
        return raw

    def boolean(self, raw: Any, path: str, default: bool = False) -> bool:
        if raw is None:
            return default
        if not isinstance(raw, bool):
            self.fail(path, "must be true or false")
            return default
        return raw

    def day(self, raw: Any, path: str, *, required: bool = False, default: date | None = None) -> date | None:
        if raw is None:
            if required:
                self.fail(path, "this field is required")
            return default
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw))
        except ValueError:
            self.fail(path, "must be an ISO date (YYYY-MM-DD)")
            return default


def parse_facts(raw: Any, *, today: date) -> TransferFacts:
    """Validate contract-shaped input into TransferFacts, or raise FactsError naming every bad field."""
    r = _Reader()
    top = r.obj(raw, "", ("trade_date", "data", "exporter", "buyer", "purpose", "mechanisms", "prior_exports", "delivery"))
    if raw is not None and not isinstance(raw, Mapping):
        raise FactsError(r.errors)

    trade_date = r.day(top.get("trade_date"), "trade_date", default=today) or today

    d = r.obj(top.get("data"), "data", ("subject_jurisdictions", "storage_jurisdiction", "classification", "categories", "subjects", "de_identified", "flags"))
    if "data" not in top:
        r.fail("data", "this field is required")
    subjects_j = r.codes(d.get("subject_jurisdictions"), "data.subject_jurisdictions", None, required=True)
    storage = r.code(d.get("storage_jurisdiction"), "data.storage_jurisdiction", None, default=subjects_j[0] if subjects_j else None)
    classification = r.code(d.get("classification"), "data.classification", v.CLASSIFICATIONS, required=True)
    data = DataFacts(
        subject_jurisdictions=subjects_j,
        storage_jurisdiction=storage or "",
        classification=classification or "personal",
        categories=r.codes(d.get("categories"), "data.categories", v.CATEGORIES),
        subjects=r.integer(d.get("subjects"), "data.subjects"),
        de_identified=r.boolean(d.get("de_identified"), "data.de_identified"),
        flags=r.codes(d.get("flags"), "data.flags", v.DATA_FLAGS),
    )

    e = r.obj(top.get("exporter"), "exporter", ("jurisdiction", "flags"))
    exporter = ExporterFacts(
        jurisdiction=r.code(e.get("jurisdiction"), "exporter.jurisdiction", None, default=storage) or "",
        flags=r.codes(e.get("flags"), "exporter.flags", v.EXPORTER_FLAGS),
    )

    b = r.obj(top.get("buyer"), "buyer", ("jurisdiction", "headquarters", "owner_jurisdictions", "kind", "certifications", "declared_destinations"))
    if "buyer" not in top:
        r.fail("buyer", "this field is required")
    buyer_j = r.code(b.get("jurisdiction"), "buyer.jurisdiction", None, required="buyer" in top) or ""
    buyer = BuyerFacts(
        jurisdiction=buyer_j,
        headquarters=r.code(b.get("headquarters"), "buyer.headquarters", None, default=buyer_j) or "",
        owner_jurisdictions=r.codes(b.get("owner_jurisdictions"), "buyer.owner_jurisdictions", None),
        kind=r.code(b.get("kind"), "buyer.kind", v.BUYER_KINDS, default="company") or "company",
        certifications=r.codes(b.get("certifications"), "buyer.certifications", v.CERTIFICATIONS),
        declared_destinations=tuple(
            d for d in r.codes(b.get("declared_destinations"), "buyer.declared_destinations", None) if d != buyer_j
        ),
    )

    purpose = r.code(top.get("purpose"), "purpose", v.PURPOSES, default="resale") or "resale"
    delivery = r.code(top.get("delivery"), "delivery", v.DELIVERIES, default="download") or "download"

    mechanisms: list[Mechanism] = []
    raw_mechanisms = top.get("mechanisms")
    if raw_mechanisms is not None and (not isinstance(raw_mechanisms, list) or len(raw_mechanisms) > MAX_MECHANISMS):
        r.fail("mechanisms", f"must be a list of at most {MAX_MECHANISMS}")
        raw_mechanisms = []
    for i, item in enumerate(raw_mechanisms or []):
        path = f"mechanisms[{i}]"
        m = r.obj(item, path, ("code", "approved_on", "valid_until", "reference"))
        code = r.code(m.get("code"), f"{path}.code", v.MECHANISMS, required=True)
        approved = r.day(m.get("approved_on"), f"{path}.approved_on")
        until = r.day(m.get("valid_until"), f"{path}.valid_until")
        if code:
            mechanisms.append(Mechanism(code=code, approved_on=approved, valid_until=until))

    prior: list[PriorExport] = []
    raw_prior = top.get("prior_exports")
    if raw_prior is not None and (not isinstance(raw_prior, list) or len(raw_prior) > MAX_PRIOR_EXPORTS):
        r.fail("prior_exports", f"must be a list of at most {MAX_PRIOR_EXPORTS:,}")
        raw_prior = []
    for i, item in enumerate(raw_prior or []):
        path = f"prior_exports[{i}]"
        p = r.obj(item, path, ("date", "classification", "categories", "subjects", "same_buyer"))
        day = r.day(p.get("date"), f"{path}.date", required=True)
        cls = r.code(p.get("classification"), f"{path}.classification", v.CLASSIFICATIONS, required=True)
        if day and cls:
            prior.append(PriorExport(
                date=day, classification=cls,
                categories=r.codes(p.get("categories"), f"{path}.categories", v.CATEGORIES),
                subjects=r.integer(p.get("subjects"), f"{path}.subjects"),
                same_buyer=r.boolean(p.get("same_buyer"), f"{path}.same_buyer"),
            ))

    if r.errors:
        raise FactsError(r.errors)
    return TransferFacts(trade_date=trade_date, data=data, exporter=exporter, buyer=buyer, purpose=purpose,
                         mechanisms=tuple(mechanisms), prior_exports=tuple(prior), delivery=delivery)
