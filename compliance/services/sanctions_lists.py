"""Sanctions lists: importing published files as versioned snapshots, and screening names against
the newest snapshot of each source.

An import is idempotent: the same files (same checksum) give the same snapshot. A new snapshot is
announced after commit (signal `sanctions_list_imported`), and marketplace screens everyone again.
"""

import hashlib
import json
import logging
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from compliance.errors import SanctionsListInvalidError
from compliance.models import SanctionsEntry, SanctionsList
from compliance.sanctions.formats import ListFormatError, ParsedList, parse_eu_fsf_csv, parse_ofac_sdn
from compliance.sanctions.matching import Candidate, NameIndex, candidates_for
from compliance.services.audit import audit_record
from compliance.signals import sanctions_list_imported

logger = logging.getLogger(__name__)

# The files each source is published as, in the order the checksum reads them; the first is required.
SOURCE_FILES: dict[str, tuple[str, ...]] = {
    SanctionsList.Source.OFAC_SDN: ("sdn.csv", "alt.csv", "add.csv"),
    SanctionsList.Source.EU_FSF: ("eu_fsf.csv",),
}
MAX_FILE_BYTES = 200 * 1024 * 1024


def _parse(source: str, files: dict[str, bytes]) -> ParsedList:
    if source == SanctionsList.Source.OFAC_SDN:
        return parse_ofac_sdn(sdn=files["sdn.csv"], alt=files.get("alt.csv"), add=files.get("add.csv"))
    return parse_eu_fsf_csv(files["eu_fsf.csv"])


def _fingerprint(name: str, aliases: Sequence[str], programmes: Sequence[str], party_type: str) -> str:
    return hashlib.sha256(json.dumps([name, list(aliases), list(programmes), party_type]).encode()).hexdigest()


@transaction.atomic
def sanctions_list_import(
    *,
    source: str,
    files: dict[str, bytes],
    origin: str = "",
    published_on: date | None = None,
    actor_label: str = "system:import_sanctions_list",
) -> tuple[SanctionsList, bool]:
    """Store the files as a snapshot of `source` (created=False if exactly these files are the
    current snapshot already). Refuses a file that does not parse or lists nobody: an empty or
    truncated download must not clear everyone."""
    if source not in SOURCE_FILES:
        raise SanctionsListInvalidError(fields={"source": [f"one of: {', '.join(SOURCE_FILES)}"]})
    names = SOURCE_FILES[source]
    if not files.get(names[0]):
        raise SanctionsListInvalidError(fields={names[0]: ["this file is required"]})
    unknown = set(files) - set(names)
    if unknown:
        raise SanctionsListInvalidError(
            fields={n: [f"not a file of {source}; expected {', '.join(names)}"] for n in sorted(unknown)}
        )
    digest = hashlib.sha256()
    described = []
    for name in names:
        content = files.get(name)
        if content is None:
            continue
        file_hash = hashlib.sha256(content).hexdigest()
        digest.update(f"{name}:{file_hash}\n".encode())
        described.append({"name": name, "bytes": len(content), "sha256": file_hash})
    checksum = digest.hexdigest()
    current = sanctions_list_current(source=source)
    if current is not None and current.checksum == checksum:
        return current, False
    try:
        parsed = _parse(source, files)
    except ListFormatError as exc:
        raise SanctionsListInvalidError(str(exc), fields={names[0]: [str(exc)]}) from exc
    if not parsed.entries:
        raise SanctionsListInvalidError("The list names nobody; refusing to replace the current snapshot with it.")
    snapshot = SanctionsList.objects.create(
        source=source,
        published_on=published_on or parsed.published_on or timezone.localdate(),
        checksum=checksum,
        files=described,
        origin=origin[:500],
        entries_count=len(parsed.entries),
        imported_by_label=actor_label,
    )
    SanctionsEntry.objects.bulk_create(
        [
            SanctionsEntry(
                sanctions_list=snapshot,
                entry_id=e.entry_id[:40],
                reference=e.reference[:60],
                party_type=e.party_type[:16],
                name=e.name[:400],
                aliases=e.aliases,
                programmes=e.programmes,
                countries=e.countries,
                remarks=e.remarks,
                fingerprint=_fingerprint(e.name, e.aliases, e.programmes, e.party_type),
            )
            for e in parsed.entries
        ],
        batch_size=1000,
    )
    audit_record(
        kind="sanctions_list.imported",
        subject_type="sanctions_list",
        subject_id=snapshot.id,
        actor_label=actor_label,
        data={
            "ref": snapshot.ref,
            "source": source,
            "checksum": checksum,
            "entries": len(parsed.entries),
            "origin": origin[:500],
            "files": described,
        },
    )
    transaction.on_commit(partial(sanctions_list_imported.send, sender=SanctionsList, list_id=str(snapshot.id)))
    return snapshot, True


def sanctions_list_current(*, source: str) -> SanctionsList | None:
    """The newest snapshot of a source (the one screening uses)."""
    return SanctionsList.objects.filter(source=source).order_by("-imported_at", "-id").first()


def sanctions_lists_current() -> list[SanctionsList]:
    """The newest snapshot of each source, in SOURCE_FILES order: one query (every check screens
    both parties against them)."""
    newest = SanctionsList.objects.filter(source=OuterRef("source")).order_by("-imported_at", "-id").values("pk")[:1]
    found = {s.source: s for s in SanctionsList.objects.filter(source__in=list(SOURCE_FILES), pk=Subquery(newest))}
    return [found[src] for src in SOURCE_FILES if src in found]


# --- screening --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenedName:
    party: str  # buyer | exporter (as the facts name it); for onboarding, "buyer"
    subject: str  # name | alias | owner | controller
    name: str
    share: float = 0.0


@dataclass(frozen=True)
class ListMatch:
    """A screened name that resembles a list entry: the engine fact plus what reviewers need."""

    screened: ScreenedName
    list_ref: str
    source: str
    entry_pk: int
    entry_id: str
    entry_name: str
    matched_name: str  # the entry's name or alias that matched
    programme: str
    score: int
    entry_fingerprint: str

    def as_fact(self) -> dict[str, Any]:
        fact: dict[str, Any] = {
            "party": self.screened.party,
            "subject": self.screened.subject,
            "name": self.screened.name[:400],
            "list": self.list_ref,
            "entry": self.entry_id,
            "entry_name": self.entry_name[:400],
            "programme": self.programme[:400],
            "score": self.score,
        }
        if self.screened.subject == "owner":
            fact["share"] = self.screened.share
        return fact

    def as_dict(self) -> dict[str, Any]:
        return {**self.as_fact(), "source": self.source, "matched_name": self.matched_name}


_index_lock = threading.Lock()
_index_cache: dict[tuple[str, ...], tuple[NameIndex, dict[int, tuple[SanctionsList, SanctionsEntry]]]] = {}


def _index(snapshots: Sequence[SanctionsList]) -> tuple[NameIndex, dict[int, tuple[SanctionsList, SanctionsEntry]]]:
    """The name index of these snapshots, built once per process (snapshots never change)."""
    key = tuple(sorted(str(s.id) for s in snapshots))
    with _index_lock:
        if key in _index_cache:
            return _index_cache[key]
    by_id = {s.id: s for s in snapshots}
    entries: dict[int, tuple[SanctionsList, SanctionsEntry]] = {}
    candidates: list[Candidate] = []
    rows = SanctionsEntry.objects.filter(sanctions_list_id__in=list(by_id)).only(
        "id", "sanctions_list_id", "entry_id", "name", "aliases", "programmes", "party_type", "fingerprint"
    )
    for entry in rows.iterator(chunk_size=2000):
        entries[entry.id] = (by_id[entry.sanctions_list_id], entry)
        candidates.extend(candidates_for(entry.id, [entry.name, *entry.aliases]))
    built = (NameIndex(candidates), entries)
    with _index_lock:
        _index_cache.clear()  # only the current combination is worth keeping
        _index_cache[key] = built
    return built


def sanctions_screen(
    *, names: Sequence[ScreenedName], min_score: int | None = None, snapshots: list[SanctionsList] | None = None
) -> tuple[list[ListMatch], list[str]]:
    """Every list entry resembling one of `names` with a score of at least `min_score`
    (ELEMENTA_SCREENING_MIN_SCORE), best first, and the refs of the snapshots screened against
    (`snapshots`, already read by a caller that screens several parties, or the current ones)."""
    snapshots = sanctions_lists_current() if snapshots is None else snapshots
    if not snapshots:
        return [], []
    floor = settings.ELEMENTA_SCREENING_MIN_SCORE if min_score is None else min_score
    index, entries = _index(snapshots)
    matches: list[ListMatch] = []
    for screened in names:
        for hit in index.search(screened.name, min_score=floor):
            snapshot, entry = entries[int(hit.candidate.key)]  # type: ignore[call-overload]
            matches.append(
                ListMatch(
                    screened=screened,
                    list_ref=snapshot.ref,
                    source=snapshot.source,
                    entry_pk=entry.id,
                    entry_id=entry.entry_id,
                    entry_name=entry.name,
                    matched_name=hit.candidate.name,
                    programme=", ".join(entry.programmes),
                    score=hit.score,
                    entry_fingerprint=entry.fingerprint,
                )
            )
    matches.sort(key=lambda m: -m.score)
    return matches, sorted(s.ref for s in snapshots)


# --- scheduled refresh ------------------------------------------------------------------------


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise SanctionsListInvalidError(f"{url} is larger than {MAX_FILE_BYTES} bytes")
    return data


def sanctions_lists_refresh() -> list[str]:
    """Download and import each list whose URL is configured (ELEMENTA_OFAC_SDN_BASE_URL: the folder
    holding SDN.CSV, ALT.CSV and ADD.CSV; ELEMENTA_EU_FSF_CSV_URL). Unchanged files import nothing.
    A failed download or a bad file is logged and leaves the current snapshot in place."""
    done: list[str] = []
    sources: list[tuple[str, dict[str, str]]] = []
    if settings.ELEMENTA_OFAC_SDN_BASE_URL:
        base = settings.ELEMENTA_OFAC_SDN_BASE_URL.rstrip("/")
        sources.append(
            (
                SanctionsList.Source.OFAC_SDN,
                {n: f"{base}/{n.upper()}" for n in SOURCE_FILES[SanctionsList.Source.OFAC_SDN]},
            )
        )
    if settings.ELEMENTA_EU_FSF_CSV_URL:
        sources.append((SanctionsList.Source.EU_FSF, {"eu_fsf.csv": settings.ELEMENTA_EU_FSF_CSV_URL}))
    for source, urls in sources:
        try:
            files = {name: _download(url) for name, url in urls.items()}
            snapshot, created = sanctions_list_import(
                source=source, files=files, origin=" ".join(urls.values()), actor_label="system:sanctions_refresh"
            )
        except Exception:
            logger.exception("sanctions list %s could not be refreshed; the current snapshot stays", source)
            continue
        done.append(f"{snapshot.ref} ({'new' if created else 'unchanged'})")
    return done
