"""Ollama's real context window: `/api/ps` tells it once a model is loaded; `/v1/models` never does.

Ollama loads a model with 4,096 tokens of context by default on small GPUs and cuts a longer prompt without an
error, so Claude Code's ~13,000-token requests reach the model truncated. Knowing the window lets the proxy refuse
them as "prompt is too long" (which Claude Code shows) and say at start-up how to raise it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest

from proxy import backend_state
from proxy.backend_state import BackendFacts
from proxy.banner import OLLAMA_FIX, server_lines
from proxy.config import Config
from proxy.loaded_models import ollama_models
from proxy.translate.request import BackendProfile
from proxy.upstream import BackendInfo
from tests.proxy.conftest import MESSAGE, ProxyFactory, envelope
from tests.proxy.fake_backend import FakeBackend, probe

LONG = {**MESSAGE, "messages": [{"role": "user", "content": "word " * 8000}]}


@pytest.fixture
async def ollama() -> AsyncIterator[FakeBackend]:
    async with FakeBackend(model="qwen3:8b", max_model_len=None, ollama=True) as fake:
        yield fake


async def test_the_loaded_models_context_is_read(ollama: FakeBackend) -> None:
    ollama.ollama_loaded = {"llama3:8b": 8192, "qwen3:8b": 4096}
    info = await probe(ollama)
    assert (info.kind, info.models, info.context_length) == (
        "ollama",
        ["qwen3:8b"],
        4096,
    )  # the model it lists
    assert (await probe(ollama, model="llama3:8b")).context_length == 8192  # the configured one
    ollama.ollama_loaded = {"qwen3:8b-q4": 16384}
    assert (await probe(ollama)).context_length == 16384  # the only one loaded, under another tag
    ollama.ollama_loaded = {}
    assert (await probe(ollama)).context_length is None  # nothing loaded yet: not known
    ollama.ollama_loaded = {"qwen3:8b": 4096}
    assert (await probe(ollama, context_length=32768)).context_length == 32768  # the configured one wins


async def test_once_ollama_has_loaded_the_model_long_prompts_are_refused(
    ollama: FakeBackend, start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing loaded at start-up: the first request goes through (it loads the model); the proxy probes again,
    learns the 4,096-token window and refuses what Ollama would have cut, in the words Claude Code acts on."""
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    proxy = await start_proxy(upstream=ollama.url)
    assert (await proxy.post("/v1/messages", LONG)).status == 200
    ollama.ollama_loaded = {"qwen3:8b": 4096}  # what that first request made Ollama do
    assert (await proxy.post("/v1/messages", MESSAGE)).status == 200  # a short one still goes through
    message = await envelope(await proxy.post("/v1/messages", LONG), 400, "invalid_request_error")
    found = re.fullmatch(r"prompt is too long: (\d+) tokens > (\d+) maximum", message)
    assert found and int(found[1]) > 4096 > int(found[2]), message
    listed = (await (await proxy.http.get(proxy.url + "/v1/models")).json())["data"]
    assert {m["max_input_tokens"] for m in listed} == {4096}


def test_each_loaded_model_has_its_own_window() -> None:
    running = {"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "context_length": 2048},
        {"name": "qwen3:8b", "model": "qwen3:8b", "context_length": 32768},
        {"name": "broken", "model": "broken", "context_length": -1},
    ]}  # fmt: skip
    assert ollama_models(running).contexts == {"llama3.2:latest": 2048, "llama3.2": 2048, "qwen3:8b": 32768}
    assert ollama_models({"models": "junk"}).contexts == {} == ollama_models(None).contexts


def test_a_model_other_than_the_default_is_judged_by_its_own_window() -> None:
    profile = BackendProfile("none", False, None)
    ollama = BackendFacts("ollama", "qwen3:8b", 32768, profile, {"small": 2048}, probed_model="qwen3:8b")
    assert (ollama.context_for("qwen3:8b"), ollama.context_for("small"), ollama.context_for("new")) == (
        32768,
        2048,
        None,  # not loaded yet: the default's window says nothing about it
    )
    fixed = BackendFacts("ollama", "qwen3:8b", 8192, profile, {"small": 2048}, "qwen3:8b", context_fixed=True)
    assert fixed.context_for("small") == 8192  # --context-length holds for every model
    vllm = BackendFacts("vllm", "m", 32768, profile, {}, "m")
    assert vllm.context_for("anything") == 32768  # one server, one window


async def test_a_tier_routed_to_another_ollama_model_is_checked_against_that_models_window(
    ollama: FakeBackend, start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code's haiku calls routed to a small model on the same Ollama: its window, not the main model's,
    decides. Before it is loaded nothing is refused; the request that loads it makes the proxy look again."""
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    ollama.other_models = ["llama3.2:latest"]
    ollama.ollama_loaded = {"qwen3:8b": 32768}
    proxy = await start_proxy(upstream=ollama.url, tiers={"haiku": "llama3.2"})
    haiku_long = {**LONG, "model": "claude-haiku-4-5"}
    assert (await proxy.post("/v1/messages", LONG)).status == 200  # the main model's 32,768 tokens take it
    assert (await proxy.post("/v1/messages", haiku_long)).status == 200  # llama3.2 not loaded: not judged
    assert ollama.requests[-1].body["model"] == "llama3.2"
    ollama.ollama_loaded = {"qwen3:8b": 32768, "llama3.2:latest": 2048}  # what that request made Ollama do
    assert (await proxy.post("/v1/messages", {**MESSAGE, "model": "claude-haiku-4-5"})).status == 200
    message = await envelope(await proxy.post("/v1/messages", haiku_long), 400, "invalid_request_error")
    found = re.fullmatch(r"prompt is too long: (\d+) tokens > (\d+) maximum", message)
    assert found and int(found[2]) < 2048, message
    assert (await proxy.post("/v1/messages", LONG)).status == 200  # the main model is still judged by its own
    short_haiku = {**MESSAGE, "model": "claude-haiku-4-5", "max_tokens": 32000}
    assert (await proxy.post("/v1/messages", short_haiku)).status == 200
    assert ollama.requests[-1].body["max_tokens"] < 2048  # clamped to what the small window leaves
    listed = (await (await proxy.http.get(proxy.url + "/v1/models")).json())["data"]
    windows = {m["id"]: m["max_input_tokens"] for m in listed}
    assert windows["qwen3:8b"] == 32768 and windows["claude-haiku-local"] == 2048


def test_the_banner_says_how_to_give_ollama_a_larger_context() -> None:
    config = Config(upstream="http://127.0.0.1:11434/v1")
    small = server_lines(config, BackendInfo(True, "ollama", ["qwen3:8b"], 4096))
    assert small[-1].startswith("  warning: a context of 4,096 tokens cannot take Claude Code's requests")
    assert small[-1].endswith(OLLAMA_FIX)
    unknown = server_lines(config, BackendInfo(True, "ollama", ["qwen3:8b"], None))
    assert unknown[-1].startswith("  note: Ollama tells its context once a model is loaded")
    assert "OLLAMA_CONTEXT_LENGTH=65536" in unknown[-1]
    vllm = server_lines(config, dataclasses.replace(BackendInfo(True, "vllm", ["m"], None)))
    assert not any("Ollama" in line for line in vllm)
