"""The error digest under `ccbench run`'s table: grouped errors with what to do about them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from harness.cli import main
from harness.error_digest import CONTEXT_HINT, digest_lines, error_digest
from tests.proxy.backend_thread import BackendThread
from tests.proxy.fake_backend import FakeBackend, Reply

TOO_LONG = "prompt is too long: {} tokens > 7872 maximum"


def test_errors_that_differ_only_in_numbers_are_one_group_with_a_hint():
    errors = [{"type": "invalid_request_error", "message": TOO_LONG.format(n)} for n in (12395, 13248, 12405)]
    overloaded = {
        "type": "overloaded_error",
        "message": "backend at http://127.0.0.1:8000/v1 is not reachable",
    }
    digest = error_digest([*errors, None, overloaded])
    assert digest.total == 4 and digest.other_groups == 0 and digest.largest_prompt == 13248
    first, second = digest.groups
    assert (first.count, first.kind, first.example) == (3, "invalid_request_error", TOO_LONG.format(12395))
    assert first.hint == CONTEXT_HINT
    assert second.count == 1 and "still up" in (second.hint or "")
    lines = digest_lines(digest)
    assert lines[0] == "errors (4), most frequent first:"
    assert lines[1] == f"  3 × invalid_request_error: {TOO_LONG.format(12395)}"
    assert "llama-server -c N" in lines[2] and lines[2].endswith("the largest prompt here was 13,248 tokens")


def test_only_the_most_frequent_kinds_are_listed_and_the_rest_counted():
    errors = [{"type": f"kind_{n}", "message": "x"} for n in range(5) for _ in range(n + 1)]
    digest = error_digest(errors, limit=2)
    assert [g.kind for g in digest.groups] == ["kind_4", "kind_3"] and digest.other_groups == 3
    assert digest_lines(digest)[-1] == "  … and 3 other kind(s): see the results file or --html"
    assert all(g.hint is None for g in digest.groups)  # no advice invented for unknown errors


def test_no_errors_print_nothing_and_long_messages_are_cut():
    assert digest_lines(error_digest([None, None])) == []
    long = {"type": "api_error", "message": "y" * 500}
    lines = digest_lines(error_digest([long]), width=80)
    assert len(lines[1]) == len("  1 × api_error: ") + 80 and lines[1].endswith("…")


def test_timeouts_and_context_limits_in_other_words_get_their_hint():
    for kind, message, fragment in [
        ("timeout_error", "backend at X sent nothing for 30 s (read_timeout)", "--timeout"),
        ("no_response", "TimeoutError", "--timeout"),
        (
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 9000 + 128 > 8192",
            "-c N",
        ),
        ("rate_limit_error", "backend rate limit: slow down", "--concurrency"),
        (
            "invalid_request_error",
            "the backend is not set up for this request: tools param requires --jinja flag",
            "restart llama-server with --jinja",
        ),
        (  # Ollama's 400 for a model whose template has no tools
            "invalid_request_error",
            "backend rejected the request: registry.ollama.ai/library/gemma:2b does not support tools",
            "pick a model with tool calling",
        ),
        (  # vLLM's 400 when tools come without its parser (it defaults tool_choice to "auto" when tools are sent)
            "invalid_request_error",
            'backend rejected the request: "auto" tool choice requires --enable-auto-tool-choice and '
            "--tool-call-parser to be set",
            "restart it with --enable-auto-tool-choice --tool-call-parser NAME (hermes",
        ),
    ]:
        digest = error_digest([{"type": kind, "message": message}])
        assert fragment in (digest.groups[0].hint or ""), (kind, message)
    limit = {
        "type": "invalid_request_error",
        "message": "input length and `max_tokens` exceed context limit: 9000 + 128 > 8192",
    }
    assert error_digest([limit]).largest_prompt == 9000


def test_run_prints_the_digest_for_a_backend_whose_context_is_too_small(tmp_path):
    """End to end through the in-process proxy: vLLM's context-length 400 becomes Anthropic's "prompt is too
    long", and the run says what to do about it under the table."""
    message = (
        "This model's maximum context length is 4096 tokens. However, you requested 12000 tokens "
        "(11872 in the messages, 128 in the completion). Please reduce the length of the messages or completion."
    )
    backend = FakeBackend(Reply.error(400, message), max_model_len=None)
    with BackendThread(backend) as running:
        out = tmp_path / "r.json"
        result = CliRunner().invoke(
            main,
            ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke", "--out", str(out)],
        )
    assert result.exit_code == 0, result.output
    turns = [
        t for s in json.loads(out.read_text())["scenarios"] for t in s["turns"] if t["kind"] == "messages"
    ]
    assert turns and all(t["error"]["message"].startswith("prompt is too long: 11872 tokens") for t in turns)
    assert (
        f"{len(turns)} × invalid_request_error: prompt is too long: 11872 tokens > 4096 maximum"
        in result.output
    )
    assert (
        "start it with a larger one" in result.output
        and "largest prompt here was 11,872 tokens" in result.output
    )


def test_the_context_hint_names_ccbench_own_launcher():
    """`ccbench backend start llamacpp` is how this project starts llama-server: its --ctx is the fix there."""
    assert "ccbench backend start llamacpp --ctx N" in CONTEXT_HINT
