"""The catalogue list: which datasets, in which order, one page at a time, in at most two statements.

The common query is `status = 'published'` (partial indexes per ordering, migration 0022); a provider's
own listings in any status come from `mine=true` (their organisation's rows, by the provider_id index).
Mixing the two in one `published OR provider = me` filter defeated every index.

Search (`q`):
- PostgreSQL: full-text search on a stored generated `search_vector` (title weighted A over description B,
  the `simple` configuration: no stemming, so names and non-English words match as written), every word
  whole but the last, which is a prefix (`berlin & retail:*`), ranked title-match first, then `ts_rank_cd`,
  over at most the SEARCH_WINDOW newest matches (ranking reads each row it ranks; an explicit `ordering` is
  exact over all matches). When that finds nothing, a trigram fallback on titles (pg_trgm `<%`, word
  similarity ≥ 0.6, the SEARCH_WINDOW newest similar titles) catches partial words ("etail").
- SQLite (the embedded default): every word in the title or description (icontains), title matches first.

Counts are exact up to COUNT_CAP and capped beyond (a count past that is a scan of the whole catalogue on
every page); `next` never depends on the count: the page query reads one row more than it shows.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Expression,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    TextField,
    Value,
    Window,
)
from django.db.models.expressions import OrderBy

from marketplace.errors import OrderingInvalidError
from marketplace.models import Dataset
from marketplace.selectors.members import is_officer, membership_of

COUNT_CAP = 10_000
SEARCH_WINDOW = 1_000  # PostgreSQL: relevance ranks at most this many matches, the newest
MAX_WORDS = 8
# ?ordering= keys → columns. Every one is a partial index on published rows (with `id`).
ORDERING_FIELDS = {"price": "price", "published_at": "published_at", "created_at": "created_at", "title": "title"}
DEFAULT_ORDERING = ("-published_at",)
MINE_DEFAULT_ORDERING = ("-created_at",)  # drafts have no published_at
RELEVANCE = "relevance"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class CataloguePage:
    rows: list[dict[str, Any]]
    count: int
    count_capped: bool
    has_next: bool


def dataset_catalogue(
    *, user: User | AnonymousUser, mine: bool = False, status: str | None = None
) -> QuerySet[Dataset]:
    """The rows a catalogue list starts from.

    - `mine`: the caller's organisation's listings, any status (or `status`); nothing without an organisation.
    - officers asking for a `status`: every organisation's listings in that status.
    - everyone else: published listings only (`status` other than published: nothing).
    Single datasets by id stay `dataset_list_visible` (own drafts are readable by id)."""
    qs = Dataset.objects.all()
    if mine:
        membership = membership_of(user)
        if membership is None:
            return qs.none()
        qs = qs.filter(provider_id=membership.organisation_id)
        return qs.filter(status=status) if status else qs
    if status and is_officer(user):
        return qs.filter(status=status)
    if status and status != Dataset.Status.PUBLISHED:
        return qs.none()
    return qs.filter(status=Dataset.Status.PUBLISHED)


def parse_ordering(value: str | None, *, searching: bool) -> tuple[str, ...] | None:
    """`price,-published_at` → ("price", "-published_at"); None for the default; OrderingInvalidError for
    an unknown, repeated or empty key (`relevance` only with `q`)."""
    if value is None or not value.strip():
        return None
    keys = tuple(part.strip() for part in value.split(","))
    seen: set[str] = set()
    for key in keys:
        name = key[1:] if key.startswith("-") else key
        allowed = name in ORDERING_FIELDS or (name == RELEVANCE and searching and not key.startswith("-"))
        if not allowed or name in seen:
            raise OrderingInvalidError(
                fields={"ordering": [f"{key!r} is not one of {', '.join(sorted(ORDERING_FIELDS))}"
                                     f"{' or relevance' if searching else ''} (each optionally with '-'), "
                                     "at most once each"]}
            )
        seen.add(name)
    return keys


def _order_by(keys: tuple[str, ...], relevance: list[Any]) -> list[Any]:
    """Columns for `keys`, with relevance expanded and `id` as the tie-breaker in the last key's direction."""
    terms: list[Any] = []
    descending = True
    for key in keys:
        if key == RELEVANCE:
            terms.extend(relevance)
            descending = True
            continue
        descending = key.startswith("-")
        column = F(ORDERING_FIELDS[key.lstrip("-")])
        terms.append(column.desc() if descending else column.asc())  # no NULLS LAST: it would not match the index
    terms.append(F("id").desc() if descending else F("id").asc())
    return terms


def search_words(q: str | None) -> list[str]:
    return [w.lower() for w in _WORD.findall(q or "")][:MAX_WORDS]


class _SearchVector(Expression):
    """`<table alias>."search_vector"`: the PostgreSQL column the model does not declare (migration 0022);
    relabelled like a column when the query becomes a subquery."""

    def __init__(self, alias: str | None = None) -> None:
        super().__init__(output_field=TextField())
        self.alias = alias

    def resolve_expression(self, query: Any = None, *args: Any, **kwargs: Any) -> "_SearchVector":
        clone = self.copy()
        clone.alias = query.get_initial_alias() if query is not None else None
        return clone

    def relabeled_clone(self, change_map: Mapping[str, str]) -> "_SearchVector":
        clone = self.copy()
        clone.alias = change_map.get(self.alias or "", self.alias)
        return clone

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return f'{compiler.quote_name_unless_alias(self.alias)}."search_vector"', []

    def get_group_by_cols(self) -> list[Any]:
        return [self]


def _matches(tsquery: str) -> Func:
    return Func(_SearchVector(), Value(tsquery), template="%(expressions)s)",
                arg_joiner=" @@ to_tsquery('simple', ", output_field=BooleanField())


def _tsqueries(words: list[str], *, prefix: bool) -> tuple[str, str]:
    """(query, the same words among the title's lexemes). Words are whole; with `prefix`, the last
    one is also a prefix (`berlin & retail:*`)."""
    terms = [*words[:-1], f"{words[-1]}:*" if prefix else words[-1]]
    title = " & ".join(f"{t}A" if t.endswith(":*") else f"{t}:A" for t in terms)
    return " & ".join(terms), title


def _fulltext(qs: QuerySet[Dataset], words: list[str], *, prefix: bool = False) -> tuple[QuerySet[Dataset], list[Any]]:
    """PostgreSQL: rows whose search_vector has every word (the last as a prefix with `prefix`); relevance terms."""
    query, title_query = _tsqueries(words, prefix=prefix)
    rank = Func(_SearchVector(), Value(query), function="ts_rank_cd", template="%(function)s(%(expressions)s))",
                arg_joiner=", to_tsquery('simple', ", output_field=FloatField())
    qs = qs.annotate(_hit=_matches(query), _title_hit=_matches(title_query), _rank=rank).filter(_hit=True)
    return qs, [OrderBy(F("_title_hit"), descending=True), OrderBy(F("_rank"), descending=True)]


def _trigram(qs: QuerySet[Dataset], q: str) -> tuple[QuerySet[Dataset], list[Any]]:
    """PostgreSQL fallback: titles with a word similar to `q` (pg_trgm word similarity, GIN trigram index)."""
    qs = qs.annotate(
        _similar=Func(Value(q), F("title"), template="%(expressions)s", arg_joiner=" <%% ",
                      output_field=BooleanField()),
        _similarity=Func(Value(q), F("title"), function="word_similarity", output_field=FloatField()),
    ).filter(_similar=True)
    return qs, [OrderBy(F("_similarity"), descending=True)]


def _substring(qs: QuerySet[Dataset], words: list[str]) -> tuple[QuerySet[Dataset], list[Any]]:
    """Other databases: every word in the title or the description; titles with every word first."""
    in_title = Q()
    for word in words:
        qs = qs.filter(Q(title__icontains=word) | Q(description__icontains=word))
        in_title &= Q(title__icontains=word)
    qs = qs.annotate(_title_hit=ExpressionWrapper(in_title, output_field=BooleanField()))
    return qs, [OrderBy(F("_title_hit"), descending=True)]


def _capped_count(qs: QuerySet[Dataset], cap: int | None = None) -> tuple[int, bool]:
    cap = COUNT_CAP if cap is None else cap
    counted = qs.order_by().values("pk")[: cap + 1].count()
    return min(counted, cap), counted > cap


def _window_count(qs: QuerySet[Dataset]) -> tuple[int, bool]:
    counted = qs.order_by().values("pk")[:SEARCH_WINDOW].count()
    return counted, counted >= SEARCH_WINDOW


def _newest(qs: QuerySet[Dataset]) -> QuerySet[Dataset]:
    """The SEARCH_WINDOW newest rows of `qs`, as a fresh queryset to rank (`id IN (… LIMIT n)`). Its count is
    capped when it is full: there may be more matches."""
    window = qs.order_by("-published_at", "-id").values("pk")[:SEARCH_WINDOW]
    return Dataset.objects.filter(pk__in=window)


def catalogue_page(
    qs: QuerySet[Dataset],
    *,
    columns: tuple[str, ...],
    q: str | None = None,
    ordering: str | None = None,
    mine: bool = False,
    page: int = 1,
    page_size: int = 20,
) -> CataloguePage | None:
    """One page of `qs` (already filtered) as `.values(*columns)` rows, searched by `q` and ordered by
    `ordering`; None when `page` is past the end. Two statements: a capped count, then the page; a
    PostgreSQL relevance search: the page's ranked ids (counted inside on the first page), then its
    columns; whole words first, then the last word as a prefix, then the trigram fallback (one
    statement), each only when the one before found nothing."""
    words = search_words(q)
    keys = parse_ordering(ordering, searching=bool(words))
    default = MINE_DEFAULT_ORDERING if mine else DEFAULT_ORDERING
    offset = (page - 1) * page_size
    relevance: list[Any] = []
    if words and connection.vendor == "postgresql":
        # Whole words first: a GIN lookup of a whole word costs a fraction of a prefix's. Only when no
        # listing has them all does the last word count as a prefix (it may still be being typed), and
        # only when that finds nothing do titles similar to `q` answer (trigram). Each page makes the
        # same choice, so paging never mixes them.
        for prefix in (False, True):
            searched, relevance = _fulltext(qs, words, prefix=prefix)
            if keys is None or RELEVANCE in keys:
                # Ranking every match of a common word (5% of a million listings) reads them all on every
                # page: relevance ranks the SEARCH_WINDOW newest matches (exact when there are fewer).
                window_count = None if offset == 0 else _window_count(searched)
                if window_count == (0, False):
                    continue
                found = _ranked_page(searched, words, prefix, keys or (RELEVANCE,), columns, offset, page_size,
                                     window_count)
                if found is None and offset == 0:
                    continue
                return found
            count, capped = _capped_count(searched)
            if count:
                qs = searched
                break
        else:
            return _trigram_page(qs, q or "", keys or (RELEVANCE,), columns, offset, page_size)
    elif words:
        qs, relevance = _substring(qs, words)
        count, capped = _capped_count(qs)
    else:
        count, capped = _capped_count(qs)
    if offset and offset >= count and not capped:
        return None
    if count == 0:
        return CataloguePage(rows=[], count=0, count_capped=False, has_next=False)
    order = _order_by(keys or ((RELEVANCE,) if words else default), relevance)
    rows = list(qs.order_by(*order).values(*columns)[offset : offset + page_size + 1])
    if offset and not rows:
        return None
    return CataloguePage(rows=rows[:page_size], count=count, count_capped=capped, has_next=len(rows) > page_size)


def _window_page(
    window: QuerySet[Dataset], relevance: list[Any], keys: tuple[str, ...], columns: tuple[str, ...], offset: int,
    page_size: int,
) -> CataloguePage | None:
    """A page of the trigram fallback's ranked window (`_newest`), counted inside the page query: one
    statement (its window is rarely full, and it runs only when full-text search found nothing)."""
    window = window.annotate(_total=Window(Count("pk")))
    ordered = window.order_by(*_order_by(keys, relevance))
    rows = list(ordered.values(*columns, "_total")[offset : offset + page_size + 1])
    if not rows:
        return None
    total = int(rows[0]["_total"])
    for row in rows:
        del row["_total"]
    return CataloguePage(rows=rows[:page_size], count=total, count_capped=total >= SEARCH_WINDOW,
                         has_next=len(rows) > page_size and offset + page_size < total)


def _ranked_page(
    searched: QuerySet[Dataset], words: list[str], prefix: bool, keys: tuple[str, ...], columns: tuple[str, ...],
    offset: int, page_size: int, count: tuple[int, bool] | None,
) -> CataloguePage | None:
    """A page of the SEARCH_WINDOW newest matches, ranked. Two statements: the page's ids, ranked in
    one query over the window's own rows (the window is a subquery in FROM carrying each row's
    search_vector and ordering columns, so ranking reads no row twice; the ORM can only express it
    as `id IN (window)`, which looked up each of the thousand rows again), then the page's columns
    for those ids, put back in rank order. Counted inside the first statement when `count` is None."""
    if count is not None and offset >= count[0]:
        return None
    fields = [ORDERING_FIELDS[k.lstrip("-")] for k in keys if k != RELEVANCE]
    window = (searched.order_by("-published_at", "-id")
              .annotate(_sv=_SearchVector()).values("id", "_sv", *fields)[:SEARCH_WINDOW])
    inner, params = window.query.sql_with_params()
    query, title_query = _tsqueries(words, prefix=prefix)
    order: list[str] = []
    descending = True
    for key in keys:
        if key == RELEVANCE:
            order += ["w._sv @@ to_tsquery('simple', %s) DESC", "ts_rank_cd(w._sv, to_tsquery('simple', %s)) DESC"]
            descending = True
            continue
        descending = key.startswith("-")
        order.append(f'w."{ORDERING_FIELDS[key.lstrip("-")]}" {"DESC" if descending else "ASC"}')
    order.append(f"w.id {'DESC' if descending else 'ASC'}")
    order_params = [value for key in keys if key == RELEVANCE for value in (title_query, query)]
    sql = (f"SELECT w.id, {'COUNT(*) OVER ()' if count is None else '0'} FROM ({inner}) w "
           f"ORDER BY {', '.join(order)} LIMIT %s OFFSET %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *order_params, page_size + 1, offset])
        ranked = cursor.fetchall()
    if not ranked:
        return None
    position = {pk: n for n, (pk, _) in enumerate(ranked)}
    rows = sorted(Dataset.objects.filter(pk__in=position).order_by().values(*columns),
                  key=lambda row: position[row["id"]])
    matches, capped = (int(ranked[0][1]), int(ranked[0][1]) >= SEARCH_WINDOW) if count is None else count
    return CataloguePage(rows=rows[:page_size], count=matches, count_capped=capped,
                         has_next=len(rows) > page_size and offset + page_size < matches)


def _trigram_page(
    qs: QuerySet[Dataset], q: str, keys: tuple[str, ...] | None, columns: tuple[str, ...], offset: int,
    page_size: int,
) -> CataloguePage | None:
    """The fallback: the SEARCH_WINDOW newest titles similar to `q`, ranked; one statement."""
    matched, _ = _trigram(qs, q)
    window, relevance = _trigram(_newest(matched), q)
    found = _window_page(window, relevance, keys or (RELEVANCE,), columns, offset, page_size)
    if found is None and offset == 0:
        return CataloguePage(rows=[], count=0, count_capped=False, has_next=False)
    return found
