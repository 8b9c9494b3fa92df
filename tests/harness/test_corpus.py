"""The recorded corpus (cassettes/*.yaml), the scripted upstream that answered it, and re-recording."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from harness.cassette import Cassette, Interaction, load_cassette
from harness.recording.rerecord import SESSIONS_DIR
from harness.recording.runner import FAKE_KEY, RecordingError, count_main_turns, find_claude, record_session
from harness.scripted_upstream import (
    ScriptedUpstream,
    ScriptError,
    _chunks,
    build_scripted_app,
    load_script,
)
from harness.scripted_upstream import main as scripted_upstream_main
from proxy.sse import SSEDecoder
from tests.harness.test_recorder import serving

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = sorted((ROOT / "cassettes").glob("*.yaml"))
SCRIPTS = {path.stem: load_script(path) for path in sorted(SESSIONS_DIR.glob("*.yaml"))}


def cassette(name: str) -> Cassette:
    return load_cassette(ROOT / "cassettes" / f"{name}.yaml")


def messages_calls(c: Cassette, request_class: str | None = None) -> list[Interaction]:
    return [
        i for i in c.interactions
        if i.path == "/v1/messages" and (request_class is None or i.meta["request_class"] == request_class)
    ]  # fmt: skip


def blocks(interaction: Interaction, kind: str) -> list[dict]:
    """Every content block of `kind` in the request's messages."""
    return [
        b for m in interaction.request_body["messages"] if isinstance(m["content"], list)
        for b in m["content"] if b.get("type") == kind
    ]  # fmt: skip


def test_corpus_has_a_cassette_per_session_script() -> None:
    assert len(CASSETTES) >= 8
    assert {p.stem for p in CASSETTES} >= set(SCRIPTS)
    assert set(SCRIPTS) >= {"read_edit", "parallel_reads", "write_run", "tool_error", "long_output", "subagent",
                            "toolsearch", "non_ascii", "multi_turn", "stop_hook"}  # fmt: skip


@pytest.mark.parametrize("path", CASSETTES, ids=[p.stem for p in CASSETTES])
def test_vcrpy_and_ccbench_load_every_cassette(path: Path) -> None:
    requests, responses = FilesystemPersister.load_cassette(path, yamlserializer)
    loaded = load_cassette(path)
    assert len(requests) == len(responses) == len(loaded.interactions) > 0
    assert loaded.meta["claude_code_version"] == "2.1.328" and loaded.meta["upstream"] == "scripted"
    raw = path.read_bytes()
    assert FAKE_KEY.encode() not in raw and b"ccbench-ws-" not in raw and b"ccbench-home-" not in raw
    for interaction in loaded.interactions:
        assert interaction.request_headers.get("x-api-key", "<redacted>") == "<redacted>"
        assert interaction.status == 200


@pytest.mark.parametrize("path", CASSETTES, ids=[p.stem for p in CASSETTES])
def test_streams_parse_and_timings_match_events(path: Path) -> None:
    for interaction in load_cassette(path).interactions:
        if not interaction.is_stream:
            continue
        decoder = SSEDecoder()
        events = decoder.feed(interaction.response_body.encode()) + decoder.flush()
        times = interaction.meta["event_times_ms"]
        assert len(times) == len(events) and times == sorted(times)
        assert interaction.meta["ttft_ms"] <= interaction.meta["duration_ms"]
        assert interaction.response_message()["stop_reason"] in ("tool_use", "end_turn")


@pytest.mark.parametrize("path", CASSETTES, ids=[p.stem for p in CASSETTES])
def test_tool_ids_pair_up_across_requests_and_responses(path: Path) -> None:
    """Every tool_result answers a tool_use of the same conversation, and every answered tool_use came from a response."""
    c = load_cassette(path)
    answered: set[str] = set()
    for interaction in messages_calls(c):
        used = {b["id"] for b in blocks(interaction, "tool_use")}
        results = {b["tool_use_id"] for b in blocks(interaction, "tool_result")}
        assert results <= used, f"seq {interaction.seq}: tool_result without its tool_use"
        assert used <= answered, f"seq {interaction.seq}: tool_use id never seen in a response"
        answered |= {b["id"] for b in interaction.response_message()["content"] if b["type"] == "tool_use"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_main_turns_match_the_session_script(name: str) -> None:
    assert count_main_turns(cassette(name).interactions) == SCRIPTS[name].main_turns


def test_corpus_covers_what_it_claims() -> None:
    errors = [
        b for b in blocks(messages_calls(cassette("tool_error"))[-1], "tool_result") if b.get("is_error")
    ]
    assert len(errors) >= 2
    toolsearch = messages_calls(cassette("toolsearch"))
    assert any(isinstance(b.get("content"), list) and b["content"][0]["type"] == "tool_reference"
               for b in blocks(toolsearch[1], "tool_result"))  # fmt: skip
    assert "NotebookEdit" in {t["name"] for t in toolsearch[-1].request_body["tools"]}
    subagent = cassette("subagent")
    assert len(messages_calls(subagent, "subagent")) == 2
    assert all(i.request_headers.get("x-claude-code-agent-id") for i in messages_calls(subagent, "subagent"))
    parallel = messages_calls(cassette("parallel_reads"))[0].response_message()
    assert sum(b["type"] == "tool_use" for b in parallel["content"]) >= 2
    long_results = blocks(messages_calls(cassette("long_output"))[-1], "tool_result")
    assert "Output too large" in json.dumps(long_results)
    non_ascii = cassette("non_ascii")
    assert "こんにちは世界 🌏" in json.dumps(
        blocks(messages_calls(non_ascii)[-1], "tool_result"), ensure_ascii=False
    )
    assert "Grüße" in non_ascii.interactions[-1].response_message()["content"][0]["text"]
    assert len(messages_calls(cassette("multi_turn"), "main")) >= 6
    assert any(
        b["type"] == "thinking"
        for b in messages_calls(cassette("multi_turn"))[0].response_message()["content"]
    )
    assert [i.method for i in cassette("write_run").interactions][0] == "HEAD"
    (hook,) = messages_calls(cassette("stop_hook"), "auxiliary")
    assert (
        not hook.request_body.get("tools")
        and hook.request_body["output_config"]["format"]["type"] == "json_schema"
    )
    assert json.loads(hook.response_message()["content"][0]["text"])["ok"] is True


def test_load_script_errors_are_clear(tmp_path: Path) -> None:
    cases = {
        "no_turns.yaml": ("prompt: hi\n", "missing 'turns'"),
        "bad_block.yaml": (
            "turns: [[{type: tool_use, name: Read}]]\n",
            "needs a 'name' string and an 'input' mapping",
        ),
        "empty_turn.yaml": ("turns: [[]]\n", "non-empty list"),
        "bad_yaml.yaml": ("turns: [\n", "not valid YAML"),
        "bad_files.yaml": ("turns: []\nfiles: [a]\n", "'files' must map"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ScriptError, match=message):
            load_script(tmp_path / name)


def test_scripted_upstream_command_rejects_a_bad_script(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "bad.yaml").write_text("prompt: hi\n")
    with pytest.raises(SystemExit) as info:
        scripted_upstream_main([str(tmp_path / "bad.yaml"), "--port", "0"])
    assert info.value.code == 2 and "missing 'turns'" in capsys.readouterr().err


def test_chunks_never_cut_words_or_paths() -> None:
    text = 'Read {"file_path": "/tmp/ccbench-ws-abc/hello.py", "n": 1} — schöne Grüße 日本'
    parts = _chunks(text, 8)
    assert "".join(parts) == text
    assert any("/tmp/ccbench-ws-abc/hello.py" in p for p in parts)


async def test_scripted_upstream_plays_turns_by_role() -> None:
    script = load_script(SESSIONS_DIR / "subagent.yaml")
    upstream = ScriptedUpstream(script, workspace="/tmp/real-ws")
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    async with serving(build_scripted_app(upstream, event_delay_s=0)) as url:
        client = anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0, timeout=20)
        first = [{"role": "user", "content": "go"}]
        async with client.messages.stream(model="m", max_tokens=50, messages=first, tools=tools) as stream:
            main0 = await stream.get_final_message()
        side = await client.messages.create(
            model="m", max_tokens=5, messages=first
        )  # no tools: a side request
        async with client.messages.stream(
            model="m",
            max_tokens=50,
            messages=first,
            tools=tools,
            extra_headers={"x-claude-code-agent-id": "a1"},
        ) as stream:
            sub0 = await stream.get_final_message()
        counted = await client.messages.count_tokens(model="m", messages=first)
        history = [*first, {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]
        main1 = await client.messages.create(model="m", max_tokens=50, messages=history, tools=tools)
        history += [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]
        after_script = await client.messages.create(model="m", max_tokens=50, messages=history, tools=tools)
        await client.close()  # while the loop runs (a collected client schedules its close on a closed loop)
    assert [b.type for b in main0.content] == ["text", "tool_use"] and main0.stop_reason == "tool_use"
    assert main0.content[1].name == "Agent" and "/tmp/real-ws/hello.py" in main0.content[1].input["prompt"]
    assert side.content[0].text == "OK"
    assert sub0.content[0].name == "Read" and sub0.content[0].input == {"file_path": "/tmp/real-ws/hello.py"}
    assert counted.input_tokens > 0
    assert main1.stop_reason == "end_turn" and main1.content[0].text == script.turns[1][0]["text"]
    assert after_script.content[0].text == "Done."
    assert [entry["class"] for entry in upstream.log] == ["main", "auxiliary", "subagent", "main", "main"]


@pytest.mark.e2e
async def test_rerecording_with_real_claude_code_reproduces_the_cassette(tmp_path: Path) -> None:
    """Re-recording read_edit with the real CLI gives the same requests as the committed cassette."""
    try:
        claude = find_claude()
    except RecordingError as exc:
        pytest.skip(str(exc))
    result = await record_session(load_script(SESSIONS_DIR / "read_edit.yaml"), tmp_path / "re.yaml",
                                  claude_bin=claude, timeout_s=120)  # fmt: skip
    assert result.ok, result.problems
    fresh, committed = load_cassette(tmp_path / "re.yaml"), cassette("read_edit")
    assert [i.request_text for i in fresh.interactions] == [i.request_text for i in committed.interactions]
    assert [i.response_message() for i in fresh.interactions] == [
        i.response_message() for i in committed.interactions
    ]
