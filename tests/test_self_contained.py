"""The repository needs nothing beside it: no tracked source, rule pack, doc, Makefile or CI script
points at a file outside the repository (a relative path climbing above its root, an absolute path
into the machine it was written on, or the reading folder that sat beside it). Web addresses are allowed."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".md", ".toml", ".txt", ".cfg", ".ini", ".html", ".sh"}
SKIP_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+)")
OUTSIDE = "sha" + "red"  # the name of the folder of reading notes that sat beside the repository
SIBLING = re.compile(r"(?<![\w.-])" + OUTSIDE + r"/\w")
ABSOLUTE = re.compile(r"(?<![\w.])/" + "work" + r"/")


def tracked_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        paths = [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file outside the usual clutter
        paths = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [
        p
        for p in paths
        if p.is_file()
        and p != Path(__file__).resolve()
        and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile" or p.parent.name == ".ci")
    ]


def outside_references(path: Path) -> list[str]:
    depth = len(path.relative_to(ROOT).parts) - 1  # how many folders the file sits below the root
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        text = URL.sub("", line)
        climbs = [len(m.group(1)) // 3 for m in CLIMB.finditer(text)]
        if any(c > depth for c in climbs) or SIBLING.search(text) or ABSOLUTE.search(text):
            found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_refers_outside_the_repository():
    files = tracked_files()

    assert any(p.name == "cases.py" for p in files) and len(files) > 50
    assert [ref for p in files for ref in outside_references(p)] == []


def test_the_check_catches_what_it_is_for(tmp_path):
    assert URL.sub("", "see https://example.org/../" + OUTSIDE + "/x") == "see "
    assert (
        SIBLING.search(f'EXAMPLES = ROOT / "{OUTSIDE}" / "x"') is None
    )  # a path built from parts is caught by review, not here
    assert SIBLING.search("read ../" + OUTSIDE + "/compliance/examples.md")
    assert ABSOLUTE.search('Path("/' + "work/" + OUTSIDE + '/x")')
    assert [len(m.group(1)) // 3 for m in CLIMB.finditer("[a](../../b.md) and ../c")] == [2, 1]
