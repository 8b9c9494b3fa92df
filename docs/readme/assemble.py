"""Build README.md from the parts in docs/readme/ (edit the parts, then run `python docs/readme/assemble.py`).

The README is long; keeping each section in its own file keeps them reviewable, and the table of contents is
generated from the parts' `## ` headings so that it never drifts from them. A test checks README.md is current.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ["00-intro", "proxy", "run", "reports", "recording", "realparts", "bench", "translate", "robustness"]
PARTS.append("99-development")


def _anchor(title: str) -> str:
    return re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")


def build() -> str:
    """The README text: the intro, a table of contents of the other parts' `## ` headings, then those parts."""
    parts = [(ROOT / "docs" / "readme" / f"{name}.md").read_text().strip() + "\n" for name in PARTS]
    toc = [
        f"- [{line[3:].strip().replace('`', '')}](#{_anchor(line[3:].strip())})"
        for part in parts[1:]
        for line in part.splitlines()
        if line.startswith("## ")
    ]
    return parts[0] + "\n## Contents\n\n" + "\n".join(toc) + "\n\n" + "\n".join(parts[1:])


if __name__ == "__main__":
    (ROOT / "README.md").write_text(build())
