"""Bad facts and bad rule packs are refused with the offending field named; nothing is eval'ed."""

import ast
from datetime import date
from pathlib import Path

import pytest

from compliance.engine import FactsError, RulePackError, compile_pack, parse_facts
from tests.engine.conftest import base_facts

ENGINE = Path(__file__).resolve().parents[2] / "compliance" / "engine"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"buyer__jurisdiction": "XX"}, "buyer.jurisdiction"),
    ({"buyer__jurisdiction": "Germany"}, "buyer.jurisdiction"),
    ({"data__classification": "secret"}, "data.classification"),
    ({"data__categories": ["contact", "dna"]}, "data.categories[1]"),
    ({"data__subjects": -1}, "data.subjects"),
    ({"data__subjects": "many"}, "data.subjects"),
    ({"mechanisms": [{"code": "eu_sccs"}]}, "mechanisms[0].code"),
    ({"mechanisms": [{"code": "eu_scc", "valid_until": "next year"}]}, "mechanisms[0].valid_until"),
    ({"purpose": "marketing"}, "purpose"),
    ({"trade_date": "26/11/2026"}, "trade_date"),
    ({"data__colour": "blue"}, "data.colour"),
    ({"surprise": True}, "surprise"),
    ({"buyer__certifications": ["iso27001"]}, "buyer.certifications[0]"),
    ({"data__subject_jurisdictions": ["DE"] * 301}, "data.subject_jurisdictions"),
    ({"mechanisms": [{"code": "eu_scc"}] * 51}, "mechanisms"),
    ({"mechanisms": {"code": "eu_scc"}}, "mechanisms"),
    ({"prior_exports": "none"}, "prior_exports"),
    ({"prior_exports": [{"date": "2026-01-01"}]}, "prior_exports[0].classification"),
])
def test_invalid_facts_name_the_field(overrides, field):
    with pytest.raises(FactsError) as err:
        parse_facts(base_facts(**overrides), today=date(2026, 11, 26))

    assert field in err.value.errors


def test_missing_required_sections_are_named():
    with pytest.raises(FactsError) as err:
        parse_facts({}, today=date(2026, 11, 26))

    assert {"data", "buyer"} <= set(err.value.errors)


def test_defaults_follow_the_contract():
    facts = parse_facts(
        {"data": {"subject_jurisdictions": ["FR"], "classification": "personal"}, "buyer": {"jurisdiction": "US"}},
        today=date(2026, 11, 26),
    )

    assert facts.trade_date == date(2026, 11, 26)
    assert facts.data.storage_jurisdiction == "FR"
    assert facts.exporter.jurisdiction == "FR"
    assert facts.buyer.headquarters == "US"
    assert facts.purpose == "resale"


MINIMAL = {"regime": "T", "version": "1", "title": "t", "effective_from": "2026-01-01", "rules": []}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "allow",
                        "citation": "c",
                        "explanation": "e",
                        "when": {"eq": ["buyer.planet", "Mars"]},
                    }
                ]
            },
            "rules[0].when.eq",
        ),
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "allow",
                        "citation": "c",
                        "explanation": "e",
                        "when": {"in": ["buyer.jurisdiction", "$nowhere"]},
                    }
                ]
            },
            "rules[0].when.in",
        ),
        (
            {
                "rules": [
                    {"id": "R", "outcome": "allow", "citation": "c", "explanation": "e", "when": {"exec": "import os"}}
                ]
            },
            "rules[0].when",
        ),
        (
            {"rules": [{"id": "R", "outcome": "maybe", "citation": "c", "explanation": "e", "when": True}]},
            "rules[0].outcome",
        ),
        (
            {"rules": [{"id": "R", "outcome": "needs_mechanism", "citation": "c", "explanation": "e", "when": True}]},
            "rules[0].requires",
        ),
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "needs_mechanism",
                        "requires": [["wet_signature"]],
                        "citation": "c",
                        "explanation": "e",
                        "when": True,
                    }
                ]
            },
            "rules[0].requires[0]",
        ),
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "allow",
                        "citation": "c",
                        "explanation": "about {buyer.secret}",
                        "when": True,
                    }
                ]
            },
            "rules[0].explanation",
        ),
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "allow",
                        "citation": "c",
                        "explanation": "e",
                        "when": {"gte": ["data.subjects", "lots"]},
                    }
                ]
            },
            "rules[0].when.gte",
        ),
        ({"parameters": {"a": ["$b"], "b": ["$a"]}}, "pack.parameters"),
        (
            {
                "rules": [
                    {
                        "id": "R",
                        "outcome": "needs_mechanism",
                        "requires": "eu_scc",
                        "citation": "c",
                        "explanation": "e",
                        "when": True,
                    }
                ]
            },
            "rules[0].requires",
        ),
        ({"kind": "advisory"}, "pack.kind"),
        ({"effective_from": "soon"}, "pack.effective_from"),
        ({"extra": 1}, "pack"),
    ],
)
def test_invalid_pack_is_refused_at_load_naming_where(change, where):
    with pytest.raises(RulePackError) as err:
        compile_pack({**MINIMAL, **change})

    assert err.value.path.startswith(where)


def test_engine_imports_no_django():
    for path in ENGINE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("django", "marketplace", "rest_framework")), f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"eval", "exec", "compile"}:
                raise AssertionError(f"{path.name} calls {node.func.id}")


def test_the_compiler_names_every_error_in_one_pass():
    """An officer fixing a draft sees the whole list: the compiler does not stop at the first."""
    from compliance.engine import pack_problems

    pack = {
        "regime": "lower-case", "version": "1", "title": "t", "effective_from": "2026-01-01", "kind": "odd",
        "rules": [
            {"id": "A", "title": "a", "when": {"eq": ["data.colour", "x"]}, "outcome": "allow", "citation": "c",
             "explanation": "e"},
            {"id": "B", "title": "b", "when": True, "outcome": "maybe", "citation": "c", "explanation": "e"},
        ],
        "default": {"id": "D", "outcome": "allow", "citation": "c", "explanation": "e", "when": True},
    }

    paths = {e.path for e in pack_problems(pack)}

    assert {"pack.regime", "pack.kind", "rules[0].when.eq", "rules[1].outcome", "default.when"} <= paths
    with pytest.raises(RulePackError):
        compile_pack(pack)
