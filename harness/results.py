"""The results file of `ccbench run --out` (DESIGN section 5, fixed; INTERFACES lists the additions).

`build_results` assembles it, `write_results` writes it atomically, `load_results` reads one back for
other tools and raises `ResultsFileError` with a clear message when it is not a version-1 results file.
`harness/schemas/results.json` is the JSON Schema of the contract; the tests validate every file against it.
Files of the earlier layout (count_tokens calls inside `turns[]`) are read in the current one
(`harness.results_layout`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from harness.cassette import write_atomic
from harness.report_data import SCHEMA_VERSION, contract_problem, schema_version_problem
from harness.results_layout import upgrade_layout
from harness.validation import schema_problems
from proxy import __version__
from proxy.datafile import load_json_file


class ResultsFileError(Exception):
    """A results file that cannot be read or does not follow the contract."""


def build_results(
    preset: str, base_url: str, model: str, summary: dict, scenarios: list[dict], run: dict | None = None
) -> dict:
    """The whole results document, keys in contract order; `run` holds the conditions (RunOptions.conditions)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ccbench_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "backend": {"preset": preset, "base_url": base_url},
        "model": model,
        **({"run": run} if run is not None else {}),
        "summary": summary,
        "scenarios": scenarios,
    }


def contract_problems(results: object) -> list[str]:
    """Problems against harness/schemas/results.json (empty = a valid version-1 file)."""
    return schema_problems("results", results, "")


def write_results(results: dict, path: Path | str) -> Path:
    """Write atomically (temp file + os.replace) so a reader never sees half a file."""
    target = Path(path)
    write_atomic(target, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return target


def load_results(path: Path | str) -> dict:
    """Read a results file in the current layout (an earlier-layout file is converted before the contract
    check, so callers see one layout); a wrong schema_version or a broken contract is a ResultsFileError."""
    source = Path(path)
    data = upgrade_layout(load_json_file(source, "results file", ResultsFileError))
    if not isinstance(data, dict):
        raise ResultsFileError(f"{source} is not a ccbench results file (not a JSON object)")
    problem = schema_version_problem(data, str(source))
    if problem:
        raise ResultsFileError(problem)
    problem = contract_problem(data, str(source))
    if problem:
        raise ResultsFileError(problem)
    return data
