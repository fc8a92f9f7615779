"""Attacks on the query interface: each is refused by the query check, and where it would reach the
engine, DuckDB's own guards make it harmless too (the two layers are tested separately)."""

from pathlib import Path

import pytest

from marketplace.compute.demo import COLUMNS, demo_orders_csv, demo_orders_rows
from marketplace.compute.engine import EngineError, Limits, prepare_table, prepared_path, run_query
from marketplace.compute.release import ReleasePolicy, dp_check, dp_helpers, release
from marketplace.compute.sqlcheck import QueryRefused, check_query, runnable_sql

CATALOGUE = {"orders": dict(COLUMNS)}


@pytest.fixture(scope="module")
def orders_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compute")
    csv_path = folder / "orders.csv"
    csv_path.write_bytes(demo_orders_csv())
    return prepare_table(csv_path, prepared_path(folder, file_sha256="demo", table="orders", columns=list(COLUMNS)),
                         table="orders", columns=list(COLUMNS))


def refused(sql: str) -> str:
    with pytest.raises(QueryRefused) as caught:
        check_query(sql, CATALOGUE)
    return caught.value.code


def run(sql: str, database: Path, policy: ReleasePolicy | None = None, limits: Limits | None = None):
    policy = policy or ReleasePolicy(k=10, max_rows=100)
    checked = check_query(sql, CATALOGUE)
    if policy.epsilon:
        dp_check(checked, policy)
    rewritten = runnable_sql(
        checked,
        unit_column="customer_id",
        fetch_limit=1000,
        clamp=policy.bounds if policy.epsilon else None,
        extra=dp_helpers(checked) if policy.epsilon else None,
    )
    return release(run_query(rewritten, database=database, table="orders", limits=limits or Limits()), checked, policy)


# --- refused by the check ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM orders", "query_select_star"),
        ("SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id", "query_identifier_exposed"),
        (
            "SELECT province, COUNT(*) FROM orders WHERE customer_id = 100042 GROUP BY province",
            "query_identifier_exposed",
        ),
        ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "query_function_not_allowed"),
        ("SELECT COUNT(*) FROM '/etc/passwd'", "query_unknown_table"),
        ("COPY orders TO '/tmp/orders.csv'", "query_not_single_select"),
        ("COPY (SELECT * FROM orders) TO '/tmp/orders.csv'", "query_not_single_select"),
        ("ATTACH '/tmp/other.duckdb' AS other", "query_not_single_select"),
        ("INSTALL httpfs", "query_not_single_select"),
        ("LOAD httpfs", "query_not_single_select"),
        ("PRAGMA database_list", "query_not_single_select"),
        ("SET enable_external_access = true", "query_not_single_select"),
        ("SELECT COUNT(*) FROM orders; SELECT COUNT(*) FROM orders", "query_not_single_select"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r",
            "query_construct_not_allowed",
        ),
        ("SELECT COUNT(*) FROM orders a CROSS JOIN orders b CROSS JOIN orders c", "query_construct_not_allowed"),
        ("SELECT COUNT(*) FROM (SELECT * FROM orders WHERE basket_size > 300)", "query_construct_not_allowed"),
        ("SELECT province, MIN(basket_size) FROM orders GROUP BY province", "query_aggregate_not_allowed"),
        ("SELECT province, LIST(basket_size) FROM orders GROUP BY province", "query_aggregate_not_allowed"),
        ("SELECT province, city FROM orders GROUP BY province", "query_not_aggregate"),
        ("SELECT province FROM orders GROUP BY province", "query_not_aggregate"),
        ("SELECT province, COUNT(*) FROM orders GROUP BY ALL", "query_construct_not_allowed"),
        ("SELECT province, SUM(basket_size) OVER () FROM orders", "query_construct_not_allowed"),
        ("SELECT COUNT(*), getenv('HOME') FROM orders", "query_function_not_allowed"),
        ("SELECT SUM(CAST(city AS INTEGER)) FROM orders", "query_function_not_allowed"),
        ("SELECT COUNT(*) FROM glob('/etc/*')", "query_function_not_allowed"),
        ("SELECT COUNT(*) FROM other_table", "query_unknown_table"),
        ("SELECT COUNT(*) FROM main.orders", "query_unknown_table"),
        ("SELEC COUNT(*) FROM orders", "query_unparseable"),
    ],
)
def test_the_check_refuses_with_a_named_reason(sql, reason):
    assert refused(sql) == reason


def test_counting_distinct_identifiers_is_allowed():
    checked = check_query("SELECT province, COUNT(DISTINCT customer_id) FROM orders GROUP BY province", CATALOGUE)
    assert [o.kind for o in checked.outputs] == ["key", "aggregate"]


# --- made harmless by the engine, if anything got past the check --------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY orders TO '/tmp/elementa-leak.csv'",
    "ATTACH '/tmp/elementa-other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET memory_limit = '64GB'",
])
def test_duckdb_guards_stop_what_the_check_would_refuse(orders_db, sql):
    with pytest.raises(EngineError) as caught:
        run_query(sql, database=orders_db, table="orders", limits=Limits())
    assert caught.value.code == "query_failed"
    assert "/etc" not in caught.value.message  # the engine's own text never comes back
    assert not Path("/tmp/elementa-leak.csv").exists()


def test_a_recursive_cte_that_runs_forever_is_stopped_by_the_time_limit(orders_db):
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r"
    with pytest.raises(EngineError) as caught:
        run_query(endless, database=orders_db, table="orders", limits=Limits(timeout_seconds=1))
    assert caught.value.code == "time_limit"


def test_a_cross_join_that_blows_memory_is_stopped_by_the_memory_limit(orders_db):
    greedy = "SELECT COUNT(DISTINCT repeat(a.city, 10000) || b.city) FROM orders a, orders b"
    with pytest.raises(EngineError) as caught:
        run_query(greedy, database=orders_db, table="orders", limits=Limits(memory_mb=64, timeout_seconds=60))
    assert caught.value.code == "memory_limit"


def test_an_error_that_would_echo_a_cell_value_comes_back_as_a_code(orders_db):
    with pytest.raises(EngineError) as caught:
        run_query("SELECT SUM(CAST(city AS INTEGER)) FROM orders", database=orders_db, table="orders", limits=Limits())
    assert (
        caught.value.code == "query_failed"
        and "Guangzhou" not in str(caught.value)
        and "Lhasa" not in str(caught.value)
    )


# --- made harmless by the release policy -------------------------------------------------------

def test_a_group_by_that_makes_every_group_one_person_releases_nothing_of_them(orders_db):
    # basket sizes within a city are nearly unique: most groups hold one or two customers
    released = run(
        "SELECT province, city, basket_size, COUNT(*) AS n FROM orders GROUP BY province, city, basket_size", orders_db
    )

    assert released.groups_suppressed > 0
    assert all(row[3] >= 10 for row in released.rows)  # every released group has at least k people
    assert released.groups_total == released.groups_suppressed + len(released.rows) + released.rows_capped


def test_the_contributor_count_is_the_engines_not_the_querys(orders_db):
    # the query cannot speak for k: arithmetic on aggregates is refused, and the engine counts the
    # distinct customers of each group itself, whatever the query selects
    assert refused("SELECT province, COUNT(*) + 1000 AS n FROM orders GROUP BY province") == "query_not_aggregate"
    tiny = run("SELECT province, SUM(basket_size) FROM orders WHERE province = 'Xizang' GROUP BY province", orders_db)
    assert tiny.rows == [] and tiny.groups_suppressed == 1


def _isolating_pair() -> tuple[str, str, int]:
    """Two queries whose difference is one customer's basket: everyone in Hainan, and everyone in
    Hainan except the one with the largest basket (both groups are far above k)."""
    hainan = sorted(b for p, _, b, _ in demo_orders_rows() if p == "Hainan")
    assert hainan[-1] > hainan[-2]
    threshold = hainan[-2] + 1
    return (
        "SELECT SUM(basket_size) AS total FROM orders WHERE province = 'Hainan'",
        f"SELECT SUM(basket_size) AS total FROM orders WHERE province = 'Hainan' AND basket_size < {threshold}",
        hainan[-1],
    )


def test_differencing_isolates_one_person_without_dp(orders_db):
    everyone, all_but_one, secret = _isolating_pair()

    difference = run(everyone, orders_db).rows[0][0] - run(all_but_one, orders_db).rows[0][0]

    assert difference == secret  # k-suppression alone does not stop this (docs/compute.md says so)


def test_differential_privacy_hides_the_one_person_from_differencing(orders_db):
    everyone, all_but_one, secret = _isolating_pair()
    policy = ReleasePolicy(k=10, max_rows=100, epsilon=1.0, bounds={"basket_size": (0.0, 400.0)})

    errors = [abs(run(everyone, orders_db, policy).rows[0][0] - run(all_but_one, orders_db, policy).rows[0][0] - secret)
              for _ in range(30)]

    # Laplace noise of scale 400 / 0.5 per release: the difference is almost never within 1 of the secret
    assert sum(e < 1 for e in errors) <= 2
    assert sorted(errors)[len(errors) // 2] > 50
    released = run(everyone, orders_db, policy)
    assert released.epsilon_spent == 1.0 and released.mechanism["library"] == "opendp"


def test_dp_refuses_aggregates_it_cannot_calibrate():
    policy = ReleasePolicy(k=10, max_rows=100, epsilon=1.0, bounds={"basket_size": (0.0, 400.0)})
    for sql in ("SELECT STDDEV(basket_size) FROM orders", "SELECT SUM(basket_size * 2) FROM orders"):
        with pytest.raises(QueryRefused) as caught:
            dp_check(check_query(sql, CATALOGUE), policy)
        assert caught.value.code == "query_not_supported_with_dp"


def test_make_run_serves_every_compute_queue():
    """The supervised worker of `make run` listens on the default queue and on each compute queue the settings name."""
    import re

    from django.conf import settings

    from marketplace.services.compute import compute_queues

    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    listed = re.search(r"^CELERY_QUEUES \?= (.+)$", makefile, re.M)
    assert listed is not None and 'CELERY_QUEUES="$(CELERY_QUEUES)"' in makefile
    supervised = (Path(settings.BASE_DIR) / "config" / "supervisord.conf").read_text()
    assert "--queues %(ENV_CELERY_QUEUES)s" in supervised
    assert listed.group(1).split(",")[1:] == compute_queues()
