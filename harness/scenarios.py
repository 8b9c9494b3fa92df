"""Scenario files (`scenarios/*.yaml`): what to replay, which suite it belongs to, and what counts as right.

A scenario is a list of turns; each turn is one Anthropic request, the reference assistant answer (the
recorded or scripted content blocks the reference backend plays) and the expectations it is scored on.
Turns come from one of three sources:
  - `cassette: cassettes/NAME.yaml` – every /v1/messages interaction of a recorded session (by request class),
  - `captured: data/DIR/NAME` – a `NAME.jsonl` of captured requests plus `NAME.turns.json` answers,
  - inline `request:` (+ `reference:`, `expect:`) or `turns: [{request, reference, expect}, ...]`.
A `cassettes: GLOB` entry makes one cassette scenario per matching file, so the corpus can grow alone.
Turns are resolved lazily (`resolve_turns`), so a missing cassette only matters when its scenario is run.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.scenario_help import known_ids_text, no_scenario_files
from harness.validation import schema_problems_at
from proxy.datafile import load_yaml_file

DEFAULT_CLASSES = ("main", "subagent")


class ScenarioError(Exception):
    """A scenario file or its data is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class Expectation:
    """What a turn is checked against, besides the schemas (see docs/readme/run.md for exact meanings)."""

    tools: tuple[str, ...] | None = None  # pinned tool names (order-free)
    tools_match: str = "exact"  # "exact": called names == pinned; "subset": called names ⊆ pinned
    args: dict[str, dict] = field(default_factory=dict)  # tool name -> JSON Schema fragment for its input
    text_only: bool | None = None  # True: no tool call allowed (overrides the reference)
    stop_reason: tuple[str, ...] | None = None  # allowed stop reasons
    text_excludes: tuple[str, ...] = ()  # strings the answer's text must not contain
    stream: str = "recorded"  # "recorded" (the request's own flag), "true", "false", "both"
    count_tokens: bool = False  # also call /v1/messages/count_tokens with this request


@dataclass(frozen=True)
class Turn:
    index: int
    request: dict  # the Anthropic /v1/messages body
    reference: list[dict] | None  # content blocks the reference backend answers with
    expect: Expectation

    @property
    def offered_tools(self) -> dict[str, dict]:
        """Tool name -> input_schema for every tool the request offers."""
        tools = self.request.get("tools") or []
        return {t["name"]: t.get("input_schema") or {} for t in tools if isinstance(t, dict) and "name" in t}

    @property
    def reference_tools(self) -> list[str]:
        return [b.get("name", "") for b in self.reference or [] if b.get("type") == "tool_use"]

    @property
    def expected_tools(self) -> list[str]:
        """The pinned names, else the names the reference called (reported, enforced only when pinned)."""
        return list(self.expect.tools) if self.expect.tools is not None else self.reference_tools

    @property
    def uses_tools(self) -> bool:
        """A tool turn: scored on tool-call success. Otherwise a text turn: scored on spurious calls."""
        if self.expect.text_only:
            return False
        return bool(self.expect.tools) or bool(self.reference_tools)

    def stream_modes(self) -> list[bool]:
        mode = self.expect.stream
        if mode == "both":
            return [True, False]
        if mode in ("true", "false"):
            return [mode == "true"]
        return [bool(self.request.get("stream"))]


@dataclass(frozen=True)
class Scenario:
    id: str
    suite: str
    tags: tuple[str, ...]
    description: str
    source_file: Path
    raw: dict  # the YAML entry, kept to resolve turns later
    turns: tuple[Turn, ...] | None = None  # None until resolve_turns


def _fail(where: str, message: str) -> ScenarioError:
    return ScenarioError(f"{where}: {message}")


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def parse_expectation(raw: dict | None) -> Expectation:
    """An `expect:` mapping already checked by the scenario_file schema."""
    raw = raw or {}
    stream = raw.get("stream", "recorded")
    return Expectation(
        tools=_names(raw["tools"]) if "tools" in raw else None,
        tools_match=raw.get("tools_match", "exact"),
        args=raw.get("args") or {},
        text_only=raw.get("text_only"),
        stop_reason=_names(raw["stop_reason"]) if "stop_reason" in raw else None,
        text_excludes=_names(raw.get("text_excludes", [])),
        stream={True: "true", False: "false"}.get(stream, stream),
        count_tokens=bool(raw.get("count_tokens", False)),
    )


def _reference_blocks(raw: str | list[dict] | None) -> list[dict] | None:
    return [{"type": "text", "text": raw}] if isinstance(raw, str) else raw


def _inline_turns(raw: dict) -> list[Turn]:
    items = [raw] if "request" in raw else raw["turns"]
    return [
        Turn(
            index=i,
            request=item["request"],
            reference=_reference_blocks(item.get("reference")),
            expect=parse_expectation(item.get("expect")),
        )
        for i, item in enumerate(items)
    ]


def _resolve_path(value: str, scenario_file: Path) -> Path:
    """A data path: relative to the scenario file's folder, else to the project root (its parent)."""
    path = Path(value)
    if path.is_absolute():
        return path
    for base in (scenario_file.parent, scenario_file.parent.parent, Path.cwd()):
        if (base / path).exists() or (base / path).with_suffix(".jsonl").exists():
            return base / path
    return scenario_file.parent.parent / path


def _per_turn_expectations(raw: dict, where: str) -> dict[int, Expectation]:
    expect = raw.get("expect") or {}
    if not all(isinstance(k, int) for k in expect):
        raise _fail(
            f"{where}.expect", "for recorded sessions must map turn indexes (0, 1, …) to expectations"
        )
    return {k: parse_expectation(v) for k, v in expect.items()}


def _select(turns: list[Turn], raw: dict, where: str) -> list[Turn]:
    wanted = raw.get("turns")
    if wanted is None:
        return turns
    by_index = {t.index: t for t in turns}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise _fail(f"{where}.turns", f"no turn(s) {missing}; the session has {len(turns)}")
    return [by_index[i] for i in wanted]


def _with_expectations(turns: list[Turn], expectations: dict[int, Expectation]) -> list[Turn]:
    return [replace(t, expect=expectations[t.index]) if t.index in expectations else t for t in turns]


def _cassette_turns(raw: dict, scenario_file: Path, where: str) -> list[Turn]:
    from harness.cassette import CassetteError, load_cassette

    path = _resolve_path(raw["cassette"], scenario_file)
    classes = _names(raw.get("classes", list(DEFAULT_CLASSES)))
    try:
        cassette = load_cassette(path)
        turns: list[Turn] = []
        for inter in cassette.interactions:
            request_class = inter.meta.get("request_class", "main")
            if inter.path != "/v1/messages" or request_class not in classes or inter.status != 200:
                continue
            if inter.request_body is None:
                continue
            try:
                content = inter.response_message().get("content") or []
            except CassetteError as exc:
                raise CassetteError(f"{path}: {exc}") from exc
            at = f"{path}: interaction {inter.seq}: content"
            if not isinstance(content, list):
                raise CassetteError(f"{at}: must be a list of content blocks, got {type(content).__name__}")
            problems = schema_problems_at("scenario_file", "#/$defs/reference", content, at)
            if problems:
                raise CassetteError(problems[0])
            turns.append(
                Turn(index=len(turns), request=inter.request_body, reference=content, expect=Expectation())
            )
    except CassetteError as exc:
        raise _fail(f"{where}.cassette", str(exc)) from exc
    if not turns and not raw.get("from_glob"):  # a glob simply finds no turns of that class in some cassettes
        raise _fail(
            f"{where}.cassette", f"{path} has no answered /v1/messages turns of class {', '.join(classes)}"
        )
    return turns


def _captured_requests(requests_file: Path, where: str) -> list[dict]:
    """The /v1/messages bodies in a `NAME.jsonl`: one JSON object with `path` and `body` per line."""
    try:
        lines = requests_file.read_text().splitlines()
    except OSError as exc:
        raise _fail(where, f"cannot read {requests_file}: {exc}") from exc
    requests = []
    for number, line in enumerate(lines, 1):
        at = f"{requests_file} line {number}"
        try:
            item = json.loads(line.strip() or "{}")  # a blank line is skipped
        except ValueError as exc:
            raise _fail(where, f"{at}: not valid JSON: {exc}") from exc
        if not isinstance(item, dict):
            raise _fail(
                where, f"{at}: must be a JSON object with 'path' and 'body', got {type(item).__name__}"
            )
        if not isinstance(item.get("path", ""), str):
            raise _fail(where, f"{at}.path: must be a string, got {type(item['path']).__name__}")
        if item.get("path", "").split("?")[0] != "/v1/messages":
            continue
        problems = schema_problems_at("scenario_file", "#/$defs/request", item.get("body"), f"{at}.body")
        if problems:
            raise _fail(where, problems[0])
        requests.append(item["body"])
    return requests


def _captured_answers(answers_file: Path, where: str) -> list:
    """The scripted answers in a `NAME.turns.json`: `{"turns": [answer, ...]}`, each a reference answer."""
    try:
        data = json.loads(answers_file.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(where, f"cannot read {answers_file}: {exc}") from exc
    answers = data.get("turns") if isinstance(data, dict) else None
    if not isinstance(answers, list):
        raise _fail(where, f"{answers_file}: must be an object with a 'turns' list (one answer per request)")
    for i, answer in enumerate(answers):
        problems = schema_problems_at(
            "scenario_file", "#/$defs/reference", answer, f"{answers_file}: turns[{i}]"
        )
        if problems:
            raise _fail(where, problems[0])
    return answers


def _captured_turns(raw: dict, scenario_file: Path, where: str) -> list[Turn]:
    """Captured Claude Code requests (`NAME.jsonl`) answered by scripted turns (`NAME.turns.json`)."""
    base = _resolve_path(raw["captured"], scenario_file)
    requests_file, answers_file = base.with_suffix(".jsonl"), base.with_suffix(".turns.json")
    requests = _captured_requests(requests_file, f"{where}.captured")
    answers = _captured_answers(answers_file, f"{where}.captured")
    if len(requests) != len(answers):
        raise _fail(f"{where}.captured", f"{len(requests)} requests but {len(answers)} scripted answers")
    return [
        Turn(
            index=i,
            request=req,
            reference=_reference_blocks(ans),
            expect=Expectation(),
        )
        for i, (req, ans) in enumerate(zip(requests, answers, strict=True))
    ]


def resolve_turns(scenario: Scenario) -> Scenario:
    """Load the scenario's turns (cassette, captured data or inline), with their expectations.

    A scenario made by a `cassettes:` glob may come back with no turns (e.g. no auxiliary requests in that
    session); callers drop such scenarios.
    """
    raw, where = scenario.raw, f"{scenario.source_file}: scenario {scenario.id}"
    if "cassette" in raw or "captured" in raw:
        expectations = _per_turn_expectations(raw, where)  # checked first: a typo is reported before any I/O
        loader = _cassette_turns if "cassette" in raw else _captured_turns
        turns = _with_expectations(
            _select(loader(raw, scenario.source_file, where), raw, where), expectations
        )
    else:
        turns = _inline_turns(raw)
    return replace(scenario, turns=tuple(turns))


def _scenario_from_entry(entry: dict, index: int, source: Path, defaults: dict) -> Scenario:
    """A scenario entry the schema has checked; what JSON Schema cannot say is checked here."""
    sid, suite = entry["id"], entry.get("suite", defaults.get("suite"))
    where = f"{source}: scenarios[{index}] ({sid})"
    if not suite:
        raise _fail(where, "needs a 'suite' (here or at the top of the file)")
    sources = [k for k in ("cassette", "captured", "request") if k in entry]
    if len(sources) > 1 or not (sources or "turns" in entry):
        raise _fail(where, "needs exactly one of cassette, captured, request or turns")
    if "request" in entry and "turns" in entry:
        raise _fail(where, "has both request and turns; use one")
    return Scenario(
        sid, suite, _names(entry.get("tags", [])), str(entry.get("description", "")), source, entry
    )


def _expand_glob(entry: dict, index: int, source: Path, defaults: dict, named: set) -> list[Scenario]:
    """One cassette scenario per file matching `cassettes:` (relative to the project root, or absolute)."""
    suite = entry.get("suite", defaults.get("suite"))
    if not suite:
        raise _fail(f"{source}: scenarios[{index}]", "needs a 'suite' (here or at the top of the file)")
    root, out = source.parent.parent, []
    # glob.glob, not Path.glob: it takes absolute patterns too, and root_dir is never read as a pattern
    matches = glob.glob(entry["cassettes"], root_dir=root, recursive=True, include_hidden=True)
    for path in sorted(root / match for match in matches):  # an absolute match stays as it is
        names = {str(path), str(path.relative_to(root)) if path.is_relative_to(root) else str(path)}
        if any((suite, name) in named for name in names):  # the same cassette written out by hand
            continue
        raw = {
            "cassette": str(path),
            "classes": entry.get("classes", list(DEFAULT_CLASSES)),
            "from_glob": True,
        }
        sid = f"{entry.get('id_prefix', '')}{path.stem}"
        description = entry.get("description", f"recorded session {path.name}")
        out.append(Scenario(sid, suite, _names(entry.get("tags", [])), description, source, raw))
    return out


def load_scenario_file(path: Path) -> list[Scenario]:
    """One YAML file: a list of scenarios, or a mapping with `suite:` defaults and `scenarios:`.

    The entries are checked against harness/schemas/scenario_file.json; every problem names the file and
    the field (e.g. `scenarios[3].expect.stream`).
    """
    data = load_yaml_file(path, "scenario file", ScenarioError)
    defaults: dict = {}
    if isinstance(data, dict):
        defaults = {k: v for k, v in data.items() if k != "scenarios"}
        data = data.get("scenarios")
    if not isinstance(data, list):
        raise ScenarioError(f"{path}: must hold a list of scenarios (or a mapping with a 'scenarios' list)")
    problems = schema_problems_at("scenario_file", "#/$defs/entries", data, "scenarios")
    if problems:
        raise ScenarioError(f"{path}: " + "; ".join(problems[:3]))
    named = {(e.get("suite", defaults.get("suite")), e["cassette"]) for e in data if "cassette" in e}
    out: list[Scenario] = []
    for i, entry in enumerate(data):
        if "cassettes" in entry:
            out += _expand_glob(entry, i, path, defaults, named)
        else:
            out.append(_scenario_from_entry(entry, i, path, defaults))
    return out


def default_scenarios_dir() -> Path:
    """`./scenarios` when it exists (a checkout or a user project), else the one next to the package (an
    editable install), else `harness/data/scenarios` (for a wheel that ships scenarios + cassettes there)."""
    here = Path(__file__).resolve().parent
    for folder in (Path.cwd() / "scenarios", here.parent / "scenarios", here / "data" / "scenarios"):
        if folder.is_dir():
            return folder
    return Path.cwd() / "scenarios"


def load_scenarios(directory: Path | None = None) -> list[Scenario]:
    """Every scenario in `directory/*.yaml`; ids must be unique across files."""
    folder = Path(directory) if directory is not None else default_scenarios_dir()
    if not folder.is_dir():
        raise ScenarioError(
            f"scenario folder not found: {folder} (run from the project root or pass --scenarios)"
        )
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ScenarioError(no_scenario_files(folder))
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in files:
        for scenario in load_scenario_file(path):
            if scenario.id in seen:
                raise ScenarioError(
                    f"{path}: scenario id {scenario.id!r} is already defined in {seen[scenario.id]}"
                )
            seen[scenario.id] = path
            scenarios.append(scenario)
    return scenarios


def select_scenarios(scenarios: list[Scenario], suites: list[str], ids: list[str]) -> list[Scenario]:
    """The union of the named suites and scenario ids (both empty = everything); unknown names are usage errors."""
    known_suites = sorted({s.suite for s in scenarios})
    for suite in suites:
        if suite not in known_suites:
            raise ScenarioError(
                f"unknown suite {suite!r}; known suites: {', '.join(known_suites) or '(none)'}"
            )
    known_ids = [s.id for s in scenarios]
    for sid in ids:
        if sid not in known_ids:
            raise ScenarioError(f"unknown scenario {sid!r}; {known_ids_text(sid, known_ids)}")
    if not suites and not ids:
        return list(scenarios)
    return [s for s in scenarios if s.suite in suites or s.id in ids]
