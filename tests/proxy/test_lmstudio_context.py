"""LM Studio: the window of the loaded model (`/api/v1/models`, LM Studio 0.4+), and a default model that can chat.

LM Studio lists every downloaded model at `/v1/models` (embedding models included), loads one on the first request
that names it, with the context of its load settings, which no OpenAI endpoint tells. Its own API does, once the
model is loaded; knowing it lets the proxy refuse what does not fit as "prompt is too long" (what Claude Code
acts on), clamp max_tokens to it, and say at start-up how to load the model with more.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from proxy import backend_state
from proxy.banner import server_lines
from proxy.config import Config
from proxy.loaded_models import lmstudio_models, ollama_models
from proxy.upstream import BackendInfo
from tests.proxy.conftest import MESSAGE, ProxyFactory, envelope
from tests.proxy.fake_backend import FakeBackend, probe

LONG = {**MESSAGE, "messages": [{"role": "user", "content": "word " * 8000}]}


def entry(key: str, *windows: int, kind: str = "llm") -> dict:
    """One model in `/api/v1/models`' documented shape, loaded once per window given."""
    instances = [
        {"id": key if i == 0 else f"{key}:{i + 1}", "config": {"context_length": w}}
        for i, w in enumerate(windows)
    ]
    return {"type": kind, "publisher": "lmstudio-community", "key": key, "display_name": key,
            "loaded_instances": instances, "max_context_length": 131072, "format": "gguf"}  # fmt: skip


@pytest.fixture
async def lmstudio() -> AsyncIterator[FakeBackend]:
    async with FakeBackend(max_model_len=None, lmstudio=True) as fake:
        fake.lmstudio_models = [
            entry("nomic-embed", 2048, kind="embedding"),
            entry("qwen3-8b"),
            entry("gemma-3"),
        ]
        yield fake


def test_only_lm_studios_shape_is_taken_for_it() -> None:
    assert lmstudio_models(None) is None
    assert lmstudio_models({"data": []}) is None
    ollama_tags = {"models": [{"name": "llama3:8b", "model": "llama3:8b"}]}  # Ollama's /api/tags
    assert lmstudio_models(ollama_tags) is None
    listing = [entry("a", 8192, 4096), entry("e", 512, kind="embedding"), entry("b"), "junk"]
    found = lmstudio_models({"models": listing})
    assert found is not None
    assert (found.context("a"), found.context("a:2"), found.context("b")) == (8192, 4096, None)
    assert found.default_first(["e", "x", "b", "a"]) == ["a", "b", "e", "x"]  # loaded LLM, LLM, the rest
    bad_window = lmstudio_models({"models": [entry("a", -5)]})
    assert bad_window is not None and bad_window.context("a") is None


def test_ollamas_loaded_window_is_read_from_api_ps() -> None:
    running = {"models": [{"model": "qwen3:8b", "context_length": 4096}]}
    assert ollama_models(running).context("qwen3:8b") == 4096
    assert ollama_models(running).context("other") == 4096  # the only one loaded
    assert ollama_models({"models": []}).context("qwen3:8b") is None
    assert ollama_models("garbage").context(None) is None


async def test_the_probe_finds_the_loaded_window_and_a_default_that_chats(lmstudio: FakeBackend) -> None:
    info = await probe(lmstudio)
    assert (info.kind, info.models, info.context_length) == (
        "lmstudio",
        ["qwen3-8b", "gemma-3", "nomic-embed"],
        None,
    )
    lmstudio.lmstudio_models[2] = entry("gemma-3", 32768)
    info = await probe(lmstudio)
    assert (info.models[0], info.context_length) == ("gemma-3", 32768)  # the loaded one is the default
    assert (await probe(lmstudio, model="qwen3-8b")).context_length is None  # named, not loaded yet
    assert (await probe(lmstudio, context_length=8192)).context_length == 8192  # the configured one wins


async def test_a_plain_openai_server_is_not_taken_for_lm_studio() -> None:
    async with FakeBackend(max_model_len=None) as plain:  # /api/v1/models: 404
        assert ((info := await probe(plain)).kind, info.models) == ("openai", ["fake-model"])
    async with FakeBackend(max_model_len=None, lmstudio=True) as other:  # answers it, in no LM Studio shape
        assert (await probe(other)).kind == "openai"


async def test_once_lm_studio_has_loaded_the_model_long_prompts_are_refused(
    lmstudio: FakeBackend, start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing loaded at start-up: requests name a model that can chat (not the embedding model listed first) and
    go through; once LM Studio has loaded it with 4,096 tokens, longer prompts are refused in Claude Code's words
    and max_tokens is clamped to what the window leaves."""
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    proxy = await start_proxy(upstream=lmstudio.url)
    assert (await proxy.post("/v1/messages", LONG)).status == 200
    assert lmstudio.requests[-1].body["model"] == "qwen3-8b"
    lmstudio.lmstudio_models[1] = entry("qwen3-8b", 4096)  # what that first request made LM Studio do
    assert (await proxy.post("/v1/messages", MESSAGE)).status == 200
    message = await envelope(await proxy.post("/v1/messages", LONG), 400, "invalid_request_error")
    found = re.fullmatch(r"prompt is too long: (\d+) tokens > (\d+) maximum", message)
    assert found and int(found[1]) > 4096 > int(found[2]), message
    assert (await proxy.post("/v1/messages", {**MESSAGE, "max_tokens": 32000})).status == 200
    sent = lmstudio.requests[-1].body
    assert sent["model"] == "qwen3-8b" and sent["max_tokens"] < 4096
    listed = (await (await proxy.http.get(proxy.url + "/v1/models")).json())["data"]
    windows = {m["id"]: m["max_input_tokens"] for m in listed}
    # each model with its own window: the embedding model's load settings, nothing for one not loaded
    assert windows == {"qwen3-8b": 4096, "claude-local": 4096, "nomic-embed": 2048, "gemma-3": None}


def test_the_banner_says_how_to_load_the_model_with_more_context() -> None:
    config = Config(upstream="http://127.0.0.1:1234/v1")
    small = server_lines(config, BackendInfo(True, "lmstudio", ["qwen3-8b"], 4096))
    assert small[-1].startswith("  warning: a context of 4,096 tokens cannot take Claude Code's requests")
    assert small[-1].endswith("lms load qwen3-8b --context-length 65536")
    unknown = server_lines(config, BackendInfo(True, "lmstudio", ["qwen3-8b"], None))
    assert unknown[-1].startswith("  note: LM Studio tells its context once the model is loaded")
    assert unknown[-1].endswith("lms load qwen3-8b --context-length 65536")
    fine = server_lines(config, BackendInfo(True, "lmstudio", ["qwen3-8b"], 65536))
    assert not any("lms load" in line for line in fine)
