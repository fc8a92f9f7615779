"""Name normalisation and fuzzy matching of parties against list entries (rapidfuzz, anyascii).

A name is normalised before it is compared: company-form words are dropped (Ltd, LLC, GmbH, OOO,
有限公司…), other scripts are transliterated to ASCII (anyascii: Cyrillic, Greek, Han, Arabic…),
case and punctuation are folded. Two scorers are combined, both on normalised names: token-sort
ratio (word order does not matter: "VOLKOV, Pavel" = "Pavel Volkov") and the plain ratio with the
spaces removed (transliterated Han comes out as glued syllables). One name containing every word
of the other (at least two words: "Pavel Volkov" in "Pavel Andreevich VOLKOV", a listed name inside
"Northwind Trading Hamburg") scores SUBSET_SCORE: probable, never certain, because token-set ratio
would score any name that merely contains a listed one as 100.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from anyascii import anyascii
from rapidfuzz import fuzz, process

# Legal forms in scripts that are written without spaces, or as several words, removed before
# transliteration (longest first).
_SCRIPT_FORMS = sorted(
    (
        "股份有限公司",
        "有限责任公司",
        "有限責任公司",
        "有限公司",
        "集团公司",
        "公司",
        "株式会社",
        "有限会社",
        "合同会社",
        "주식회사",
        "유한회사",
        "общество с ограниченной ответственностью",
        "закрытое акционерное общество",
        "открытое акционерное общество",
        "публичное акционерное общество",
        "акционерное общество",
        "товариство з обмеженою відповідальністю",
        "gesellschaft mit beschränkter haftung",
        "société à responsabilité limitée",
        "limited liability company",
        "public limited company",
        "joint stock company",
    ),
    key=len,
    reverse=True,
)
# Company-form words dropped after transliteration (word tokens, case-folded, dots removed).
COMPANY_FORMS = frozenset(
    {
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "cos",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ug",
        "ohg",
        "ev",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "sl",
        "bv",
        "nv",
        "oy",
        "oyj",
        "ab",
        "as",
        "asa",
        "aps",
        "kft",
        "zrt",
        "sro",
        "doo",
        "dd",
        "ad",
        "ead",
        "jsc",
        "pjsc",
        "cjsc",
        "ojsc",
        "ooo",
        "zao",
        "oao",
        "pao",
        "ao",
        "tov",
        "pat",
        "pjs",
        "fze",
        "fzco",
        "fzc",
        "fzllc",
        "pte",
        "pty",
        "bhd",
        "sdn",
        "tbk",
        "pt",
        "kk",
        "yk",
        "est",
        "lda",
        "ltda",
        "sgps",
        "ou",
        "uab",
        "sia",
        "sp",
        "oo",
        "zoo",
        "spol",
        "group",
        "holding",
        "holdings",
        "trust",
    }
)
SUBSET_SCORE = 90
_DOTTED = re.compile(r"(?<=\b\w)\.(?=\w\b)|\.(?=\s|$)")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(name: str) -> str:
    """A name as compared: forms removed, transliterated, case-folded, words separated by one space.
    A name that is nothing but company-form words keeps them (so "Holding Co." is not empty)."""
    text = name.casefold()
    for form in _SCRIPT_FORMS:
        text = text.replace(form, " ")
    text = anyascii(text).casefold().replace("&", " and ").replace("'", "")
    text = _DOTTED.sub("", text)  # "l.l.c." → "llc", "co." → "co"
    words = [w for w in _NON_WORD.split(text) if w]
    kept = [w for w in words if w not in COMPANY_FORMS]
    return " ".join(kept or words)


def score(a: str, b: str) -> int:
    """0–100 similarity of two normalised names."""
    if not a or not b:
        return 0
    if a == b:
        return 100
    return round(max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a.replace(" ", ""), b.replace(" ", ""))))


@dataclass(frozen=True)
class Candidate:
    """One name of one list entry, normalised for matching."""

    key: object  # the stored entry's primary key
    name: str  # as listed
    normalised: str


@dataclass(frozen=True)
class Hit:
    candidate: Candidate
    score: int


class NameIndex:
    """Every name of every entry of some lists, normalised once; `search` returns the best-scoring
    entries for a name (each entry once, by its best name)."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.candidates: list[Candidate] = [c for c in candidates if c.normalised]
        self._choices = [c.normalised for c in self.candidates]
        self._compact = [c.normalised.replace(" ", "") for c in self.candidates]

    def __len__(self) -> int:
        return len(self.candidates)

    def search(self, name: str, *, min_score: int, limit: int = 10) -> list[Hit]:
        query = normalise(name)
        if not query or not self.candidates:
            return []
        best: dict[int, int] = {}
        for choices, scorer, q in (
            (self._choices, fuzz.token_sort_ratio, query),
            (self._compact, fuzz.ratio, query.replace(" ", "")),
        ):
            for _, value, index in process.extract(q, choices, scorer=scorer, score_cutoff=min_score, limit=limit * 3):
                best[index] = max(best.get(index, 0), round(value))
        if len(query.split()) >= 2 and min_score <= SUBSET_SCORE:
            for _, _, index in process.extract(
                query, self._choices, scorer=fuzz.token_set_ratio, score_cutoff=100, limit=limit * 3
            ):
                if len(self._choices[index].split()) >= 2:
                    best[index] = max(best.get(index, 0), SUBSET_SCORE)
        per_entry: dict[object, Hit] = {}
        for index, value in best.items():
            candidate = self.candidates[index]
            value = 100 if candidate.normalised == query else value
            current = per_entry.get(candidate.key)
            if current is None or value > current.score:
                per_entry[candidate.key] = Hit(candidate, value)
        return sorted(per_entry.values(), key=lambda h: (-h.score, str(h.candidate.key)))[:limit]


def candidates_for(key: object, names: Sequence[str]) -> list[Candidate]:
    return [Candidate(key=key, name=n, normalised=normalise(n)) for n in dict.fromkeys(names) if n]
