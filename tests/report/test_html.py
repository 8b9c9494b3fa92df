"""The HTML report: self-contained, escaped, and rendered for real in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report import write_html
from tests.report.factory import results, scenario, turn, write
from tests.report.png import decode_png, distinct_colours

EVIL_MODEL = "evil <script>alert(1)</script> model"
EVIL_INPUT = {"command": "</pre><script>alert('x')</script>", "url": "https://example.com/x.js"}


def report_runs() -> list[dict]:
    wrong = turn(
        0,
        passed=False,
        failure_class="model_wrong_tool",
        problems=["called Bash, expected Grep <b>bold</b>"],
        tool_calls=[{"name": "Bash", "input": EVIL_INPUT, "valid": True}],
        expected_tools=["Grep"],
    )
    return [
        results("qwen3-8b", "vllm"),
        results(
            EVIL_MODEL,
            "llamacpp",
            tool_call_success=0.5,
            scenarios=[scenario("read-file"), scenario("edit-file"), scenario("grep", [wrong])],
        ),
        results("smollm2-360m", "llamacpp", tool_call_success=None, schema_validity=0.9, latency_p95=2500.0),
    ]


@pytest.fixture
def html_file(tmp_path):
    files = [str(write(tmp_path / f"run{i}.json", data)) for i, data in enumerate(report_runs())]
    out = tmp_path / "report.html"
    outcome = CliRunner().invoke(main, ["compare", *files, "--html", str(out)])
    assert outcome.exit_code == 0, outcome.output
    return out


def test_html_has_models_cards_and_three_charts(html_file):
    text = html_file.read_text()
    assert text.startswith("<!DOCTYPE html>")
    for name in ("qwen3-8b", "smollm2-360m", "evil &lt;script&gt;alert(1)&lt;/script&gt; model"):
        assert name in text
    assert text.count('<div class="card">') == 3
    charts = re.findall(r'<svg class="chart"[^>]*aria-label="([^"]+)"', text)
    assert charts == ["Tool-call success", "Schema validity", "Latency (ms)"]
    assert text.count("<rect") >= 3 + 3 + 4 * 3  # bars (one null bar is text) + legend
    assert "— not measured" in text  # the null tool-call success draws no bar


def test_html_references_no_remote_asset(html_file):
    text = html_file.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert "<script" not in text.lower() and "@import" not in text and "<link" not in text.lower()


def test_html_escapes_untrusted_text(html_file):
    text = html_file.read_text()
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    details = re.search(r"<details>.*?</details>", text, re.S).group(0)
    assert "model_wrong_tool" in details and "<code>Bash</code>" in details and "<code>Grep</code>" in details


def test_write_html_accepts_one_results_dict(tmp_path):
    out = tmp_path / "single.html"
    write_html(results(failure_classes={"model_no_tool": 2, "backend_error": 0}), out)
    text = out.read_text()
    assert text.count('<div class="card">') == 1
    assert '<dd class="classes">model_no_tool 2</dd>' in text  # zero counts are left out


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (install it with .ci/steps/chromium.sh)")
    pytest.skip("chromium is not installed")


def run_chromium(binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=90, check=False)


def test_html_renders_in_headless_chromium(html_file, tmp_path):
    binary = find_chromium()
    png = tmp_path / "report.png"
    shot = run_chromium(binary, tmp_path, f"--screenshot={png}", html_file.as_uri())
    assert png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert len(data) > 20_000
    width, height, bpp, rows = decode_png(data, max_rows=1200)
    assert (width, height) == (1280, 2000)
    assert len(distinct_colours(rows, bpp)) > 50  # text, cards and charts, not a blank page
    painted = {row[x : x + 3] for row in rows for x in range(0, len(row), bpp)}
    assert bytes((0x1A, 0x7F, 0x37)) in painted  # a green bar of the rate charts was drawn
    assert bytes((0xCF, 0x22, 0x2E)) in painted  # the 50 % tool-call bar is red


def test_html_dom_after_rendering(html_file, tmp_path):
    binary = find_chromium()
    dom = run_chromium(binary, tmp_path, "--dump-dom", html_file.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<svg class="chart"') == 3
    assert "<script>alert" not in dom.stdout  # the hostile model name stayed text
    assert "evil &lt;script&gt;alert(1)&lt;/script&gt; model" in dom.stdout
    assert dom.stdout.count("<details>") == 1  # one failing scenario cell


def test_chart_labels_wrap_instead_of_being_cut():
    """Labels were cut to their start and end ("Qwen3-Co….gguf · llamacpp"), so two models differing only in
    the middle (sizes of one family in one quantisation) read the same left of their bars."""
    from harness.svg_charts import MAX_LABEL_LINES, Frame, Series, bar_chart

    frame = Frame(width=540, label_width=210)
    chars = (210 - 14) // 8
    assert frame.label_lines("qwen3-8b · vllm") == ["qwen3-8b · vllm"]
    path = "/models/very/long/directory/SmolLM2-135M-Instruct.Q4_1.gguf · llamacpp"
    assert "".join(frame.label_lines(path)).replace(" ", "") == path.rsplit("/", 1)[1].replace(" ", "")
    sizes = [f"Qwen3-Coder-{size}-Instruct-Q4_K_M.gguf · llamacpp" for size in ("30B-A3B", "480B-A35B")]
    wrapped = [frame.label_lines(label) for label in sizes]
    assert wrapped[0] != wrapped[1]
    for label, lines in zip(sizes, wrapped, strict=True):
        assert all(len(line) <= chars for line in lines) and len(lines) <= MAX_LABEL_LINES
        assert "".join(lines).replace(" ", "") == label.replace(" ", "")  # every character kept
    endless = "x" * 200 + " · vllm"
    lines = frame.label_lines(endless)
    assert len(lines) == MAX_LABEL_LINES and lines[-1].endswith("· vllm") and "…" in lines[-1]
    svg = bar_chart("t", sizes, [Series("s", "#000", [1.0, 2.0])], frame=frame)
    assert svg.count("<tspan") == sum(len(lines) for lines in wrapped)


def test_run_cards_say_why_turns_failed_escaped(tmp_path):
    failed = turn(0, passed=False, failure_class="backend_error")
    failed["error"] = {
        "type": "invalid_request_error",
        "message": "prompt is too long: 13248 tokens > 7872 <b>max</b>",
    }
    out = tmp_path / "why.html"
    write_html([results("ok-model"), results("small-ctx", scenarios=[scenario("read-file", [failed])])], out)
    text = out.read_text()
    (why,) = re.findall(r'<pre class="why">(.*?)</pre>', text, re.S)  # only the run with errors has one
    assert why.startswith("errors (1), most frequent first:\n1 × invalid_request_error: prompt is too long")
    assert "&lt;b&gt;max&lt;/b&gt;" in why and "<b>" not in why
    assert "→ the prompts do not fit the backend&#x27;s context" in why
