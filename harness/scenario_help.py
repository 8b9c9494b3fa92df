"""What `ccbench run` says when a scenario selection gives nothing: the folder holds no scenario files, an id
is unknown (which ids there are), and `ccbench run --list`, which shows them all."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.scenarios import Scenario


SCENARIO_FILE_SHAPE = (
    "ccbench reads the *.yaml files there, each a list of scenarios with an id, a suite and one of cassette, "
    "captured, request or turns (as in ccbench's scenarios/smoke.yaml)"
)


def no_scenario_files(folder: Path) -> str:
    """Why a folder gives no scenarios: nothing there, or files under another name (.yml is not read)."""
    other = sorted(p.name for p in folder.glob("*.yml"))
    unread = f"; not read: {', '.join(other[:3])}{' …' * (len(other) > 3)}: name them *.yaml" if other else ""
    return f"no scenario files in {folder}{unread}: {SCENARIO_FILE_SHAPE}"


def known_ids_text(wanted: str, known: list[str], shown: int = 8) -> str:
    """The ids a user could have meant: the close ones first, then the first few, with the count."""
    if not known:
        return "the scenario files hold no scenarios"
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    first = ", ".join(known[:shown]) + (", …" if len(known) > shown else "")
    meant = f"did you mean {' or '.join(close)}? " if close else ""
    return f"{meant}{len(known)} known: {first} (ccbench run --list shows them all)"


def listing_lines(scenarios: Iterable[Scenario]) -> list[str]:
    """`ccbench run --list`: one line per scenario, `suite  id  description`, in file order."""
    items = list(scenarios)
    suite_width = max((len(s.suite) for s in items), default=0)
    id_width = max((len(s.id) for s in items), default=0)
    return [f"{s.suite:<{suite_width}}  {s.id:<{id_width}}  {s.description}".rstrip() for s in items]
