"""Scenario files: the shipped suites load, sources resolve, and malformed files fail with file + field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cassette import Cassette, Interaction, save_cassette
from harness.scenarios import (
    ScenarioError,
    load_scenarios,
    resolve_turns,
    select_scenarios,
)
from proxy.sse import encode_events
from tests.harness.test_validation import START, end, tool_block

PROJECT_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REQUEST = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def write(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_shipped_suites_load_and_resolve():
    scenarios = [resolve_turns(s) for s in load_scenarios(PROJECT_SCENARIOS)]
    smoke = [s for s in scenarios if s.suite == "smoke"]
    claude_code = [s for s in scenarios if s.suite == "claude-code"]
    assert len(smoke) >= 10 and len(claude_code) >= 5
    assert all(t.request["max_tokens"] <= 128 for s in smoke for t in s.turns)
    assert all(t.reference is not None for s in scenarios for t in s.turns)
    captured_turns = [t for s in claude_code if "captured" in s.raw for t in s.turns]
    assert len(captured_turns) == 14
    assert any(t.uses_tools for t in captured_turns) and any(not t.uses_tools for t in captured_turns)
    streams = {tuple(t.stream_modes()) for s in smoke for t in s.turns}
    assert (True, False) in streams and (True,) in streams and (False,) in streams


def test_inline_turns_and_expectations(tmp_path):
    folder = tmp_path / "scenarios"
    write(
        folder,
        "a.yaml",
        {
            "suite": "mine",
            "scenarios": [
                {
                    "id": "two-turns",
                    "turns": [
                        {
                            "request": REQUEST,
                            "reference": "hello",
                            "expect": {"stream": "both", "stop_reason": "end_turn"},
                        },
                        {
                            "request": {**REQUEST, "stream": True},
                            "reference": [{"type": "tool_use", "name": "Read", "input": {"file_path": "/x"}}],
                            "expect": {"count_tokens": True},
                        },
                    ],
                }
            ],
        },
    )
    (scenario,) = load_scenarios(folder)
    first, second = resolve_turns(scenario).turns
    assert first.reference == [{"type": "text", "text": "hello"}] and not first.uses_tools
    assert first.stream_modes() == [True, False] and first.expect.stop_reason == ("end_turn",)
    assert second.uses_tools and second.expected_tools == ["Read"] and second.stream_modes() == [True]
    assert second.expect.count_tokens


def _cassette(path: Path) -> None:
    sse = encode_events([START, *tool_block(0, '{"command": "ls"}', name="Bash"), *end("tool_use")]).decode()
    body = {**REQUEST, "stream": True}

    def interaction(seq: int, request_class: str, path: str = "/v1/messages?beta=true") -> Interaction:
        return Interaction(
            seq,
            "POST",
            f"http://127.0.0.1:8083{path}",
            {},
            body,
            200,
            {"content-type": "text/event-stream"},
            sse,
            {"request_class": request_class},
        )

    interactions = [
        interaction(0, "auxiliary"),
        interaction(1, "main"),
        interaction(2, "count_tokens", "/v1/messages/count_tokens"),
        interaction(3, "main"),
    ]
    save_cassette(Cassette(path, {"description": "t"}, interactions))


def test_cassette_glob_makes_one_scenario_per_cassette(tmp_path):
    _cassette(tmp_path / "cassettes" / "one.yaml")
    write(
        tmp_path / "scenarios",
        "cc.yaml",
        {
            "suite": "claude-code",
            "scenarios": [
                {"cassettes": "cassettes/*.yaml", "id_prefix": "cc-"},
                {
                    "cassettes": "cassettes/*.yaml",
                    "id_prefix": "aux-",
                    "suite": "aux",
                    "classes": ["auxiliary"],
                },
                {
                    "id": "pinned",
                    "suite": "pins",
                    "cassette": "cassettes/one.yaml",
                    "turns": [1],
                    "expect": {1: {"tools": ["Bash"]}},
                },
            ],
        },
    )
    by_id = {s.id: resolve_turns(s) for s in load_scenarios(tmp_path / "scenarios")}
    assert set(by_id) == {"cc-one", "aux-one", "pinned"}
    main_turns = by_id["cc-one"].turns
    assert len(main_turns) == 2 and main_turns[0].reference_tools == ["Bash"]
    assert main_turns[0].reference[0]["input"] == {"command": "ls"} and main_turns[0].stream_modes() == [True]
    assert len(by_id["aux-one"].turns) == 1 and by_id["aux-one"].suite == "aux"
    (pinned,) = by_id["pinned"].turns
    assert pinned.index == 1 and pinned.expect.tools == ("Bash",)


def test_captured_source(tmp_path):
    data = tmp_path / "scenarios" / "data"
    data.mkdir(parents=True)
    (data / "s.jsonl").write_text(
        json.dumps({"seq": 0, "path": "/v1/messages?beta=true", "body": REQUEST}) + "\n"
    )
    (data / "s.turns.json").write_text(json.dumps({"turns": [[{"type": "text", "text": "ok"}]]}))
    write(tmp_path / "scenarios", "c.yaml", [{"id": "cap", "suite": "x", "captured": "data/s"}])
    (scenario,) = load_scenarios(tmp_path / "scenarios")
    assert resolve_turns(scenario).turns[0].reference == [{"type": "text", "text": "ok"}]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"suite": "s", "request": REQUEST}, "scenarios[0]: 'id' is a required property"),
        ({"id": "a", "request": REQUEST}, "needs a 'suite'"),
        ({"id": "a", "suite": "s"}, "needs exactly one of"),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "colour": 1},
            "scenarios[0]: Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            {"id": "a", "suite": "s", "request": {"messages": []}},
            "scenarios[0].request.messages: [] should be non-empty",
        ),
        (
            {"id": "a", "suite": "s", "request": {"messages": [{"role": "user", "content": "x"}]}},
            "max_tokens",
        ),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "expect": {"tool": ["Read"]}},
            "scenarios[0].expect: Additional properties are not allowed ('tool' was unexpected)",
        ),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "expect": {"stream": "sometimes"}},
            "scenarios[0].expect.stream: 'sometimes' is not one of",
        ),
        ({"id": "a", "suite": "s", "request": REQUEST, "expect": {"tools_match": "some"}}, "tools_match"),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "expect": {"args": {"Read": "x"}}},
            "scenarios[0].expect.args.Read: 'x' is not of type 'object'",
        ),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "reference": [{"type": "tool_use"}]},
            "scenarios[0].reference[0]: 'name' is a required property",
        ),
        ({"id": "a", "suite": "s", "cassette": "cassettes/missing.yaml"}, "cassette not found"),
        (
            {"id": "a", "suite": "s", "cassette": "c.yaml", "turns": ["x"]},
            "scenarios[0].turns[0]: 'x' is not of type",
        ),
        ({"cassettes": "c/*.yaml", "suite": "s", "id": "x"}, "('id' was unexpected)"),
        (
            {"id": "a", "suite": "s", "request": REQUEST, "turns": [{"request": REQUEST}]},
            "both request and turns",
        ),
        ({"id": "a", "suite": "s", "cassette": "c.yaml", "expect": {"x": {}}}, "turn indexes"),
    ],
)
def test_malformed_scenarios_name_file_and_field(tmp_path, entry, fragment):
    path = write(tmp_path / "scenarios", "bad.yaml", [entry])
    with pytest.raises(ScenarioError) as info:
        [resolve_turns(s) for s in load_scenarios(tmp_path / "scenarios")]
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_file_level_errors(tmp_path):
    folder = tmp_path / "scenarios"
    write(folder, "bad.yaml", "scenarios: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenarios(folder)
    write(folder, "bad.yaml", "just a string\n")
    with pytest.raises(ScenarioError, match="must hold a list"):
        load_scenarios(folder)
    write(folder, "bad.yaml", [{"id": "a", "suite": "s", "request": REQUEST}])
    write(folder, "dup.yaml", [{"id": "a", "suite": "s", "request": REQUEST}])
    with pytest.raises(ScenarioError, match="already defined"):
        load_scenarios(folder)
    with pytest.raises(ScenarioError, match="not found"):
        load_scenarios(tmp_path / "nowhere")


def test_select_by_suite_and_id(tmp_path):
    folder = tmp_path / "scenarios"
    write(
        folder,
        "a.yaml",
        [
            {"id": i, "suite": s, "request": REQUEST}
            for i, s in [("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")]
        ],
    )
    scenarios = load_scenarios(folder)
    assert [s.id for s in select_scenarios(scenarios, [], [])] == ["a1", "a2", "b1"]
    assert [s.id for s in select_scenarios(scenarios, ["alpha"], [])] == ["a1", "a2"]
    assert [s.id for s in select_scenarios(scenarios, [], ["b1"])] == ["b1"]
    assert [s.id for s in select_scenarios(scenarios, ["beta"], ["a2"])] == ["a2", "b1"]
    with pytest.raises(ScenarioError, match="unknown suite 'gamma'; known suites: alpha, beta"):
        select_scenarios(scenarios, ["gamma"], [])
    with pytest.raises(ScenarioError, match="unknown scenario 'zz'"):
        select_scenarios(scenarios, [], ["zz"])


def test_absolute_cassette_glob(tmp_path):
    """An absolute `cassettes:` glob is used as it is (Path.glob raised NotImplementedError on it)."""
    _cassette(tmp_path / "elsewhere" / "one.yaml")
    _cassette(tmp_path / "elsewhere" / "two.yaml")
    pattern = str(tmp_path / "elsewhere" / "*.yaml")
    write(
        tmp_path / "project" / "scenarios",
        "cc.yaml",
        {
            "suite": "s",
            "scenarios": [
                {"cassettes": pattern, "id_prefix": "abs-"},
                {"id": "pinned", "cassette": str(tmp_path / "elsewhere" / "two.yaml")},
            ],
        },
    )
    by_id = {s.id: resolve_turns(s) for s in load_scenarios(tmp_path / "project" / "scenarios")}
    assert set(by_id) == {"abs-one", "pinned"}  # the cassette written out by hand is skipped by the glob
    assert len(by_id["abs-one"].turns) == 2


def _captured(tmp_path: Path, lines: list[str], answers: str) -> Path:
    data = tmp_path / "scenarios" / "data"
    data.mkdir(parents=True)
    (data / "s.jsonl").write_text("".join(line + "\n" for line in lines))
    (data / "s.turns.json").write_text(answers)
    return write(tmp_path / "scenarios", "c.yaml", [{"id": "cap", "suite": "x", "captured": "data/s"}])


GOOD_LINE = json.dumps({"path": "/v1/messages", "body": REQUEST})
GOOD_ANSWERS = json.dumps({"turns": [[{"type": "text", "text": "ok"}]]})


@pytest.mark.parametrize(
    ("lines", "answers", "fragment"),
    [
        ([GOOD_LINE], json.dumps({"turns": 5}), "s.turns.json: must be an object with a 'turns' list"),
        ([GOOD_LINE], json.dumps([1, 2]), "s.turns.json: must be an object with a 'turns' list"),
        ([GOOD_LINE], json.dumps({"turns": [5]}), "s.turns.json: turns[0]: 5 is not of type"),
        (["[1, 2]"], GOOD_ANSWERS, "s.jsonl line 1: must be a JSON object with 'path' and 'body', got list"),
        ([GOOD_LINE, "5"], GOOD_ANSWERS, "s.jsonl line 2: must be a JSON object"),
        (
            [json.dumps({"path": 5, "body": REQUEST})],
            GOOD_ANSWERS,
            "s.jsonl line 1.path: must be a string, got int",
        ),
        (
            [json.dumps({"path": "/v1/messages"})],
            GOOD_ANSWERS,
            "s.jsonl line 1.body: None is not of type 'object'",
        ),
        (
            [json.dumps({"path": "/v1/messages", "body": [1]})],
            GOOD_ANSWERS,
            "line 1.body: [1] is not of type",
        ),
        (["{nope"], GOOD_ANSWERS, "s.jsonl line 1: not valid JSON"),
    ],
)
def test_malformed_captured_data_is_a_scenario_error(tmp_path, lines, answers, fragment):
    path = _captured(tmp_path, lines, answers)
    (scenario,) = load_scenarios(tmp_path / "scenarios")
    with pytest.raises(ScenarioError) as info:
        resolve_turns(scenario)
    assert str(path) in str(info.value) and "cap.captured" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("[1, 2]", "response body is not a JSON object (got list)"),
        ("5", "response body is not a JSON object (got int)"),
        ('{"content": 5}', "content: must be a list of content blocks"),
        ('{"content": [5]}', "content[0]: 5 is not of type 'object'"),
    ],
)
def test_cassette_response_that_is_not_a_message_is_a_scenario_error(tmp_path, body, fragment):
    path = tmp_path / "cassettes" / "one.yaml"
    answer = Interaction(
        0, "POST", "http://x/v1/messages", {}, REQUEST, 200, {"content-type": "application/json"}, body
    )
    save_cassette(Cassette(path, {}, [answer]))
    write(tmp_path / "scenarios", "c.yaml", [{"id": "x", "suite": "s", "cassette": "cassettes/one.yaml"}])
    (scenario,) = load_scenarios(tmp_path / "scenarios")
    with pytest.raises(ScenarioError) as info:
        resolve_turns(scenario)
    assert "scenario x.cassette" in str(info.value) and str(path) in str(info.value)
    assert "one.yaml: interaction 0: " in str(info.value) and fragment in str(info.value)
