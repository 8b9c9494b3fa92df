"""README.md is built from docs/readme/*.md: it must be current, and its set-up commands must be the ones CI runs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _assemble():
    spec = importlib.util.spec_from_file_location("assemble", ROOT / "docs" / "readme" / "assemble.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_assembled_from_the_current_parts() -> None:
    assert (ROOT / "README.md").read_text() == _assemble().build(), "run: python docs/readme/assemble.py"


def test_every_contents_link_points_at_a_heading() -> None:
    text = (ROOT / "README.md").read_text()
    anchors = {_assemble()._anchor(line[3:].strip()) for line in text.splitlines() if line.startswith("## ")}
    links = re.findall(r"^- \[.*\]\(#([^)]+)\)$", text, flags=re.MULTILINE)
    assert links and set(links) <= anchors


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[test]" && pytest -q' in readme
    assert 'pip install -e ".[test]" && pytest -q' in (ROOT / ".ci" / "run").read_text()


def test_links_to_files_point_at_files_of_the_repository() -> None:
    """Links such as `[…](bench/history/README.md)` (docs moved between files must not leave dead links)."""
    for name in ("README.md", "bench/README.md", "bench/history/README.md"):
        path = ROOT / name
        targets = re.findall(r"\]\(((?!https?:|#|mailto:)[^)\s#]+)(?:#[^)]*)?\)", path.read_text())
        missing = [target for target in targets if not (path.parent / target).exists()]
        assert not missing, f"{name}: {missing}"
    assert "bench/history/README.md" in (ROOT / "README.md").read_text()
