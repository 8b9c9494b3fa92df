"""`ccbench run` usage errors: exit 2 with a clear message (naming the URL/file/field), never a traceback."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner

from harness.backends import BackendError, discover_model, resolve_target
from harness.cli import main
from harness.reference import serve_on_loopback

PROJECT_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REQUEST = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def run(*args: str):
    return CliRunner().invoke(main, ["run", *args])


def assert_usage_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario_dir(tmp_path: Path, entries: list[dict]) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "mine.yaml").write_text(yaml.safe_dump(entries))
    return folder


def test_unknown_preset():
    assert_usage_error(run("--backend", "gpt-42"), "gpt-42", "reference")


def test_unknown_suite_and_scenario(tmp_path):
    out = str(tmp_path / "r.json")
    assert_usage_error(
        run("--scenarios", str(PROJECT_SCENARIOS), "--suite", "nope", "--out", out),
        "unknown suite 'nope'",
        "smoke",
    )
    assert_usage_error(
        run("--scenarios", str(PROJECT_SCENARIOS), "--scenario", "nope", "--out", out),
        "unknown scenario 'nope'",
    )
    assert not Path(out).exists()


def test_malformed_scenario_names_file_and_field(tmp_path):
    folder = scenario_dir(
        tmp_path, [{"id": "x", "suite": "s", "request": REQUEST, "expect": {"tool": ["Read"]}}]
    )
    assert_usage_error(run("--scenarios", str(folder)), "mine.yaml", "expect", "tool")


def test_missing_cassette(tmp_path):
    folder = scenario_dir(tmp_path, [{"id": "x", "suite": "s", "cassette": "cassettes/gone.yaml"}])
    assert_usage_error(run("--scenarios", str(folder)), "cassette not found", "gone.yaml")


def test_unreachable_backend_names_the_url(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run(
        "--backend",
        "vllm",
        "--base-url",
        url,
        "--suite",
        "smoke",
        "--timeout",
        "5",
        "--out",
        str(tmp_path / "r.json"),
    )
    assert_usage_error(result, "not reachable", f"{url}/models", "--tool-call-parser")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--backend", "openai"], "needs --base-url"),
        (["--backend", "reference", "--base-url", "http://127.0.0.1:1/v1"], "reference backend"),
        (["--backend", "vllm", "--base-url", "127.0.0.1:8000"], "http(s) URL"),
        (
            ["--backend", "vllm", "--base-url", "http://[::1/v1"],
            "--base-url must be an http(s) URL, not 'http://[::1/v1': Invalid IPv6",
        ),
        (["--backend", "vllm", "--base-url", "http://127.0.0.1:99999/v1"], "Port out of range"),
        (
            ["--backend", "vllm", "--base-url", "http://127.0.0.1:8000/v1/chat/completions"],
            "--base-url takes the base URL, not the /chat/completions endpoint: try http://127.0.0.1:8000/v1",
        ),
        (["--concurrency", "0"], "--concurrency"),
        (["--repeat", "0"], "--repeat"),
    ],
)
def test_bad_options(args, fragment):
    assert_usage_error(run(*args), fragment)


def test_reports_need_the_report_module(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "harness.report", None)  # importing it now raises ImportError
    result = run(
        "--scenarios",
        str(PROJECT_SCENARIOS),
        "--scenario",
        "smoke-single-tool",
        "--out",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert_usage_error(result, "harness.report")
    assert not (tmp_path / "r.json").exists()  # checked before the run, not after


def test_completed_run_exits_zero_whatever_the_scores(tmp_path):
    """A scenario the reference cannot pass (pinned tool it never calls) still completes with exit 0."""
    folder = scenario_dir(
        tmp_path,
        [{"id": "x", "suite": "s", "request": REQUEST, "reference": "hello", "expect": {"tools": ["Read"]}}],
    )
    out = tmp_path / "r.json"
    result = run("--scenarios", str(folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(out.read_text())
    assert data["summary"]["tool_call_success"] == 0.0
    assert data["scenarios"][0]["failure_class"] == "model_no_tool"


async def test_backend_probe_errors_are_clear():
    """A key the backend rejects, and a backend that lists no model, are usage errors naming the URL."""

    async def locked(request: web.Request) -> web.Response:
        return web.json_response({"error": "no"}, status=401)

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_get("/locked/v1/models", locked)
    app.router.add_get("/empty/v1/models", empty)
    async with serve_on_loopback(app) as root:
        with pytest.raises(BackendError, match="rejected the API key"):
            await discover_model(resolve_target("openai", f"{root}/locked/v1", None))
        with pytest.raises(BackendError, match=r"could not discover a model at .*/empty/v1/models"):
            await discover_model(resolve_target("openai", f"{root}/empty/v1", None))
        named = await discover_model(resolve_target("openai", f"{root}/empty/v1", "my-model"))
        assert named.model == "my-model"  # --model wins over discovery


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ({"data": [{"id": 5}, {"id": None}, {"id": ""}, {"id": "real-model"}]}, "real-model"),
        ({"data": [{"id": 5}]}, None),  # crashed the run's summary table (rich cannot render an int)
        ([{"id": "a"}], None),  # a JSON array instead of an object: was an AttributeError traceback
        ({"data": "x"}, None),
        ("just text", None),
    ],
)
async def test_model_discovery_takes_only_real_model_names(answer, found):
    async def models(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    async with serve_on_loopback(app) as root:
        target = resolve_target("openai", f"{root}/v1", None)
        if found is None:
            with pytest.raises(BackendError, match="could not discover a model"):
                await discover_model(target)
        else:
            assert (await discover_model(target)).model == found


async def test_a_base_url_without_v1_gets_the_fix_not_pass_model():
    """vLLM and llama-server list models at /v1/models; `--base-url http://host:8000` 404s there."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "qwen"}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    async with serve_on_loopback(app) as root:
        with pytest.raises(BackendError) as raised:
            await discover_model(resolve_target("vllm", root, None))
        assert (await discover_model(resolve_target("vllm", f"{root}/v1", None))).model == "qwen"
    assert str(raised.value) == (
        f"could not discover a model at {root}/models (HTTP 404); an OpenAI base URL usually ends in /v1: "
        f"try --base-url {root}/v1"
    )


def test_names_with_brackets_are_printed_as_they_are(tmp_path):
    """Model names, URLs and paths are text, not rich markup: `[fp8]` is not swallowed as a style and a
    `[/x]` does not crash the summary after the run."""
    folder = scenario_dir(tmp_path, [{"id": "x", "suite": "s", "request": REQUEST, "reference": "hello"}])
    out = tmp_path / "r [fp8].json"
    result = run("--scenarios", str(folder), "--model", "org/model [/x] [fp8]", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "org/model [/x] [fp8]" in result.output
    assert f"results: {out}" in result.output


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/r.json", "cannot write /proc/r.json"),
        ("", "an empty name is not a file"),
        (" ", "an empty name"),
    ],
)
def test_unwritable_out_is_reported_before_the_replay(out, message):
    """`--out` that cannot be written is checked first: the (unreachable) backend is never probed."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run("--backend", "vllm", "--base-url", url, "--suite", "smoke", "--out", out)
    assert_usage_error(result, "Invalid value for '--out'", message)
    assert "not reachable" not in result.output


def test_results_write_error_after_the_run_is_a_usage_error(tmp_path, monkeypatch):
    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("harness.results.write_atomic", full_disk)
    out = tmp_path / "r.json"
    result = run("--scenarios", str(PROJECT_SCENARIOS), "--scenario", "smoke-single-tool", "--out", str(out))
    assert_usage_error(result, f"cannot write {out}: No space left on device")


def test_html_and_junit_create_missing_folders(tmp_path):
    html, junit = tmp_path / "missing" / "dir" / "r.html", tmp_path / "other" / "r.xml"
    result = run(
        "--scenarios",
        str(PROJECT_SCENARIOS),
        "--scenario",
        "smoke-single-tool",
        "--out",
        str(tmp_path / "r.json"),
        "--html",
        str(html),
        "--junit",
        str(junit),
    )
    assert result.exit_code == 0, result.output
    assert "<html" in html.read_text() and "<testsuites" in junit.read_text()


@pytest.mark.parametrize("option", ["--html", "--junit"])
def test_unwritable_report_is_reported_before_the_replay(tmp_path, option):
    out = tmp_path / "r.json"
    result = run(
        "--scenarios",
        str(PROJECT_SCENARIOS),
        "--scenario",
        "smoke-single-tool",
        "--out",
        str(out),
        option,
        "/proc/ccbench/r.out",
    )
    assert_usage_error(result, "cannot write /proc/ccbench/r.out")
    assert not out.exists()  # checked before the run, not after


def test_malformed_captured_and_cassette_data_are_usage_errors(tmp_path):
    """Scenario data of the wrong shape (was a TypeError / AttributeError traceback) names the file."""
    from harness.cassette import Cassette, Interaction, save_cassette

    data = tmp_path / "data"
    data.mkdir()
    (data / "s.jsonl").write_text(json.dumps({"path": "/v1/messages", "body": REQUEST}) + "\n")
    (data / "s.turns.json").write_text(json.dumps({"turns": 5}))
    answer = Interaction(0, "POST", "http://x/v1/messages", {}, REQUEST, 200, {}, "[1, 2]")
    save_cassette(Cassette(tmp_path / "one.yaml", {}, [answer]))
    folder = scenario_dir(
        tmp_path,
        [
            {"id": "cap", "suite": "s", "captured": str(data / "s")},
            {"id": "cas", "suite": "t", "cassette": str(tmp_path / "one.yaml")},
        ],
    )
    assert_usage_error(run("--scenarios", str(folder), "--suite", "s"), "s.turns.json: must be an object")
    assert_usage_error(
        run("--scenarios", str(folder), "--suite", "t"),
        "one.yaml: interaction 0: response body is not a JSON",
    )


def test_upstream_is_the_same_option_as_base_url():
    """`ccbench proxy --upstream URL` and `ccbench run --base-url URL` name the same thing: run and live take both
    (a real user tried `run --upstream`)."""
    import click

    from harness.cli import main as cli

    for command in ("run", "live"):
        params = {p.name: p for p in cli.get_command(click.Context(cli), command).params}
        assert {"--base-url", "--upstream"} <= set(params["base_url"].opts)
