"""Set-up mistakes the proxy names with their fix. `--upstream http://host:8000` without the `/v1` nearly every
OpenAI-format server serves under: every request 404s; the error and the start-up banner say what to change (was
"backend rejected the request: 404: Not Found"). A context too small for Claude Code: the banner warns at start."""

from __future__ import annotations

import subprocess

import anthropic
import pytest

from proxy.banner import backend_lines, setup_lines
from proxy.config import Config
from proxy.upstream import BackendInfo, missing_v1_hint
from tests.proxy.conftest import ProxyFactory
from tests.proxy.fake_backend import FakeBackend, probe


@pytest.mark.parametrize(
    ("upstream", "upstream_format", "hinted"),
    [
        ("http://127.0.0.1:8000", "openai", True),
        ("http://127.0.0.1:8000/", "openai", True),
        ("http://gpu:8000/api", "openai", True),
        ("http://127.0.0.1:8000/v1", "openai", False),
        ("http://127.0.0.1:8000/api/v1/", "openai", False),
        ("http://127.0.0.1:8082", "anthropic", False),  # an Anthropic upstream is named by its root
    ],
)
def test_the_hint_is_for_openai_urls_without_v1(upstream, upstream_format, hinted):
    hint = missing_v1_hint(Config(upstream=upstream, upstream_format=upstream_format))
    assert (hint is not None) == hinted
    if hinted:
        assert hint == f"an OpenAI base URL usually ends in /v1: try {upstream.rstrip('/')}/v1"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_404_from_a_url_without_v1_says_what_to_change(start_proxy: ProxyFactory, stream: bool):
    async with FakeBackend() as backend:  # serves /v1/chat/completions, as vLLM and llama-server do
        proxy = await start_proxy(upstream=backend.root_url)
        client = proxy.sdk()
        messages = [{"role": "user", "content": "hi"}]
        with pytest.raises(anthropic.NotFoundError) as raised:
            if stream:
                async with client.messages.stream(
                    model="claude-sonnet-5", max_tokens=10, messages=messages
                ) as s:
                    await s.get_final_message()
            else:
                await client.messages.create(model="claude-sonnet-5", max_tokens=10, messages=messages)
    message = raised.value.body["error"]["message"]
    assert message.endswith(f"(an OpenAI base URL usually ends in /v1: try {backend.root_url}/v1)")


def test_the_banner_says_it_when_no_model_list_was_found():
    config = Config(upstream="http://127.0.0.1:8000")
    lines = backend_lines(config, BackendInfo(reachable=True, kind="unknown"))
    assert lines[-1] == (
        "  no model list at http://127.0.0.1:8000/models: an OpenAI base URL usually ends in /v1: "
        "try http://127.0.0.1:8000/v1"
    )
    listed = backend_lines(config, BackendInfo(reachable=True, kind="openai", models=["m"]))
    assert not any(
        "usually ends in /v1" in line for line in listed
    )  # a server that lists models there is fine


@pytest.mark.parametrize(
    ("probed", "configured", "warned"),
    [(8192, 0, True), (32768, 0, False), (32768, 4096, True), (None, 0, False)],
)
def test_the_banner_warns_when_the_context_cannot_take_claude_code(probed, configured, warned):
    """A server started with -c 8192 refuses every Claude Code request as too long; say so at start, not later."""
    config = Config(upstream="http://127.0.0.1:8000/v1", context_length=configured)
    lines = backend_lines(
        config, BackendInfo(reachable=True, kind="llamacpp", models=["m"], context_length=probed)
    )
    warnings = [line for line in lines if line.startswith("  warning: a context of")]
    assert bool(warnings) == warned
    if warned:
        window = configured or probed
        assert warnings[0] == (
            f"  warning: a context of {window:,} tokens cannot take Claude Code's requests (~13,000 tokens before "
            "any history): they will be refused as too long; start the server with at least 16,384"
        )


def test_a_configured_model_the_server_does_not_list_is_warned_about():
    """`--model fake-modle` (a typo) on a vLLM that serves fake-model: every request would be a 404."""
    listed = BackendInfo(reachable=True, kind="vllm", models=["fake-model"])
    typo = backend_lines(Config(upstream="http://127.0.0.1:8000/v1", model="fake-modle"), listed)
    assert typo[-1] == (
        "  warning: default model fake-modle is not among the models its server lists (fake-model): requests "
        "for it will likely fail with 404"
    )
    assert not any("warning" in line for line in backend_lines(Config(model="fake-model"), listed))
    assert not any("warning" in line for line in backend_lines(Config(), listed))  # the first listed is used
    llamacpp = BackendInfo(reachable=True, kind="llamacpp", models=["smollm"])
    assert not any("warning" in line for line in backend_lines(Config(model="any"), llamacpp))
    tiers = Config(tiers={"haiku": "small-typo"})
    assert any(line.startswith("  warning: haiku small-typo") for line in backend_lines(tiers, listed))


def test_the_key_line_of_the_banner_is_valid_shell_that_sets_the_key(tmp_path):
    """The line was `export ANTHROPIC_AUTH_TOKEN=<the key …>`, a syntax error when pasted into bash."""
    lines = setup_lines(Config(api_key="s3cret"), "127.0.0.1", 8082)
    assert not any("s3cret" in line for line in lines)  # the banner may end up in a log
    script = "\n".join([*lines, 'printf %s "$ANTHROPIC_AUTH_TOKEN"'])
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env={"CCBENCH_API_KEY": "s3cret"}, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "s3cret", "")


def test_a_set_context_length_says_where_it_came_from_and_what_the_server_has():
    """A real run: --context-length 20480 in front of a 4,096-token llama-server showed "set in config" (it was a
    flag) and hid the server's own window."""
    config = Config(upstream="http://127.0.0.1:8091/v1", context_length=20480)
    lines = backend_lines(config, BackendInfo(True, "llamacpp", ["smol"], 20480, server_context_length=4096))
    assert (
        "  context length: 20480 tokens (set with --context-length / context_length; the server reports 4096)"
        in lines
    )
    assert any(
        line.startswith("  warning: the set context length (20,480) is larger than the server's own (4,096)")
        for line in lines
    )
    same = backend_lines(config, BackendInfo(True, "llamacpp", ["smol"], 20480, server_context_length=32768))
    assert not any("larger than the server's own" in line for line in same)


async def test_the_probe_keeps_the_servers_own_window_beside_the_set_one():
    async with FakeBackend(max_model_len=4096) as backend:
        info = await probe(backend, context_length=20480)
    assert (info.context_length, info.server_context_length) == (20480, 4096)
