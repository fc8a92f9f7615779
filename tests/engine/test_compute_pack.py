"""The China pack's compute-to-data version, backtested: every worked case about a download decides
exactly as it did under the version it replaces (only `delivery: compute` is new), and compute
output is read as anonymised information only where the data is plain personal information."""

import copy

import pytest

from compliance.engine import Outcome, evaluate, parse_facts
from tests.engine.cases import TODAY, load_cases, packs_for

NEW, OLD = "cn@2026.11.27", "cn@2024.03.22"
DOWNLOAD_CASES = [c for c in load_cases() if c.file == "cn" and c.body.get("delivery", "download") == "download"]


def _decide(case, packs, version: str, *, delivery: str | None = None):
    body = copy.deepcopy(case.body)
    body["trade_date"] = "2026-11-30"  # the same day for both versions: only the pack differs
    if delivery:
        body["delivery"] = delivery
    chosen = [p for p in packs_for(case, packs) if p.regime != "CN" or p.ref == version]
    if case.parameters and any(ref.startswith("cn@") for ref in case.parameters):
        pytest.skip("the case fills in parameters of one CN version only")
    return evaluate(parse_facts(body, today=TODAY), [p if p.regime != "CN" else _at_today(p) for p in chosen])


def _at_today(pack):
    from dataclasses import replace
    from datetime import date

    return replace(pack, effective_from=min(pack.effective_from, date(2026, 11, 30)), effective_to=None)


@pytest.mark.parametrize("case", DOWNLOAD_CASES, ids=lambda c: c.name)
def test_downloads_decide_as_before(case, shipped_packs):
    old, new = _decide(case, shipped_packs, OLD), _decide(case, shipped_packs, NEW)

    assert (new.outcome, new.requirements) == (old.outcome, old.requirements)
    assert [f.rule for f in new.findings] == [f.rule for f in old.findings]


@pytest.mark.parametrize("case", DOWNLOAD_CASES, ids=lambda c: c.name)
def test_compute_never_holds_up_what_a_download_would_not(case, shipped_packs):
    """Compute settles wherever the download would; it is at most flagged (the anonymisation reading
    is sampled by officers), and where a download needs more, compute needs at most that."""
    download, compute = _decide(case, shipped_packs, NEW), _decide(case, shipped_packs, NEW, delivery="compute")

    assert compute.outcome.rank <= max(download.outcome.rank, Outcome.ALLOW_FLAGGED.rank)
    cn = [f.rule for f in compute.findings if f.regime == "CN"]
    assert "CN-DUTY-1" not in cn  # no export duties: nothing personal is exported
