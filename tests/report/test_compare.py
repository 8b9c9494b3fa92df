"""`ccbench compare` over three results files: terminal table, Markdown table and scenario matrix."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from harness.cli import main
from harness.report import compare_table, failing_scenarios_table, write_markdown
from harness.report_data import load_results_file, parse_results
from harness.report_labels import best_rows
from harness.report_markdown import compare_markdown
from tests.report.factory import repeats, results, scenario, turn, write

EVIL_MODEL = "evil|model <script>alert(1)</script>"


def three_runs() -> list[dict]:
    bad_args = turn(
        1, passed=False, failure_class="model_bad_arguments", problems=["input.old_string: required"]
    )
    return [
        results("qwen3-8b", "vllm"),
        results(
            EVIL_MODEL,
            "llamacpp",
            tool_call_success=0.5,
            latency_p95=3000.0,
            errors=1,
            scenarios=[scenario("read-file"), scenario("edit-file", [turn(0), bad_args]), scenario("grep")],
        ),
        results(
            "smollm2-360m",
            "llamacpp",
            tool_call_success=None,
            ttft_p95=45.0,
            output_tokens_per_s=95.0,
            scenarios=[
                scenario("read-file", [turn(0, passed=False)]),
                scenario("edit-file"),
                scenario("grep"),
            ],
        ),
    ]


@pytest.fixture
def files(tmp_path):
    return [str(write(tmp_path / f"run{i}.json", data)) for i, data in enumerate(three_runs())]


def test_compare_three_files_terminal_table(files, tmp_path):
    outcome = CliRunner().invoke(main, ["compare", *files])
    assert outcome.exit_code == 0, outcome.output
    for name in ("qwen3-8b", "smollm2-360m", "evil|model <script>alert(1)</script>"):
        assert name in outcome.output  # rich markup is not interpreted: the name prints verbatim
    assert "model_bad_arguments" in outcome.output and "model_no_tool" in outcome.output


def test_compare_markdown_table_and_matrix(files, tmp_path):
    out = tmp_path / "compare.md"
    outcome = CliRunner().invoke(main, ["compare", *files, "--markdown", str(out)])
    assert outcome.exit_code == 0, outcome.output
    lines = out.read_text().splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "**90.0 %**" in rows["qwen3-8b"]  # best tool-call success
    smollm = rows["smollm2-360m"]
    assert smollm.split(" | ")[3] == "—"  # null tool-call success is a dash, never 100 %
    assert "**45 ms**" in smollm and "**95.0**" in smollm
    assert "<script>" not in out.read_text()
    assert r"evil\|model &lt;script&gt;" in out.read_text()
    matrix = [line for line in lines if line.startswith("| `")]
    assert [line.split(" | ")[0] for line in matrix] == ["| `read-file`", "| `edit-file`", "| `grep`"]
    assert matrix[0].split(" | ")[1:] == ["✅", "✅", "❌ model_no_tool |"]
    assert "❌ model_bad_arguments" in matrix[1]


def test_write_markdown_accepts_results_dicts(tmp_path):
    out = tmp_path / "single.md"
    write_markdown(results(), out)
    assert "| `read-file` | ✅ |" in out.read_text()


def test_compare_usage_errors_exit_2(tmp_path, files):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "summary": {}, "scenarios": "nope"}))
    outcome = CliRunner().invoke(main, ["compare", files[0], str(bad)])
    assert outcome.exit_code == 2
    assert "'scenarios' must be a list" in outcome.output
    assert CliRunner().invoke(main, ["compare"]).exit_code == 2
    plain_file = tmp_path / "plain.txt"
    plain_file.write_text("not a folder")
    unwritable = CliRunner().invoke(main, ["compare", files[0], "--html", str(plain_file / "r.html")])
    assert (
        unwritable.exit_code == 2
        and f"cannot write {plain_file / 'r.html'}: Not a directory" in unwritable.output
    )
    assert "ccbench compare" not in unwritable.output  # refused before any work, not after the table
    empty = CliRunner().invoke(main, ["compare", files[0], "--markdown", ""])
    assert empty.exit_code == 2 and "an empty name is not a file" in empty.output


def test_compare_reports_go_into_missing_folders(tmp_path, files):
    """CI jobs write into report folders that do not exist yet (was: `cannot write`, exit 2)."""
    html, markdown = tmp_path / "reports" / "models" / "r.html", tmp_path / "reports" / "r.md"
    outcome = CliRunner().invoke(main, ["compare", *files, "--html", str(html), "--markdown", str(markdown)])
    assert outcome.exit_code == 0, outcome.output
    assert html.read_text().startswith("<!DOCTYPE html>") and "| Model |" in markdown.read_text()


def test_contract_only_results_derive_pass_and_failure_class(tmp_path):
    """A file with only DESIGN section 5 fields (no passed / failure_class) still compares."""
    data = results()
    for item in data["scenarios"]:
        for key in ("passed", "pass_rate", "pass_hat_k", "failure_class"):
            item.pop(key)
        for t in item["turns"]:
            for key in ("passed", "failure_class", "repeat", "kind", "error"):
                t.pop(key)
    data["scenarios"][1]["turns"][0].update(
        tool_call_success=False, tool_calls=[{"name": "Bash", "input": {}, "valid": False}]
    )
    data["scenarios"][2]["turns"][0].update(schema_valid=False)
    run = load_results_file(write(tmp_path / "old.json", data))
    assert [s.passed for s in run.scenarios] == [True, False, False]
    assert [s.failure_class for s in run.scenarios] == [None, "model_bad_arguments", "proxy_protocol"]
    assert run.scenarios[0].pass_rate == 1.0


def test_best_rows_direction_and_ties():
    assert best_rows([0.5, 0.9, None], higher_is_better=True) == {1}
    assert best_rows([300.0, 45.0, 45.0], higher_is_better=False) == {1, 2}
    assert best_rows([1.0, 1.0], higher_is_better=True) == set()  # all equal: nothing to highlight
    assert best_rows([None, 0.4], higher_is_better=True) == set()


def test_null_rate_is_never_rendered_as_full():
    run = parse_results(results(tool_call_success=None, spurious_tool_calls=None), "x")
    assert run.metrics["tool_call_success"] is None


def test_runs_of_different_scenarios_are_flagged_in_terminal_and_markdown(tmp_path):
    """One easy scenario at 100 % beside a full suite at 100 % is not a like-for-like comparison."""
    full = write(tmp_path / "full.json", results("qwen3-8b", "vllm"))
    one = write(tmp_path / "one.json", results("smollm2", "llamacpp", scenarios=[scenario("grep")]))
    markdown = tmp_path / "c.md"
    outcome = CliRunner().invoke(main, ["compare", str(full), str(one), "--markdown", str(markdown)])
    assert outcome.exit_code == 0, outcome.output
    expected = "The runs cover different scenarios (full.json 3 of 3, one.json 1 of 3)"
    assert expected in " ".join(outcome.output.split())
    assert expected in markdown.read_text()
    again = write(tmp_path / "again.json", results("qwen3-8b-new", "vllm"))
    same = CliRunner().invoke(main, ["compare", str(full), str(again), "--markdown", str(markdown)])
    assert same.exit_code == 0, same.output
    assert "cover different scenarios" not in same.output + markdown.read_text()


def test_compare_says_why_each_run_failed_turns(tmp_path):
    failed = turn(0, passed=False, failure_class="backend_error")
    failed["error"] = {"type": "overloaded_error", "message": "backend at http://x:8000/v1 is not reachable"}
    files = [
        str(write(tmp_path / "good.json", results("good-model"))),
        str(
            write(tmp_path / "down.json", results("down-model", scenarios=[scenario("read-file", [failed])]))
        ),
    ]
    outcome = CliRunner().invoke(main, ["compare", *files])
    assert outcome.exit_code == 0, outcome.output
    assert "why down-model · vllm's turns failed:" in outcome.output
    assert "1 × overloaded_error: backend at http://x:8000/v1 is not reachable" in outcome.output
    assert "good-model · vllm's turns" not in outcome.output


def test_runs_sharing_no_scenario_are_named_in_terminal_markdown_and_html(tmp_path):
    """A smoke run beside a claude-code run: compare still shows both (it compares models) but says the rows
    measure different work; gate refuses such a pair."""
    smoke = [scenario("smoke-single-tool"), scenario("smoke-text")]
    code = [scenario("cc-read_edit", suite="claude-code")]
    a = write(tmp_path / "smoke.json", results("smollm2", "llamacpp", scenarios=smoke))
    b = write(tmp_path / "cc.json", results("qwen3-8b", "vllm", scenarios=code))
    markdown, html = tmp_path / "c.md", tmp_path / "c.html"
    argv = ["compare", str(a), str(b), "--markdown", str(markdown), "--html", str(html)]
    outcome = CliRunner().invoke(main, argv)
    assert outcome.exit_code == 0, outcome.output
    expected = "smoke.json (smoke) and cc.json (claude-code) share no scenario"
    assert f"warning: {expected}" in " ".join(outcome.output.split())
    assert expected in markdown.read_text() and expected in html.read_text()
    c = write(tmp_path / "smoke2.json", results("phi", "ollama", scenarios=smoke[:1]))
    three = " ".join(CliRunner().invoke(main, ["compare", str(a), str(b), str(c)]).output.split())
    assert "cc.json (claude-code) shares no scenario with the other runs" in three
    assert "smoke.json (smoke)" not in three.split("shares no scenario")[0]
    d = write(tmp_path / "live.json", results("glm", "vllm", scenarios=[scenario("other", suite="mine")]))
    apart = " ".join(CliRunner().invoke(main, ["compare", str(a), str(b), str(d)]).output.split())
    assert "no two of smoke.json (smoke), cc.json (claude-code), live.json (mine) share a scenario" in apart
    assert "cover different scenarios" not in apart  # the stronger warning says it
    overlapping = CliRunner().invoke(main, ["compare", str(a), str(c)]).output
    assert "share no scenario" not in overlapping and "shares no scenario" not in overlapping


QUANTS = ("Qwen2.5-Coder-32B-Instruct-AWQ", "Qwen2.5-Coder-32B-Instruct-GPTQ")
SIX = (*QUANTS, *(f"Qwen2.5-Coder-32B-Instruct-{q}" for q in ("Q4_K_M", "Q8_0", "FP8", "BF16")))


def _render(models: tuple[str, ...], width: int) -> str:
    """The compare table as an 80-column (or other) terminal shows it."""
    runs = [parse_results(results(model, "vllm"), f"{model}.json") for model in models]
    console = Console(width=width, record=True)
    console.print(compare_table(runs))
    return console.export_text()


def _header_cells(text: str) -> list[str]:
    """Each column's header as one string, its folded lines joined again."""
    lines = [line.strip()[1:-1] for line in text.splitlines() if line.strip().startswith("┃")]
    return [
        "".join(part.strip() for part in column)
        for column in zip(*(line.split("┃") for line in lines), strict=True)
    ]


def _first_cells(text: str) -> list[str]:
    """The first column of the body rows (the metric names of the turned table)."""
    return [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]


def test_long_model_names_stay_whole_in_a_wide_terminal() -> None:
    text = _render(QUANTS, 250)
    assert "…" not in text
    assert all(model in text for model in QUANTS)


@pytest.mark.parametrize(
    ("models", "width"), [(QUANTS, 80), (QUANTS, 100), (SIX[:5], 80), (SIX, 80), (SIX, 40)]
)
def test_long_model_names_are_never_cut_in_a_narrow_terminal(models: tuple[str, ...], width: int) -> None:
    """Two quantisations of one model differ only at the end of their names: at 80 columns rich shrank the
    Model column to "Qwen2.…" for both. A table too wide is turned (a column per run, headed by its name,
    folded onto more lines when needed); the metric names are folded, not cut ("count_tok…"), too."""
    text = _render(models, width)
    assert "…" not in text
    assert _header_cells(text) == ["", *models]
    assert _first_cells(text)[0].startswith("Ba")  # the turned table: a row per metric, Backend first


@pytest.mark.parametrize("models", [QUANTS, SIX])
def test_the_failing_scenarios_table_folds_long_names_too(models: tuple[str, ...]) -> None:
    """Its columns are headed "model · backend": cut at 80 columns, they read "Qwen2.5-C…" for every run."""
    broken = [scenario("a-scenario-with-a-long-identifying-name", [turn(0, passed=False)])]
    runs = [parse_results(results(model, "vllm", scenarios=broken), f"{model}.json") for model in models]
    console = Console(width=80, record=True)
    console.print(failing_scenarios_table(runs))
    text = console.export_text()
    assert "…" not in text
    headers = [cell.replace(" ", "") for cell in _header_cells(text)]  # a wrap at a space drops the space
    assert headers == ["Scenario", *(f"{model}·vllm" for model in models)]


def test_errors_are_per_run_in_compare_as_in_the_gate(tmp_path) -> None:
    """A --repeat 3 run with 3 errors (one per repeat) and a single run with 1 error are equally good: compare
    showed 3 against 1 (highlighting the single run) while the gate judged "no change"."""
    per_repeat = repeats([1.0] * 3, [200] * 3, [800] * 3, [1, 1, 1])
    repeated = results("qwen3-8b", "vllm", errors=3, per_repeat=per_repeat)
    single = results("qwen3-8b-new", "vllm", errors=1)
    worse = results("qwen3-8b-bad", "vllm", errors=2)
    rare = results(
        "qwen3-8b-rare", "vllm", errors=1, per_repeat=repeats([1.0] * 3, [200] * 3, [800] * 3, [1, 0, 0])
    )
    runs_data = (repeated, single, worse, rare)
    files = [str(write(tmp_path / f"{i}.json", data)) for i, data in enumerate(runs_data)]
    runs = [load_results_file(path) for path in files]
    markdown = compare_markdown(runs)
    header = next(line for line in markdown.splitlines() if line.startswith("| Model"))
    assert header.rstrip(" |").endswith("Errors per run")
    rows = [line for line in markdown.splitlines() if line.startswith("| qwen3-8b")]
    assert [row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows] == ["1", "1", "2", "**0.33**"]
    terminal = CliRunner().invoke(main, ["compare", *files])
    assert terminal.exit_code == 0, terminal.output
    assert "Errors per run" in terminal.output and "0.33" in terminal.output
    for baseline, candidate in ((0, 1), (1, 0)):  # the gate: the same numbers, "no change" either way
        gate = CliRunner().invoke(
            main, ["gate", "--baseline", files[baseline], "--candidate", files[candidate]]
        )
        assert gate.exit_code == 0, gate.output
        line = next(row for row in gate.output.splitlines() if "Errors per run" in row)
        assert "no change" in line
    assert [run.metrics["errors_per_run"] for run in runs] == [1.0, 1.0, 2.0, 1 / 3]


def test_the_same_file_twice_is_a_usage_error(files, tmp_path) -> None:
    """It showed the run twice; now exit 2 naming the file, also when the second name is a link or ./path."""
    twice = CliRunner().invoke(main, ["compare", files[0], files[1], files[0]])
    assert twice.exit_code == 2
    assert f"{files[0]} is given twice: name each results file once" in twice.output
    link = tmp_path / "link.json"
    link.symlink_to(files[1])
    aliased = CliRunner().invoke(main, ["compare", files[1], str(link)])
    assert aliased.exit_code == 2
    assert f"({files[1]} and {link} are the same file)" in aliased.output
    dotted = f"{tmp_path}/./run2.json"  # another spelling of files[2]
    spelled = CliRunner().invoke(main, ["compare", files[2], dotted])
    assert spelled.exit_code == 2 and "are the same file" in spelled.output
    assert CliRunner().invoke(main, ["compare", *files]).exit_code == 0  # distinct files are fine


def test_a_table_that_fits_keeps_every_header_word_whole() -> None:
    """At 180 columns (a CI log) rich's own shrinking split a header word ("count_toke" / "ns") and cut the
    last column at the edge, though the table fit with its words whole."""
    models = (
        "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
        "Qwen3-Coder-480B-A35B-Instruct-Q4_K_M.gguf",
        "qwen3-8b",
    )
    text = _render(models, 180)
    assert "count_tokens" in text and "…" not in text
    assert all(model in text for model in models)  # the row layout: each name on one line
    assert max(len(line) for line in text.splitlines()) <= 180
    assert text.splitlines()[-2].rstrip().endswith("│")  # the last column is there, closed by its border
