"""A queryset compiled to SQL once per process, then run with a new key.

The ORM compiles a queryset to SQL on every evaluation. For a lookup by primary key that joins
four related rows and carries three subqueries (the worker locking a trade before it checks and
settles it) that compilation is most of the cost: 9.3 ms of CPU under a profiler, 2.0 ms
compiled once (the profiler inflates Python calls; the pipeline bench saw about 1.5 ms a trade
saved). `CompiledLookup` builds the queryset once, with a sentinel key, keeps the SQL
and the compiler, and for each call swaps the key into the parameters, runs the statement and
builds the instances exactly as Django's ModelIterable does (select_related relations,
annotations, field converters). `CompiledFirst` does the same for a queryset with no key (the
first row of an order). The SQL is the ORM's own, so it is the same on every database the
ORM supports. tests/test_compiled.py compares its results with the plain queryset's.

It relies on compiler attributes that are internal to Django (select, klass_info,
annotation_col_map, results_iter with given rows); Django is pinned, and the test fails first if
an upgrade changes them.
"""

from collections.abc import Callable
from threading import Lock
from typing import Any, Generic, TypeVar
from uuid import UUID

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # internal to Django
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Stands in for the key while compiling; never a real row's id.
_SENTINEL = UUID("00000000-5e17-4e17-8e17-000000005e17")


class _Compiled:
    def __init__(self, queryset: QuerySet[Any], *, keyed: bool = True) -> None:
        self.db = queryset.db
        connection = connections[self.db]
        self.compiler: Any = queryset.query.get_compiler(using=self.db)
        self.sql, params = self.compiler.as_sql()
        pk = queryset.model._meta.pk
        assert pk is not None
        self.pk = pk
        marker = pk.get_db_prep_value(_SENTINEL, connection)
        self.params = list(params)
        self.slots = [i for i, p in enumerate(self.params) if p == marker]
        if keyed and not self.slots:
            raise ValueError("the queryset must filter on the key it is built with")
        klass_info = self.compiler.klass_info
        select = self.compiler.select
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start:self.end]]
        self.annotations = dict(self.compiler.annotation_col_map or {})
        self.populators = get_related_populators(klass_info, select, self.db)
        self.locks = bool(queryset.query.select_for_update)


class _PerAlias:
    """A queryset's compilation, done once per database alias."""

    def __init__(self, build: Callable[[], QuerySet[Any]], *, keyed: bool) -> None:
        self._build = build
        self._keyed = keyed
        self._compiled: dict[str, _Compiled] = {}
        self._lock = Lock()

    def _for(self, alias: str) -> _Compiled:
        compiled = self._compiled.get(alias)
        if compiled is None:
            queryset = self._build()
            if queryset.db != alias:
                raise ValueError(f"the queryset runs on {queryset.db}, not {alias}")
            compiled = _Compiled(queryset, keyed=self._keyed)
            with self._lock:
                self._compiled[alias] = compiled
        return compiled


class CompiledLookup(_PerAlias, Generic[M]):
    """`build(key)` returns the queryset that finds at most one row by `key` (a UUID primary key,
    or a field compared with it). `get(key)` runs it, compiled once per database alias."""

    def __init__(self, build: Callable[[UUID], QuerySet[M]]) -> None:
        super().__init__(lambda: build(_SENTINEL), keyed=True)

    def get(self, key: UUID | str, *, using: str = "default") -> M | None:
        compiled = self._for(using)
        connection = connections[using]
        value = compiled.pk.get_db_prep_value(compiled.pk.to_python(key), connection)
        params = list(compiled.params)
        for slot in compiled.slots:
            params[slot] = value
        return _run(compiled, params, using)


class CompiledFirst(_PerAlias, Generic[M]):
    """`build()` returns a queryset of at most one row with no key (`[:1]`, an order, a filter of
    constants); `first()` runs it, compiled once per database alias."""

    def __init__(self, build: Callable[[], QuerySet[M]]) -> None:
        super().__init__(build, keyed=False)

    def first(self, *, using: str = "default") -> M | None:
        compiled = self._for(using)
        return _run(compiled, list(compiled.params), using)


def _run(compiled: _Compiled, params: list[Any], using: str) -> Any:
    """Run the compiled statement and build its first row's instance as ModelIterable does."""
    connection = connections[using]
    if compiled.locks and connection.features.has_select_for_update and connection.get_autocommit():
        # as the ORM refuses it (SQLite has no row locks, and the ORM lets it through there)
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        rows = cursor.fetchmany(2)
    if not rows:
        return None
    row = next(iter(compiled.compiler.results_iter([rows[:1]])))
    obj = compiled.model.from_db(using, compiled.init_list, row[compiled.start:compiled.end])
    for populator in compiled.populators:
        populator.populate(row, obj)
    for name, position in compiled.annotations.items():
        setattr(obj, name, row[position])
    return obj
