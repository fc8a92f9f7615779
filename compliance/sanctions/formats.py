"""Parsers for the published sanctions-list files.

OFAC SDN (legacy delimited files): `sdn.csv` (ent_num, SDN_Name, SDN_Type, Program, Title,
Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks), `add.csv` (Ent_num, Add_num,
Address, City/State/Province/Postal Code, Country, Add_remarks) and `alt.csv` (ent_num, alt_num,
alt_type, alt_name, alt_remarks): comma-separated, every field double-quoted, no header row, and
`-0-` (often followed by a space) for an empty field.

EU consolidated financial sanctions list, CSV v1.1: `;`-separated, UTF-8 with a byte-order mark,
one header row, denormalised (one row per alias, address, birth date, identification or
citizenship), so rows are grouped by Entity_LogicalId.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime


class ListFormatError(ValueError):
    """A file that is not in the format it claims to be."""


@dataclass
class ParsedEntry:
    entry_id: str
    name: str
    party_type: str = "entity"
    reference: str = ""
    aliases: list[str] = field(default_factory=list)
    programmes: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    remarks: str = ""


@dataclass
class ParsedList:
    entries: list[ParsedEntry]
    published_on: date | None = None


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _ofac_value(raw: str) -> str:
    value = raw.strip()
    return "" if value == "-0-" else value


def _ofac_rows(raw: bytes, width: int, name: str) -> Iterable[list[str]]:
    text = _decode(raw).replace("\x1a", "")  # the files end with a DOS end-of-file character
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if not row[0].strip().isdigit():
            raise ListFormatError(
                f"{name} line {number}: the first field must be the entry number, not {row[0][:40]!r}"
            )
        if len(row) < width:
            raise ListFormatError(f"{name} line {number}: {len(row)} fields, expected {width}")
        yield [_ofac_value(cell) for cell in row]


def parse_ofac_sdn(*, sdn: bytes, alt: bytes | None = None, add: bytes | None = None) -> ParsedList:
    entries: dict[str, ParsedEntry] = {}
    for row in _ofac_rows(sdn, 12, "sdn.csv"):
        ent_num = row[0].strip()
        programmes = [p.strip() for p in re.split(r"\]\s*\[|;", row[3].strip("[] ")) if p.strip()]
        entries[ent_num] = ParsedEntry(
            entry_id=ent_num,
            name=row[1],
            party_type=(row[2] or "entity").lower(),
            programmes=programmes,
            remarks=row[11],
        )
    for row in _ofac_rows(alt or b"", 5, "alt.csv"):
        entry = entries.get(row[0].strip())
        if entry is not None and row[3] and row[3] not in entry.aliases:
            entry.aliases.append(row[3])
    for row in _ofac_rows(add or b"", 6, "add.csv"):
        entry = entries.get(row[0].strip())
        if entry is not None and row[4] and row[4] not in entry.countries:
            entry.countries.append(row[4])
    return ParsedList(entries=list(entries.values()))


EU_REQUIRED = ("Entity_LogicalId", "NameAlias_WholeName")
EU_PARTY_TYPES = {"P": "individual", "PERSON": "individual", "E": "entity", "ENTERPRISE": "entity"}


def _eu_date(raw: str) -> date | None:
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(raw.strip()[:19], pattern).date()
        except ValueError:
            continue
    return None


def parse_eu_fsf_csv(raw: bytes) -> ParsedList:
    text = _decode(raw)
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    header = reader.fieldnames or []
    missing = [c for c in EU_REQUIRED if c not in header]
    if missing:
        raise ListFormatError(f"EU CSV: the header lacks {', '.join(missing)} (is it the ';'-separated v1.1 file?)")
    entries: dict[str, ParsedEntry] = {}
    published: date | None = None
    for row in reader:
        logical_id = (row.get("Entity_LogicalId") or "").strip()
        if not logical_id:
            continue
        published = published or _eu_date(row.get("fileGenerationDate") or "")
        entry = entries.get(logical_id)
        if entry is None:
            subject = (
                (row.get("Entity_SubjectType") or row.get("Entity_SubjectType_ClassificationCode") or "")
                .strip()
                .upper()
            )
            entry = entries[logical_id] = ParsedEntry(
                entry_id=logical_id,
                name="",
                party_type=EU_PARTY_TYPES.get(subject, subject.lower() or "entity"),
                reference=(row.get("Entity_EU_ReferenceNumber") or "").strip(),
                remarks=(row.get("Entity_Remark") or "").strip(),
            )
        name = (row.get("NameAlias_WholeName") or "").strip()
        if name:
            if not entry.name:
                entry.name = name
            elif name != entry.name and name not in entry.aliases:
                entry.aliases.append(name)
        programme = (row.get("Entity_Regulation_Programme") or "").strip()
        if programme and programme not in entry.programmes:
            entry.programmes.append(programme)
        for column in ("Address_CountryIso2Code", "Citizenship_CountryIso2Code"):
            country = (row.get(column) or "").strip()
            if country and country not in entry.countries:
                entry.countries.append(country)
    return ParsedList(entries=[e for e in entries.values() if e.name], published_on=published)
