"""Parse and check a buyer's query before it runs: one aggregate SELECT over one offered table.

The check is an allow-list over sqlglot's syntax tree (DuckDB dialect): any node type not listed is
refused, so a new function or statement is refused until someone decides it is safe. What passes:

- exactly one SELECT; no WITH, subqueries, joins, set operations, windows, samples or table functions;
- FROM one table of the grant's catalogue (by its bare name; no file paths, schemas or catalogues);
- every output column is an allowed aggregate (COUNT, SUM, AVG, STDDEV, VARIANCE) or a GROUP BY
  column that is not an identifier; an identifier may appear only inside COUNT;
- GROUP BY lists columns (not identifiers; no ALL, ROLLUP, CUBE or positions);
- WHERE and HAVING never read an identifier; scalar functions come from a short list.

The engine then adds its own per-group count of contributing people (`runnable_sql`), so k is
never taken from the buyer's query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

ROLES = ("identifier", "quasi_identifier", "sensitive", "plain")
MAX_SQL_CHARS = 10_000
UNITS = "__elementa_units"  # hidden column: contributing people (or rows) per group, counted by the engine

AGGREGATES: dict[type[exp.Expression], str] = {
    exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg", exp.Stddev: "stddev", exp.StddevSamp: "stddev",
    exp.StddevPop: "stddev", exp.Variance: "variance", exp.VariancePop: "variance",
}
SCALARS: tuple[type[exp.Expression], ...] = (
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Lower, exp.Upper, exp.Coalesce, exp.Length, exp.Least,
    exp.Greatest, exp.TryCast, exp.DataType, exp.Case, exp.If,
)
STRUCTURE: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Alias, exp.Where, exp.Group,
    exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Literal, exp.Boolean, exp.Null, exp.Star, exp.Distinct,
    exp.Paren, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg,
)
ALLOWED = (*STRUCTURE, *SCALARS, *AGGREGATES)
# Named so the refusal says what was found, not just "not allowed".
TABLE_FUNCTIONS = (exp.ReadCSV, exp.ReadParquet, exp.Anonymous, exp.TableFromRows)


class QueryRefused(ValueError):
    """The query may not run; `code` is stable for clients, `message` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class OutputColumn:
    """One column of the result: a grouping key or an aggregate (`function`, and its argument column if bare)."""

    kind: str  # "key" | "aggregate"
    function: str = ""
    column: str | None = None  # the bare column an aggregate reads (None: COUNT(*) or an expression)
    distinct: bool = False


@dataclass(frozen=True)
class CheckedQuery:
    sql: str
    table: str
    columns_read: frozenset[str]
    group_keys: tuple[str, ...]
    outputs: tuple[OutputColumn, ...]
    touches_sensitive: bool
    tree: exp.Select = field(repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return sql_hash(self.sql)


def sql_hash(sql: str) -> str:
    return hashlib.sha256(sql.strip().encode()).hexdigest()


def _name(node: exp.Expr) -> str:
    return type(node).__name__


def _statement(sql: str) -> exp.Select:
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("query_empty", "Send the query as a non-empty `sql` string.")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused("query_too_long", f"A query has at most {MAX_SQL_CHARS:,} characters.")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (ParseError, TokenError):
        raise QueryRefused("query_unparseable", "The query is not valid SQL (DuckDB dialect).") from None
    if len(statements) != 1:
        raise QueryRefused(
            "query_not_single_select", f"Send exactly one SELECT statement; this has {len(statements)} statements."
        )
    statement = statements[0]
    if not isinstance(statement, exp.Select):
        kind = statement.name.upper() if isinstance(statement, exp.Command) else _name(statement).upper()
        raise QueryRefused("query_not_single_select", f"Only a SELECT may run, not {kind}.")
    return statement


def _walk_allowed(tree: exp.Select) -> None:
    for node in tree.walk():
        if isinstance(node, TABLE_FUNCTIONS):
            fname = node.name if isinstance(node, exp.Anonymous) else _name(node)
            raise QueryRefused(
                "query_function_not_allowed",
                f"The function {fname}() is not allowed: queries read only the offered tables.",
            )
        if (isinstance(node, exp.Select) and node is not tree) or isinstance(node, exp.Subquery):
            raise QueryRefused(
                "query_construct_not_allowed", "Subqueries are not allowed: query the offered table directly."
            )
        if isinstance(node, exp.With) or isinstance(node, exp.CTE):
            raise QueryRefused("query_construct_not_allowed", "WITH (common table expressions) is not allowed.")
        if isinstance(node, exp.Join):
            raise QueryRefused("query_construct_not_allowed", "Joins are not allowed: a query reads one offered table.")
        if isinstance(node, exp.Window):
            raise QueryRefused(
                "query_construct_not_allowed", "Window functions are not allowed: they return per-row values."
            )
        if isinstance(node, exp.AggFunc) and not isinstance(node, tuple(AGGREGATES)):
            raise QueryRefused(
                "query_aggregate_not_allowed",
                f"{_name(node).upper()} is not allowed: it can return one person's value. Use COUNT, SUM, AVG, STDDEV "
                "or VARIANCE.",
            )
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            raise QueryRefused(
                "query_function_not_allowed", "CAST is not allowed (its errors echo cell values); use TRY_CAST."
            )
        if not isinstance(node, ALLOWED):
            raise QueryRefused("query_construct_not_allowed", f"{_name(node)} is not allowed in a compute query.")


def _aggregates_in(node: exp.Expr) -> list[exp.Expr]:
    return [n for n in node.walk() if isinstance(n, tuple(AGGREGATES))]


def check_query(sql: str, tables: dict[str, dict[str, str]]) -> CheckedQuery:
    """Check `sql` against the catalogue `tables` ({table: {column: role}}); raise QueryRefused."""
    tree = _statement(sql)
    _walk_allowed(tree)
    for key in ("joins", "laterals", "pivots", "windows", "qualify", "sample", "connect", "prewhere", "into", "kind"):
        if tree.args.get(key):
            raise QueryRefused("query_construct_not_allowed", f"{key.upper()} is not allowed in a compute query.")
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        raise QueryRefused("query_no_table", f"Query one of the offered tables: {', '.join(sorted(tables))}.")
    table = source.this
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        raise QueryRefused(
            "query_unknown_table", "Name an offered table by its bare name (no schema, catalogue or file path)."
        )
    table_name = table.this.name
    if table_name not in tables:
        raise QueryRefused("query_unknown_table", f"No table {table_name!r}; offered: {', '.join(sorted(tables))}.")
    roles = tables[table_name]
    qualifiers = {table_name, table.alias_or_name}

    columns_read: set[str] = set()
    for column in tree.find_all(exp.Column):
        if column.table and column.table not in qualifiers:
            raise QueryRefused("query_unknown_table", f"Unknown table qualifier {column.table!r}.")
        if column.name not in roles:
            raise QueryRefused(
                "query_unknown_column", f"No column {column.name!r} in {table_name}; offered: {', '.join(roles)}."
            )
        columns_read.add(column.name)
        if roles[column.name] == "identifier":
            inside_count = isinstance(column.parent, exp.Count) or (
                isinstance(column.parent, exp.Distinct) and isinstance(column.parent.parent, exp.Count))
            if not inside_count:
                raise QueryRefused(
                    "query_identifier_exposed",
                    f"{column.name} identifies people: it may only be counted (COUNT(DISTINCT {column.name})), "
                    "never selected, grouped by, filtered on or computed with.")

    group = tree.args.get("group")
    keys: list[str] = []
    if group is not None:
        if (
            group.args.get("all")
            or group.args.get("rollup")
            or group.args.get("cube")
            or group.args.get("grouping_sets")
        ):
            raise QueryRefused(
                "query_construct_not_allowed",
                "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS are not allowed; list the columns.",
            )
        for expression in group.expressions:
            if not isinstance(expression, exp.Column):
                raise QueryRefused(
                    "query_group_by_not_column", "GROUP BY lists columns by name (no positions or expressions)."
                )
            keys.append(expression.name)
    for clause in ("where",):
        node = tree.args.get(clause)
        if node is not None and _aggregates_in(node):
            raise QueryRefused("query_construct_not_allowed", "Aggregates belong in SELECT or HAVING, not WHERE.")

    outputs: list[OutputColumn] = []
    for projection in tree.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Star):
            raise QueryRefused(
                "query_select_star", "SELECT * returns rows, not aggregates: select aggregates and grouping columns."
            )
        if isinstance(inner, exp.Column):
            if inner.name not in keys:
                raise QueryRefused(
                    "query_not_aggregate",
                    f"{inner.name} is neither aggregated nor in GROUP BY: every output column must be one or the "
                    "other.",
                )
            outputs.append(OutputColumn(kind="key", column=inner.name))
            continue
        if isinstance(inner, tuple(AGGREGATES)):
            if len(_aggregates_in(inner)) > 1:
                raise QueryRefused("query_construct_not_allowed", "Aggregates cannot be nested.")
            argument = inner.this
            distinct = isinstance(argument, exp.Distinct)
            if distinct:
                argument = argument.expressions[0] if argument.expressions else None
            bare = argument.name if isinstance(argument, exp.Column) else None
            outputs.append(
                OutputColumn(kind="aggregate", function=AGGREGATES[type(inner)], column=bare, distinct=distinct)
            )
            continue
        if isinstance(inner, exp.Literal):
            raise QueryRefused("query_not_aggregate", "Constant output columns are not allowed.")
        raise QueryRefused(
            "query_not_aggregate",
            "Each output column is one aggregate (COUNT, SUM, AVG, STDDEV, VARIANCE) or a GROUP BY column; "
            "compute with the results on your side.",
        )
    if not any(o.kind == "aggregate" for o in outputs):
        raise QueryRefused("query_not_aggregate", "Select at least one aggregate: rows themselves never leave.")
    touches_sensitive = any(roles[c] == "sensitive" for c in columns_read)
    return CheckedQuery(sql=sql.strip(), table=table_name, columns_read=frozenset(columns_read), group_keys=tuple(keys),
                        outputs=tuple(outputs), touches_sensitive=touches_sensitive, tree=tree)


def runnable_sql(
    checked: CheckedQuery,
    *,
    unit_column: str | None,
    fetch_limit: int,
    clamp: dict[str, tuple[float, float]] | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> str:
    """The SQL the engine runs: the buyer's query plus a hidden per-group count of contributing people
    (COUNT(DISTINCT identifier), or COUNT(*) when the table declares none), with LIMIT at most
    `fetch_limit`. With `clamp`, each bare-column SUM/AVG argument is clamped to its bounds first
    (differential privacy needs bounded contributions). `extra` adds hidden (alias, SQL) columns
    written by the engine itself, never by the buyer."""
    tree = checked.tree.copy()
    for position, projection in enumerate(list(tree.expressions)):
        if not isinstance(projection, exp.Alias) and not isinstance(projection, exp.Column):
            # name it as the buyer wrote it, before clamping rewrites the expression
            tree.expressions[position] = exp.alias_(projection, projection.sql(dialect="duckdb").lower(), quoted=True)
    for alias, expression in extra or []:
        tree = tree.select(exp.alias_(sqlglot.parse_one(expression, read="duckdb"), alias, quoted=True), copy=False)
    if clamp:
        for node in list(tree.find_all(exp.Sum, exp.Avg)):
            argument = node.this
            if isinstance(argument, exp.Column) and argument.name in clamp:
                low, high = clamp[argument.name]
                clamped = exp.func(
                    "least", exp.func("greatest", argument.copy(), exp.Literal.number(low)), exp.Literal.number(high)
                )
                argument.replace(clamped)
    units = (exp.Count(this=exp.Distinct(expressions=[exp.column(unit_column, quoted=True)])) if unit_column
             else exp.Count(this=exp.Star()))
    tree = tree.select(exp.alias_(units, UNITS, quoted=True), copy=False)
    limit = tree.args.get("limit")
    current = None
    if limit is not None:
        try:
            current = int(limit.expression.name)
        except (AttributeError, TypeError, ValueError):
            current = None
    if current is None or current > fetch_limit:
        tree = tree.limit(fetch_limit, copy=False)
    return tree.sql(dialect="duckdb")
