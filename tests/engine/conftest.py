"""Engine tests need no database: they compile the shipped YAML files directly."""

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance.engine import CompiledPack, compile_pack, parse_facts
from compliance.engine.facts import TransferFacts

PACK_DIR = Path(__file__).resolve().parents[2] / "compliance" / "rulepacks"


@pytest.fixture(scope="session")
def shipped_packs() -> list[CompiledPack]:
    return [compile_pack(yaml.safe_load(p.read_text())) for p in sorted(PACK_DIR.glob("*.yaml"))]


def base_facts(**overrides: Any) -> dict[str, Any]:
    """German personal data to a German buyer: the plainest case; override what a test is about."""
    facts: dict[str, Any] = {
        "trade_date": "2026-11-26",
        "data": {"subject_jurisdictions": ["DE"], "storage_jurisdiction": "DE", "classification": "personal",
                 "categories": ["contact"], "subjects": 50000},
        "exporter": {"jurisdiction": "DE"},
        "buyer": {"jurisdiction": "DE"},
        "purpose": "resale",
        "mechanisms": [],
    }
    for path, value in overrides.items():
        target = facts
        *parents, leaf = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    return facts


@pytest.fixture
def facts() -> Callable[..., TransferFacts]:
    def make(**overrides: Any) -> TransferFacts:
        return parse_facts(base_facts(**overrides), today=date(2026, 11, 26))

    return make
