"""The compliance engine: pure Python (no Django), evaluating rule packs that are data."""

from compliance.engine.conditions import RulePackError
from compliance.engine.evaluator import Decision, Finding, evaluate
from compliance.engine.facts import FactsError, TransferFacts, parse_facts
from compliance.engine.packs import (
    CompiledPack,
    compile_pack,
    coverage_start,
    pack_problems,
    select_in_force,
    uncovered_regimes,
)
from compliance.engine.vocabulary import Outcome

ENGINE_VERSION = "1"

__all__ = [
    "ENGINE_VERSION",
    "CompiledPack",
    "Decision",
    "FactsError",
    "Finding",
    "Outcome",
    "RulePackError",
    "TransferFacts",
    "compile_pack",
    "coverage_start",
    "evaluate",
    "pack_problems",
    "parse_facts",
    "select_in_force",
    "uncovered_regimes",
]
