"""The compute-to-data versions of the China and EU packs, backtested: every worked case about a
download decides exactly as it did under the version each replaces (only `delivery: compute` is
new), and buying the same data as compute never holds up what a download would not."""

import copy

import pytest

from compliance.engine import Outcome, evaluate, parse_facts
from tests.engine.cases import TODAY, load_cases, packs_for

VERSIONS = {"cn": ("cn@2024.03.22", "cn@2026.11.27"), "eu": ("eu@2026.01.26", "eu@2026.11.27")}
DOWNLOAD_CASES = [c for c in load_cases() if c.file in VERSIONS and c.body.get("delivery", "download") == "download"]


def _decide(case, packs, which: str, *, delivery: str | None = None):
    version = VERSIONS[case.file][0 if which == "old" else 1]
    regime = case.file.upper()
    body = copy.deepcopy(case.body)
    body["trade_date"] = "2026-11-30"  # the same day for both versions: only the pack differs
    if delivery:
        body["delivery"] = delivery
    if case.parameters and any(ref.startswith(f"{case.file}@") for ref in case.parameters):
        pytest.skip("the case fills in parameters of one version only")
    chosen = [p for p in packs_for(case, packs) if p.regime != regime or p.ref == version]
    return evaluate(parse_facts(body, today=TODAY), [p if p.regime != regime else _at_today(p) for p in chosen])


def _at_today(pack):
    from dataclasses import replace
    from datetime import date

    return replace(pack, effective_from=min(pack.effective_from, date(2026, 11, 30)), effective_to=None)


@pytest.mark.parametrize("case", DOWNLOAD_CASES, ids=lambda c: c.name)
def test_downloads_decide_as_before(case, shipped_packs):
    old, new = _decide(case, shipped_packs, "old"), _decide(case, shipped_packs, "new")

    assert (new.outcome, new.requirements) == (old.outcome, old.requirements)
    assert [f.rule for f in new.findings] == [f.rule for f in old.findings]


@pytest.mark.parametrize("case", DOWNLOAD_CASES, ids=lambda c: c.name)
def test_compute_never_holds_up_what_a_download_would_not(case, shipped_packs):
    """Compute settles wherever the download would; it is at most flagged (the anonymisation reading
    is sampled by officers), and where a download needs more, compute needs at most that."""
    download, compute = _decide(case, shipped_packs, "new"), _decide(case, shipped_packs, "new", delivery="compute")

    assert compute.outcome.rank <= max(download.outcome.rank, Outcome.ALLOW_FLAGGED.rank)
    assert "CN-DUTY-1" not in [f.rule for f in compute.findings]  # no export duties: nothing personal is exported
