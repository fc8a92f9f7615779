"""Measures the compliance engine: decisions/s and latency for every rule pack on realistic facts, in-process and
through the API.

Three parts:

1. In-process (no Django): every pack in compliance/rulepacks/*.yaml, the worked cases of
   compliance/rulepacks/cases/*.yaml (those given as a complete request body; named `<regime>: <case>`)
   and variants with long `prior_exports` ledgers.
   Per example and for the interleaved mix: median/p95/p99 µs of `evaluate` alone and of
   `parse_facts` + `evaluate`, decisions/s single-threaded, and a PASS/FAIL line for the target
   (median full evaluation under 1 ms).
2. Growth with the number of rules: synthetic packs of N = 10, 100, 1,000, 5,000 rules, none of
   which match (worst case: every rule is evaluated); µs per evaluation, µs per rule, compile time.
3. Through the API (loopback only): log in, POST the example bodies to /api/v1/compliance/evaluate/
   from a thread pool; requests/s, p50/p95/p99 ms, errors. Skipped, with a line saying so, when the
   server is unreachable.

Usage (from the repository root):
    .venv/bin/python bench/engine.py                 # in-process parts + API at http://127.0.0.1:8000
    .venv/bin/python bench/engine.py --quick --no-api
    .venv/bin/python bench/engine.py --url http://127.0.0.1:8141 --concurrency 8 --requests 2000 --json

A server to test against, with its own folder and queue:
    export ELEMENTA_VAR_DIR=/tmp/enginebench ELEMENTA_CELERY_QUEUE=enginebench
    .venv/bin/python manage.py migrate -v0 && .venv/bin/python manage.py seed_demo
    .venv/bin/gunicorn config.wsgi -b 127.0.0.1:8141 -w 2 &
    .venv/bin/python bench/engine.py --url http://127.0.0.1:8141

Options: --iterations N (2000 per example), --budget S (2.0 s cap per measured case), --quick,
--url, --no-api, --concurrency C (8), --requests R (2000), --json.
Exit status: 0 when the measurements ran (API skipped or not), 1 when the API refused the login,
2 on bad arguments or when no pack or example could be loaded.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402
from common import quantile  # noqa: E402

from compliance.engine import (  # noqa: E402
    CompiledPack,
    Decision,
    FactsError,
    RulePackError,
    TransferFacts,
    compile_pack,
    evaluate,
    parse_facts,
)

PACK_DIR = REPO_ROOT / "compliance" / "rulepacks"
CASE_DIR = PACK_DIR / "cases"
TARGET_US = 1000.0  # the issue's target: a full evaluation under 1 ms median, in-process
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOGIN = {"username": "buyer-eu", "password": "elementa-demo"}
EVALUATE_PATH = "/api/v1/compliance/evaluate/"
TOKEN_PATH = "/api/v1/auth/token/"
HTTP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 3.0

PRIOR_SIZES = (200, 2_000)
# China (calendar-year tallies) and US (12-month same-buyer tally)
PRIOR_BASES = (
    "cn: this year's tally stays one below 100,000",
    "us: health data on 10,001 US persons to a China-headquartered company",
)
GROWTH_SIZES = (10, 100, 1_000, 5_000)
GROWTH_FACTS = "eu: German customer data to an uncertified US buyer, nothing on file"
MIN_SAMPLES = 30  # a time budget never cuts a case below this many timed calls
MAX_WARMUP = 200



# --- statistics ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stats:
    """Latency figures in microseconds, from per-call samples in nanoseconds."""

    n: int
    median_us: float
    p95_us: float
    p99_us: float
    mean_us: float
    max_us: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Stats:
        us = [s / 1000.0 for s in samples_ns]
        return cls(len(us), quantile(us, 50), quantile(us, 95), quantile(us, 99), sum(us) / len(us), max(us))

    @property
    def per_second(self) -> float:
        return 1e6 / self.mean_us if self.mean_us > 0 else 0.0


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


# --- timing --------------------------------------------------------------------------------------

def warm_up(fn: Callable[[], object], calls: int, budget_s: float) -> None:
    deadline = time.perf_counter() + budget_s
    for _ in range(calls):
        fn()
        if time.perf_counter() > deadline:
            return


def sample(fn: Callable[[], object], iterations: int, budget_s: float) -> list[int]:
    """Time up to `iterations` calls of fn (ns each), stopping early once the budget is spent
    (never below MIN_SAMPLES calls). Warms up first with a tenth of the calls."""
    warm_up(fn, min(MAX_WARMUP, max(1, iterations // 10)), budget_s / 10)
    gc.collect()
    clock = time.perf_counter_ns
    deadline = clock() + int(budget_s * 1e9)
    out: list[int] = []
    for i in range(iterations):
        start = clock()
        fn()
        out.append(clock() - start)
        if start > deadline and i + 1 >= MIN_SAMPLES:
            break
    return out


# --- inputs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    name: str
    raw: dict[str, Any]


def load_packs(warnings: list[str]) -> list[CompiledPack]:
    """Every pack file; one that does not load (e.g. mid-edit) is skipped with a warning."""
    packs: list[CompiledPack] = []
    for path in sorted(PACK_DIR.glob("*.yaml")):
        try:
            packs.append(compile_pack(yaml.safe_load(path.read_text(encoding="utf-8"))))
        except (OSError, yaml.YAMLError, RulePackError) as exc:
            warnings.append(f"pack {path.name} skipped: {exc}")
    return packs


def load_examples(warnings: list[str], directory: Path = CASE_DIR) -> list[Example]:
    """The worked cases of each case file: those given as a complete request body (`body`), on their trade date."""
    examples: list[Example] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            cases = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            warnings.append(f"case file {path.name} skipped: {exc}")
            continue
        for case in cases:
            if "body" in case and not case.get("parameters"):
                examples.append(
                    Example(f"{path.stem}: {case['name']}", {**case["body"], "trade_date": str(case["trade_date"])})
                )
    return examples


def long_ledger(base: Example, size: int) -> Example:
    """The base example with `size` earlier exports spread over the 400 days before the trade (some
    outside the China and US windows), mixed classifications, some to the same buyer."""
    raw = json.loads(json.dumps(base.raw))
    trade_day = date.fromisoformat(raw.get("trade_date") or date.today().isoformat())
    categories = raw.get("data", {}).get("categories") or ["contact"]
    classes = ("personal", "sensitive_personal", "non_personal", "personal")
    raw["prior_exports"] = [
        {
            "date": (trade_day - timedelta(days=1 + i % 400)).isoformat(),
            "classification": classes[i % len(classes)],
            "categories": categories[: 1 + i % len(categories)],
            "subjects": 1 + i % 5,
            "same_buyer": i % 3 == 0,
        }
        for i in range(size)
    ]
    return Example(f"{base.name}+prior{size}", raw)


def long_variants(examples: Sequence[Example]) -> list[Example]:
    by_name = {e.name: e for e in examples}
    bases = [by_name[n] for n in PRIOR_BASES if n in by_name] or list(examples[:1])
    return [long_ledger(base, size) for base in bases for size in PRIOR_SIZES]


def parse_all(examples: Sequence[Example], today: date, warnings: list[str]) -> list[tuple[Example, TransferFacts]]:
    parsed: list[tuple[Example, TransferFacts]] = []
    for example in examples:
        try:
            parsed.append((example, parse_facts(example.raw, today=today)))
        except FactsError as exc:
            warnings.append(f"example {example.name} skipped: invalid facts: {exc}")
    return parsed


# --- part 1: in-process --------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseResult:
    name: str
    outcome: str
    findings: int
    prior_exports: int
    evaluate: Stats
    parse_evaluate: Stats


@dataclass(frozen=True)
class MixResult:
    examples: int
    evaluate: Stats
    parse_evaluate: Stats
    decisions_per_s: float  # evaluate only, wall clock over the interleaved loop
    parse_decisions_per_s: float


def measure_case(
    example: Example, facts: TransferFacts, packs: Sequence[CompiledPack], today: date, iterations: int, budget_s: float
) -> CaseResult:
    decision: Decision = evaluate(facts, packs)
    raw = example.raw
    eval_ns = sample(lambda: evaluate(facts, packs), iterations, budget_s)
    full_ns = sample(lambda: evaluate(parse_facts(raw, today=today), packs), iterations, budget_s)
    return CaseResult(
        example.name,
        str(decision.outcome),
        len(decision.findings),
        len(facts.prior_exports),
        Stats.of(eval_ns),
        Stats.of(full_ns),
    )


def interleaved(calls: Sequence[Callable[[], object]], rounds: int, budget_s: float) -> tuple[list[int], float]:
    """One call of each per round, every call timed; returns the samples and the loop's wall time (s)."""
    for call in calls:
        warm_up(call, 20, budget_s / 20)
    gc.collect()
    clock = time.perf_counter_ns
    began = clock()
    deadline = began + int(budget_s * 1e9)
    out: list[int] = []
    for r in range(rounds):
        for call in calls:
            start = clock()
            call()
            out.append(clock() - start)
        if clock() > deadline and (r + 1) * len(calls) >= MIN_SAMPLES:
            break
    return out, (clock() - began) / 1e9


def measure_mix(
    parsed: Sequence[tuple[Example, TransferFacts]],
    packs: Sequence[CompiledPack],
    today: date,
    rounds: int,
    budget_s: float,
) -> MixResult:
    eval_calls = [(lambda f=facts: evaluate(f, packs)) for _, facts in parsed]
    full_calls = [(lambda raw=ex.raw: evaluate(parse_facts(raw, today=today), packs)) for ex, _ in parsed]
    eval_ns, eval_wall = interleaved(eval_calls, rounds, budget_s)
    full_ns, full_wall = interleaved(full_calls, rounds, budget_s)
    return MixResult(
        len(parsed), Stats.of(eval_ns), Stats.of(full_ns), len(eval_ns) / eval_wall, len(full_ns) / full_wall
    )


# --- part 2: growth with the number of rules -----------------------------------------------------

_SYNTHETIC_WHEN: tuple[dict[str, Any], ...] = (
    {"in": ["buyer.country", "$never"]},
    {"all": [{"gte": ["data.subjects", 0]}, {"in": ["buyer.jurisdiction", "$never"]}]},
    {"any": [{"any_in": ["data.subject_countries", "$never"]}, {"gte": ["data.subjects", "$huge"]}]},
    {
        "all": [
            {"any": [{"in": ["exporter.country", "$never"]}, {"gte": ["data.subjects", 0]}]},
            {"any_in": ["buyer.linked_jurisdictions", "$never"]},
        ]
    },
    {"gte": ["data.subjects", "$huge"]},
)


def synthetic_pack(rules: int) -> dict[str, Any]:
    """A valid regime pack of `rules` rules that never match (AQ is never a party; nobody trades 10^12
    people) and a default, so evaluation walks every rule."""
    return {
        "regime": "BENCH",
        "version": f"{rules}.0",
        "title": f"Synthetic pack with {rules:,} non-matching rules",
        "kind": "regime",
        "effective_from": date(2000, 1, 1),
        "parameters": {"never": ["AQ"], "huge": 10**12},
        "engaged_when": True,
        "rules": [
            {
                "id": f"BENCH-{i:05d}",
                "outcome": "review",
                "when": _SYNTHETIC_WHEN[i % len(_SYNTHETIC_WHEN)],
                "citation": "synthetic",
                "explanation": "synthetic rule for {buyer.jurisdiction} ({data.subjects} people)",
            }
            for i in range(rules)
        ],
        "default": {
            "id": "BENCH-DEFAULT",
            "outcome": "allow",
            "citation": "synthetic",
            "explanation": "no synthetic rule matched",
        },
    }


@dataclass(frozen=True)
class GrowthPoint:
    rules: int
    compile_ms: float
    evaluate: Stats
    us_per_rule: float
    only_default: bool  # sanity: no synthetic rule matched


@dataclass(frozen=True)
class GrowthResult:
    facts: str
    points: list[GrowthPoint]
    slope_us_per_rule: float  # least squares over the medians


def time_compile(raw: dict[str, Any], repeats: int) -> tuple[CompiledPack, float]:
    best = math.inf
    pack: CompiledPack | None = None
    for _ in range(max(1, repeats)):
        start = time.perf_counter_ns()
        pack = compile_pack(raw)
        best = min(best, (time.perf_counter_ns() - start) / 1e6)
    assert pack is not None
    return pack, best


def measure_growth(
    example: Example, facts: TransferFacts, iterations: int, budget_s: float, compile_repeats: int
) -> GrowthResult:
    points: list[GrowthPoint] = []
    for size in GROWTH_SIZES:
        pack, compile_ms = time_compile(synthetic_pack(size), compile_repeats)
        decision = evaluate(facts, [pack])
        only_default = [f.rule for f in decision.findings] == ["BENCH-DEFAULT"]
        stats = Stats.of(sample(functools.partial(evaluate, facts, [pack]), iterations, budget_s))
        points.append(GrowthPoint(size, compile_ms, stats, stats.median_us / size, only_default))
    return GrowthResult(example.name, points, slope([(p.rules, p.evaluate.median_us) for p in points]))


def measure_pack_compile(repeats: int) -> dict[str, float]:
    """ms to load (YAML) and compile each shipped pack file; best of `repeats`."""
    out: dict[str, float] = {}
    for path in sorted(PACK_DIR.glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
            best = math.inf
            for _ in range(max(1, repeats)):
                start = time.perf_counter_ns()
                compile_pack(yaml.safe_load(text))
                best = min(best, (time.perf_counter_ns() - start) / 1e6)
            out[path.name] = best
        except (OSError, yaml.YAMLError, RulePackError):
            continue
    return out


# --- part 3: through the API ---------------------------------------------------------------------

@dataclass(frozen=True)
class ApiResult:
    url: str
    requests: int
    concurrency: int
    wall_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int]
    outcome_mismatches: int  # 200 answers whose outcome differs from the in-process decision


class ApiSkipped(Exception):
    """The server could not be reached: the API part is skipped, not failed."""


class ApiFailed(Exception):
    """The server answered but the benchmark cannot proceed (e.g. the login was refused)."""


def check_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"--url must be http(s) on 127.0.0.1 or localhost, not {url!r}")
    return url.rstrip("/")


def new_session(token: str | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: loopback traffic only
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def json_field(response: requests.Response, name: str) -> str | None:
    """A top-level string field of a JSON object answer, or None (not JSON, not an object, absent)."""
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def login(base: str) -> str:
    try:
        response = new_session().post(
            base + TOKEN_PATH, json=LOGIN, timeout=(CONNECT_TIMEOUT, HTTP_TIMEOUT), allow_redirects=False
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ApiSkipped(f"{base} is unreachable ({type(exc).__name__})") from exc
    token = json_field(response, "token") if response.status_code == 200 else None
    if not token:
        raise ApiFailed(f"login as {LOGIN['username']} refused: HTTP {response.status_code} {response.text[:200]}")
    return str(token)


def post_one(local: threading.local, base: str, token: str, body: dict[str, Any]) -> tuple[int, str, str | None]:
    """One evaluation: (ns, status label, outcome of a 200 answer)."""
    session = getattr(local, "session", None)
    if session is None:
        session = local.session = new_session(token)
    start = time.perf_counter_ns()
    try:
        response = session.post(
            base + EVALUATE_PATH, json=body, timeout=(CONNECT_TIMEOUT, HTTP_TIMEOUT), allow_redirects=False
        )
    except requests.RequestException as exc:
        return time.perf_counter_ns() - start, type(exc).__name__, None
    elapsed = time.perf_counter_ns() - start
    outcome = json_field(response, "outcome") if response.status_code == 200 else None
    return elapsed, str(response.status_code), outcome


def measure_api(
    base: str, examples: Sequence[Example], expected: dict[str, str], total: int, concurrency: int
) -> ApiResult:
    token = login(base)
    local = threading.local()
    jobs = [examples[i % len(examples)] for i in range(total)]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(
            pool.map(lambda e: post_one(local, base, token, e.raw), jobs[: min(len(jobs), concurrency * 2)])
        )  # warm-up
        began = time.perf_counter()
        results = list(pool.map(lambda e: post_one(local, base, token, e.raw), jobs))
        wall = time.perf_counter() - began
    latencies_ms = [ns / 1e6 for ns, _, _ in results]
    statuses = Counter(status for _, status, _ in results)
    mismatches = sum(
        1
        for job, (_, status, outcome) in zip(jobs, results, strict=True)
        if status == "200" and outcome != expected.get(job.name)
    )
    return ApiResult(
        url=base,
        requests=total,
        concurrency=concurrency,
        wall_s=wall,
        requests_per_s=total / wall if wall > 0 else 0.0,
        p50_ms=quantile(latencies_ms, 50),
        p95_ms=quantile(latencies_ms, 95),
        p99_ms=quantile(latencies_ms, 99),
        errors=sum(n for status, n in statuses.items() if status != "200"),
        statuses=dict(statuses),
        outcome_mismatches=mismatches,
    )


# --- report --------------------------------------------------------------------------------------

def verdict(mix: MixResult, cases: Sequence[CaseResult]) -> dict[str, Any]:
    slowest = max(cases, key=lambda c: c.evaluate.median_us)
    return {
        "target_us": TARGET_US,
        "mix_evaluate_median_us": mix.evaluate.median_us,
        "pass": mix.evaluate.median_us < TARGET_US,
        "mix_parse_evaluate_median_us": mix.parse_evaluate.median_us,
        "slowest_case": slowest.name,
        "slowest_case_evaluate_median_us": slowest.evaluate.median_us,
        "every_case_under_target": all(c.evaluate.median_us < TARGET_US for c in cases),
    }


def render_case(c: CaseResult) -> str:
    e, f = c.evaluate, c.parse_evaluate
    return (
        f"  {c.name:<17} {c.outcome:<16} {c.findings:>2} {c.prior_exports:>5} {e.n:>5}  {e.median_us:>8.1f} "
        f"{e.p95_us:>8.1f} {e.p99_us:>8.1f}"
        f"  {f.median_us:>8.1f} {f.p95_us:>8.1f} {f.p99_us:>8.1f}  {e.per_second:>9,.0f}"
    )


def render_in_process(
    packs: Sequence[CompiledPack], cases: Sequence[CaseResult], long_cases: Sequence[CaseResult], mix: MixResult
) -> list[str]:
    lines = [
        f"Packs ({len(packs)}): " + ", ".join(f"{p.ref} ({len(p.rules)} rules)" for p in packs),
        "",
        "In-process, µs per decision (evaluate | parse+evaluate); decisions/s = 1/mean of evaluate, single thread",
        f"  {'case':<17} {'outcome':<16} {'#f':>2} {'prior':>5} {'n':>5}  {'median':>8} {'p95':>8} {'p99':>8}"
        f"  {'median':>8} {'p95':>8} {'p99':>8}  {'dec/s':>9}",
        *[render_case(c) for c in cases],
    ]
    if long_cases:
        lines += ["  long prior_exports ledgers:", *[render_case(c) for c in long_cases]]
    e, f = mix.evaluate, mix.parse_evaluate
    lines += [
        f"  mix of {mix.examples} examples, interleaved ({e.n} calls): evaluate median {e.median_us:.1f} p95 "
        f"{e.p95_us:.1f} p99 {e.p99_us:.1f} µs,"
        f" {mix.decisions_per_s:,.0f} decisions/s; parse+evaluate median {f.median_us:.1f} p95 {f.p95_us:.1f} p99 "
        f"{f.p99_us:.1f} µs,"
        f" {mix.parse_decisions_per_s:,.0f} decisions/s",
    ]
    return lines


def render_verdict(v: dict[str, Any]) -> list[str]:
    word = "PASS" if v["pass"] else "FAIL"
    every = "every case is" if v["every_case_under_target"] else "NOT every case is"
    return [
        f"{word}: median full evaluation (mix) {v['mix_evaluate_median_us']:.1f} µs vs target < {v['target_us']:.0f} µs"
        f" (parse+evaluate {v['mix_parse_evaluate_median_us']:.1f} µs; slowest case {v['slowest_case']}"
        f" {v['slowest_case_evaluate_median_us']:.1f} µs; {every} under target)",
    ]


def render_growth(g: GrowthResult, compile_ms: dict[str, float]) -> list[str]:
    lines = [f"Growth with the number of rules (synthetic regime pack alone, no rule matches; facts of {g.facts})",
             f"  {'rules':>6} {'compile ms':>11} {'n':>5} {'median µs':>10} {'p95 µs':>9} {'p99 µs':>9} {'µs/rule':>8}"]
    for p in g.points:
        flag = "" if p.only_default else "  (WARNING: a synthetic rule matched)"
        lines.append(
            f"  {p.rules:>6,} {p.compile_ms:>11.2f} {p.evaluate.n:>5} {p.evaluate.median_us:>10.1f} "
            f"{p.evaluate.p95_us:>9.1f}"
            f" {p.evaluate.p99_us:>9.1f} {p.us_per_rule:>8.3f}{flag}"
        )
    lines.append(f"  slope (least squares over medians): {g.slope_us_per_rule:.3f} µs per rule")
    lines.append(
        "  shipped packs, YAML load + compile (best): "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in compile_ms.items())
    )
    return lines


def api_note(skipped: str | None, status: int) -> str:
    return f"API part {'failed' if status else 'skipped'}: {skipped}"


def render_api(api: ApiResult | None, skipped: str | None, status: int) -> list[str]:
    if api is None:
        return [api_note(skipped, status)]
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(api.statuses.items()))
    return [
        f"API {api.url}{EVALUATE_PATH}: {api.requests} requests, concurrency {api.concurrency}, {api.wall_s:.2f} s",
        f"  {api.requests_per_s:,.1f} requests/s; p50 {api.p50_ms:.1f} ms, p95 {api.p95_ms:.1f} ms, p99 "
        f"{api.p99_ms:.1f} ms;"
        f" errors (non-200): {api.errors} [{statuses}]; outcome mismatches vs in-process: {api.outcome_mismatches}",
    ]


# --- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000, help="timed calls per example (default 2000)")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds cap per measured case (default 2.0)")
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 200 iterations, 0.25 s per case, 200 API requests"
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL, loopback only")
    parser.add_argument("--no-api", action="store_true", help="skip the API part")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.budget, args.requests = (
            min(args.iterations, 200),
            min(args.budget, 0.25),
            min(args.requests, 200),
        )
    if args.iterations < 1 or args.budget <= 0 or args.concurrency < 1 or args.requests < 1:
        parser.error("--iterations, --budget, --concurrency and --requests must be positive")
    try:
        args.url = check_loopback(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def run_api(
    args: argparse.Namespace, examples: Sequence[Example], expected: dict[str, str]
) -> tuple[ApiResult | None, str | None, int]:
    """(result, reason it was skipped, exit status)."""
    if args.no_api:
        return None, "--no-api", 0
    try:
        return measure_api(args.url, examples, expected, args.requests, args.concurrency), None, 0
    except ApiSkipped as exc:
        return None, f"{exc}; in-process figures above are complete", 0
    except ApiFailed as exc:
        return None, str(exc), 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings: list[str] = []
    today = date.today()
    packs = load_packs(warnings)
    examples = load_examples(warnings)
    parsed = parse_all(examples, today, warnings)
    long_parsed = parse_all(long_variants([e for e, _ in parsed]), today, warnings) if parsed else []
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not packs or not parsed:
        print("error: no rule pack or no example could be loaded", file=sys.stderr)
        return 2

    cases = [measure_case(e, f, packs, today, args.iterations, args.budget) for e, f in parsed]
    long_cases = [measure_case(e, f, packs, today, args.iterations, args.budget) for e, f in long_parsed]
    mix = measure_mix(parsed, packs, today, args.iterations, args.budget * 4)
    v = verdict(mix, [*cases, *long_cases])
    growth_example, growth_facts = next(((e, f) for e, f in parsed if e.name == GROWTH_FACTS), parsed[0])
    repeats = 2 if args.quick else 5
    growth = measure_growth(growth_example, growth_facts, args.iterations, args.budget, repeats)
    compile_ms = measure_pack_compile(repeats)
    expected = {c.name: c.outcome for c in cases}
    api, skipped, status = run_api(args, [e for e, _ in parsed], expected)

    if args.json:
        if skipped is not None:
            print(api_note(skipped, status), file=sys.stderr)
        print(
            json.dumps(
                {
                    "environment": {
                        "python": platform.python_version(),
                        "machine": platform.machine(),
                        "today": today.isoformat(),
                    },
                    "warnings": warnings,
                    "packs": [{"ref": p.ref, "kind": p.kind, "rules": len(p.rules)} for p in packs],
                    "in_process": {
                        "cases": [asdict(c) for c in cases],
                        "long_prior_exports": [asdict(c) for c in long_cases],
                        "mix": asdict(mix),
                    },
                    "target": v,
                    "growth": {**asdict(growth), "shipped_pack_compile_ms": compile_ms},
                    "api": asdict(api) if api else {"failed" if status else "skipped": skipped},
                },
                indent=2,
            )
        )
    else:
        lines = [*render_in_process(packs, cases, long_cases, mix), *render_verdict(v), "",
                 *render_growth(growth, compile_ms), "", *render_api(api, skipped, status)]
        print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
