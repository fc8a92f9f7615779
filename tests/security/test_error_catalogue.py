"""One error catalogue per app: every error class in one of three modules, one class per code, every code documented.

Clients branch on `code`; two classes sharing one would let the same code mean two things (or carry two
HTTP statuses), and a code missing from docs/errors.md is a code clients cannot know about."""

import importlib
import re
from pathlib import Path

import pytest

from config.api import _DRF_CODES
from config.errors import ApplicationError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("marketplace", "compliance", "config")
CATALOGUES = {"config.errors", "marketplace.errors", "compliance.errors"}
DOCS = ROOT / "docs" / "errors.md"
# Codes the renderer and the URL handlers emit without an ApplicationError (config/api.py, config/urls.py).
FRAMEWORK_CODES = {*_DRF_CODES.values(), "temporarily_unavailable", "server_error"}
ROW = re.compile(r"^\|\s*`(?P<code>[a-z_]+)`\s*\|\s*(?P<status>\d{3})\s*\|", re.M)


def _import_everything() -> None:
    """Import every module of the apps, so that every subclass defined anywhere is registered."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or parts[-1] in {"wsgi", "asgi"}:
                continue
            importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))


def _error_classes() -> list[type[ApplicationError]]:
    _import_everything()
    found: list[type[ApplicationError]] = []
    todo = [ApplicationError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    # Test modules may subclass for their own purposes; only the apps' classes are the catalogue.
    return [cls for cls in found if cls.__module__.split(".")[0] in PACKAGES]


@pytest.fixture(scope="module")
def classes() -> list[type[ApplicationError]]:
    return _error_classes()


@pytest.fixture(scope="module")
def documented() -> dict[str, int]:
    rows = [(m["code"], int(m["status"])) for m in ROW.finditer(DOCS.read_text(encoding="utf-8"))]
    codes = [code for code, _ in rows]
    assert len(codes) == len(set(codes)), (
        f"listed twice in docs/errors.md: {sorted({c for c in codes if codes.count(c) > 1})}"
    )
    return dict(rows)


def test_the_walk_finds_the_catalogues(classes):
    # Guards the test itself: an import or walk that silently finds nothing would make the rest vacuous.
    modules = {cls.__module__ for cls in classes}
    assert modules >= CATALOGUES and len(classes) > 40


def test_every_error_class_lives_in_a_catalogue(classes):
    strays = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes if cls.__module__ not in CATALOGUES)
    assert strays == [], f"move these to marketplace/errors.py, compliance/errors.py or config/errors.py: {strays}"


def test_each_code_belongs_to_one_class(classes):
    # A subclass that does not set its own `code` shares its parent's on purpose; every class that
    # sets one must set a code no other class sets.
    owners: dict[str, list[str]] = {}
    for cls in classes:
        if "code" in vars(cls):
            owners.setdefault(cls.code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert shared == {}, f"codes defined by more than one class: {shared}"
    assert not (set(owners) & FRAMEWORK_CODES - {"not_found", "permission_denied", "invalid"}), (
        "a class reuses a framework code"
    )


def test_every_code_is_documented_with_its_status(classes, documented):
    missing = sorted({cls.code for cls in classes} - set(documented))
    assert missing == [], f"add to docs/errors.md (code, HTTP status, meaning): {missing}"
    wrong = sorted(
        (cls.code, cls.status_code, documented[cls.code]) for cls in classes if documented[cls.code] != cls.status_code
    )
    assert wrong == [], f"docs/errors.md has another HTTP status for (code, actual, documented): {wrong}"


def test_docs_list_no_code_that_does_not_exist(classes, documented):
    stale = sorted(set(documented) - {cls.code for cls in classes} - FRAMEWORK_CODES)
    assert stale == [], f"docs/errors.md lists codes nothing returns: {stale}"


def test_the_readme_links_the_catalogue():
    assert "docs/errors.md" in (ROOT / "README.md").read_text(encoding="utf-8")
