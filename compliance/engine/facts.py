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
MAX_LIST_MATCHES = 200
MAX_TEXT = 400


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
class ListMatch:
    """A party's name, alias, owner or controller that resembles an entry of a sanctions list.

    The marketplace finds candidates (fuzzy name matching); the sanctions pack decides what a score
    and an owner's share mean (deny, review, or nothing)."""

    party: str  # buyer | exporter
    subject: str  # name | alias | owner | controller
    name: str  # the party's name as screened
    list: str  # the list snapshot, e.g. ofac_sdn@2026-11-28#1a2b3c4d
    entry: str  # the list's own key (OFAC ent_num, EU logical id)
    entry_name: str
    score: int  # 0..100
    programme: str = ""
    share: float = 0.0  # for an owner: the share of the party it holds, in percent

    def describe(self) -> str:
        who = f"{self.party} {self.subject}" if self.subject != "name" else self.party
        held = f" holding {self.share:g} %" if self.subject == "owner" and self.share else ""
        programme = f", programme {self.programme}" if self.programme else ""
        return (f"{who} '{self.name}'{held} matches {self.list} entry {self.entry} '{self.entry_name}'{programme}, "
                f"score {self.score}")


@dataclass(frozen=True)
class PartyFacts:
    list_matches: tuple[ListMatch, ...] = ()
    # Which list snapshots the parties were screened against, and which verified version of each
    # organisation's legal facts the trade used: recorded with the decision, read by no rule.
    lists: tuple[str, ...] = ()
    records: tuple[tuple[str, str], ...] = ()


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
    parties: PartyFacts = field(default=PartyFacts())


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

    def code(
        self, raw: Any, path: str, choices: Sequence[str] | None, *, required: bool = False, default: str | None = None
    ) -> str | None:
        if raw is None:
            if required:
                self.fail(path, "this field is required")
            return default
        if choices is None:
            if not is_jurisdiction(raw):
                self.fail(
                    path, f"unknown jurisdiction {raw!r}: use an ISO 3166-1 alpha-2 code or an ISO 3166-2 subdivision"
                )
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

    def text(self, raw: Any, path: str, *, required: bool = False) -> str:
        if raw is None or raw == "":
            if required:
                self.fail(path, "this field is required")
            return ""
        if not isinstance(raw, str) or len(raw) > MAX_TEXT:
            self.fail(path, f"must be a string of at most {MAX_TEXT} characters")
            return ""
        return raw

    def number(self, raw: Any, path: str, *, low: float, high: float, default: float = 0.0) -> float:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
            self.fail(path, f"must be a number from {low:g} to {high:g}")
            return default
        return float(raw)

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


# The fields each object of the facts accepts (anything else is "unknown field"). The OpenAPI schema of
# POST /compliance/evaluate/ (compliance/apis/serializers.py) is built from these and the vocabularies.
TOP_FIELDS = (
    "trade_date", "data", "exporter", "buyer", "purpose", "mechanisms", "prior_exports", "delivery", "parties",
)
DATA_FIELDS = (
    "subject_jurisdictions", "storage_jurisdiction", "classification", "categories", "subjects", "de_identified",
    "flags",
)
EXPORTER_FIELDS = ("jurisdiction", "flags")
BUYER_FIELDS = (
    "jurisdiction", "headquarters", "owner_jurisdictions", "kind", "certifications", "declared_destinations",
)
MECHANISM_FIELDS = ("code", "approved_on", "valid_until", "reference")
PRIOR_EXPORT_FIELDS = ("date", "classification", "categories", "subjects", "same_buyer")
PARTIES_FIELDS = ("list_matches", "lists", "records")
LIST_MATCH_FIELDS = ("party", "subject", "name", "share", "list", "entry", "entry_name", "programme", "score")


def parse_facts(raw: Any, *, today: date) -> TransferFacts:
    """Validate contract-shaped input into TransferFacts, or raise FactsError naming every bad field."""
    r = _Reader()
    top = r.obj(raw, "", TOP_FIELDS)
    if raw is not None and not isinstance(raw, Mapping):
        raise FactsError(r.errors)

    trade_date = r.day(top.get("trade_date"), "trade_date", default=today) or today

    d = r.obj(top.get("data"), "data", DATA_FIELDS)
    if "data" not in top:
        r.fail("data", "this field is required")
    subjects_j = r.codes(d.get("subject_jurisdictions"), "data.subject_jurisdictions", None, required=True)
    storage = r.code(
        d.get("storage_jurisdiction"), "data.storage_jurisdiction", None, default=subjects_j[0] if subjects_j else None
    )
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

    e = r.obj(top.get("exporter"), "exporter", EXPORTER_FIELDS)
    exporter = ExporterFacts(
        jurisdiction=r.code(e.get("jurisdiction"), "exporter.jurisdiction", None, default=storage) or "",
        flags=r.codes(e.get("flags"), "exporter.flags", v.EXPORTER_FLAGS),
    )

    b = r.obj(top.get("buyer"), "buyer", BUYER_FIELDS)
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
        m = r.obj(item, path, MECHANISM_FIELDS)
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
        p = r.obj(item, path, PRIOR_EXPORT_FIELDS)
        day = r.day(p.get("date"), f"{path}.date", required=True)
        cls = r.code(p.get("classification"), f"{path}.classification", v.CLASSIFICATIONS, required=True)
        if day and cls:
            prior.append(PriorExport(
                date=day, classification=cls,
                categories=r.codes(p.get("categories"), f"{path}.categories", v.CATEGORIES),
                subjects=r.integer(p.get("subjects"), f"{path}.subjects"),
                same_buyer=r.boolean(p.get("same_buyer"), f"{path}.same_buyer"),
            ))

    parties = _parse_parties(r, top.get("parties"))

    if r.errors:
        raise FactsError(r.errors)
    return TransferFacts(trade_date=trade_date, data=data, exporter=exporter, buyer=buyer, purpose=purpose,
                         mechanisms=tuple(mechanisms), prior_exports=tuple(prior), delivery=delivery, parties=parties)


PARTIES = ("buyer", "exporter")
MATCH_SUBJECTS = ("name", "alias", "owner", "controller")


def _parse_parties(r: _Reader, raw: Any) -> PartyFacts:
    p = r.obj(raw, "parties", PARTIES_FIELDS)
    matches: list[ListMatch] = []
    raw_matches = p.get("list_matches")
    if raw_matches is not None and (not isinstance(raw_matches, list) or len(raw_matches) > MAX_LIST_MATCHES):
        r.fail("parties.list_matches", f"must be a list of at most {MAX_LIST_MATCHES}")
        raw_matches = []
    for i, item in enumerate(raw_matches or []):
        path = f"parties.list_matches[{i}]"
        m = r.obj(item, path, LIST_MATCH_FIELDS)
        party = r.code(m.get("party"), f"{path}.party", PARTIES, required=True)
        subject = r.code(m.get("subject"), f"{path}.subject", MATCH_SUBJECTS, default="name")
        name, listed = (
            r.text(m.get("name"), f"{path}.name", required=True),
            r.text(m.get("list"), f"{path}.list", required=True),
        )
        entry = r.text(m.get("entry"), f"{path}.entry", required=True)
        score = r.number(m.get("score"), f"{path}.score", low=0, high=100, default=-1)
        if m.get("score") is None:
            r.fail(f"{path}.score", "this field is required")
        if party and name and listed and entry and score >= 0:
            matches.append(
                ListMatch(
                    party=party,
                    subject=subject or "name",
                    name=name,
                    list=listed,
                    entry=entry,
                    entry_name=r.text(m.get("entry_name"), f"{path}.entry_name"),
                    programme=r.text(m.get("programme"), f"{path}.programme"),
                    score=round(score),
                    share=r.number(m.get("share"), f"{path}.share", low=0, high=100),
                )
            )
    lists = p.get("lists") or []
    if not isinstance(lists, list) or len(lists) > 20:
        r.fail("parties.lists", "must be a list of at most 20 list references")
        lists = []
    records = p.get("records") or {}
    if not isinstance(records, Mapping) or any(k not in PARTIES for k in records):
        r.fail("parties.records", "maps buyer / exporter to the version of its legal facts")
        records = {}
    return PartyFacts(
        list_matches=tuple(matches),
        lists=tuple(r.text(x, f"parties.lists[{i}]") for i, x in enumerate(lists)),
        records=tuple((k, r.text(v, f"parties.records.{k}")) for k, v in records.items()),
    )
