"""Through the app: max_tokens fitted into the backend's context, "prompt is too long" in Claude Code's wording,
a backend's own overflow translated, and /v1/messages/count_tokens per backend kind."""

from __future__ import annotations

import math

import anthropic
import orjson
import pytest

from proxy.tokens import (
    CONTEXT_MARGIN,
    ESTIMATE_OVERCOUNT,
    MIN_OUTPUT_TOKENS,
    estimate_tokens,
)
from proxy.translate.request import BackendProfile, translate_request
from tests.proxy.conftest import MESSAGE, REQUEST_ID, ProxyFactory, RunningProxy, envelope
from tests.proxy.fake_backend import FakeBackend, Reply


# -- through the app: max_tokens clamping and "prompt is too long" ------------------------------------------
async def test_max_tokens_is_clamped_to_the_context(start_proxy: ProxyFactory) -> None:
    async with FakeBackend(max_model_len=4096) as backend:
        proxy = await start_proxy(upstream=backend.url)
        await proxy.sdk().messages.create(**{**MESSAGE, "max_tokens": 32000})
        sent = backend.requests[-1].body
    assert sent["max_tokens"] == 4096 - estimate_tokens(sent) - CONTEXT_MARGIN


async def test_small_max_tokens_and_configured_cap_are_kept(backend, start_proxy) -> None:
    proxy = await start_proxy(upstream=backend.url, max_output_tokens=300)
    await proxy.sdk().messages.create(**{**MESSAGE, "max_tokens": 32000})
    assert backend.requests[-1].body["max_tokens"] == 300
    await proxy.sdk().messages.create(**{**MESSAGE, "max_tokens": 50})
    assert backend.requests[-1].body["max_tokens"] == 50


async def test_prompt_too_long_is_refused_with_claude_codes_wording(start_proxy: ProxyFactory) -> None:
    async with FakeBackend(max_model_len=1024) as backend:
        proxy = await start_proxy(upstream=backend.url)
        long = {**MESSAGE, "messages": [{"role": "user", "content": "lorem ipsum " * 800}]}
        message = await envelope(await proxy.post("/v1/messages", long), 400, "invalid_request_error")
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):  # a stream: same 400
            async with proxy.sdk().messages.stream(**long) as stream:
                await stream.get_final_message()
        tokenize = [r for r in backend.requests if r.path == "/tokenize"]
        assert [r for r in backend.requests if r.path.endswith("/chat/completions")] == []
    counted = -(-len(orjson.dumps(tokenize[-1].body["messages"])) // 4)  # what the fake tokenizer answered
    assert (
        message
        == f"prompt is too long: {counted} tokens > {1024 - CONTEXT_MARGIN - MIN_OUTPUT_TOKENS} maximum"
    )


async def test_near_limit_estimate_is_confirmed_by_the_tokenizer_before_refusing(start_proxy) -> None:
    # "a " * 600 estimates at 1.3 tokens per word (> the 704-token limit) but the fake tokenizer counts
    # about one token per 4 characters: the request must go through, clamped with the exact count.
    async with FakeBackend(max_model_len=1024) as backend:
        proxy = await start_proxy(upstream=backend.url)
        body = {**MESSAGE, "messages": [{"role": "user", "content": "a " * 600}]}
        await proxy.sdk().messages.create(**body)
        tokenized = [r for r in backend.requests if r.path == "/tokenize"][-1]
        sent = backend.requests[-1].body
    assert estimate_tokens(sent) > 1024 - CONTEXT_MARGIN - MIN_OUTPUT_TOKENS
    assert tokenized.body["messages"] == sent["messages"]
    assert 0 < sent["max_tokens"] < 1024 - CONTEXT_MARGIN


def _estimated(body: dict) -> int:
    return estimate_tokens(translate_request(body, "m", BackendProfile()).body)


@pytest.mark.parametrize("kind", ["lmstudio", "openai", "ollama"])
async def test_without_a_tokenizer_only_a_silent_truncator_is_refused_on_the_estimates_margin(
    kind: str, start_proxy: ProxyFactory
) -> None:
    """The estimate overcounts on purpose (1.29x llama.cpp's count on Claude Code's requests). With no
    tokenizer to confirm it, a prompt over the limit by less than that margin goes to a server that refuses
    what does not fit by itself, with max_tokens fitted to the estimate without its excess; Ollama, which cuts
    such a prompt without an error, still gets it refused."""
    window = 4096
    limit = window - CONTEXT_MARGIN - MIN_OUTPUT_TOKENS
    body = {**MESSAGE, "max_tokens": 32000, "messages": [{"role": "user", "content": "lorem ipsum " * 1020}]}
    estimate = _estimated(body)
    assert limit < estimate and estimate / ESTIMATE_OVERCOUNT < limit  # the case under test
    servers = {"lmstudio": {"lmstudio": True}, "ollama": {"ollama": True}, "openai": {}}
    async with FakeBackend(max_model_len=None, **servers[kind]) as backend:
        backend.lmstudio_models = (
            [{"key": "m", "type": "llm", "loaded_instances": []}] if kind == "lmstudio" else []
        )
        proxy = await start_proxy(upstream=backend.url, context_length=window)
        response = await proxy.post("/v1/messages", body)
        if kind == "ollama":
            message = await envelope(response, 400, "invalid_request_error")
            assert message == f"prompt is too long: {estimate} tokens > {limit} maximum"
            return
        assert response.status == 200, await response.text()
        sent = backend.requests[-1].body
    likely = math.ceil(estimate / ESTIMATE_OVERCOUNT)
    assert sent["max_tokens"] == window - likely - CONTEXT_MARGIN


async def test_without_a_tokenizer_a_prompt_far_over_the_limit_is_still_refused(
    start_proxy: ProxyFactory,
) -> None:
    window = 4096
    limit = window - CONTEXT_MARGIN - MIN_OUTPUT_TOKENS
    body = {**MESSAGE, "messages": [{"role": "user", "content": "lorem ipsum " * 1400}]}
    estimate = _estimated(body)
    assert estimate / ESTIMATE_OVERCOUNT > limit
    async with FakeBackend(max_model_len=None) as backend:
        proxy = await start_proxy(upstream=backend.url, context_length=window)
        message = await envelope(await proxy.post("/v1/messages", body), 400, "invalid_request_error")
        assert [r for r in backend.requests if r.path.endswith("/chat/completions")] == []
    assert (
        message == f"prompt is too long: {math.ceil(estimate / ESTIMATE_OVERCOUNT)} tokens > {limit} maximum"
    )


async def test_backend_context_overflow_is_translated(proxy: RunningProxy, backend: FakeBackend) -> None:
    backend.push(
        Reply(
            status=400,
            body={
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 40000,
                    "n_ctx": 32768,
                }
            },
        )
    )
    message = await envelope(await proxy.post("/v1/messages", MESSAGE), 400, "invalid_request_error")
    assert message == "prompt is too long: 40000 tokens > 32768 maximum"


# -- count_tokens ------------------------------------------------------------------------------------------------
COUNT = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "count me please"}]}


async def test_count_tokens_with_llamacpp_tokenizer(start_proxy: ProxyFactory) -> None:
    async with FakeBackend(llamacpp=True) as backend:
        proxy = await start_proxy(upstream=backend.url)
        result = await proxy.sdk().messages.count_tokens(**COUNT)
        template = [r for r in backend.requests if r.path == "/apply-template"][-1]
        tokenize = [r for r in backend.requests if r.path == "/tokenize"][-1]
    assert template.body["messages"] == [{"role": "user", "content": "count me please"}]
    assert tokenize.body == {"content": "<|user|>count me please\n", "add_special": True}
    assert result.input_tokens == -(-len("<|user|>count me please\n") // 4)


async def test_count_tokens_with_vllm_tokenizer(proxy: RunningProxy, backend: FakeBackend) -> None:
    response = await proxy.post("/v1/messages/count_tokens?beta=true", COUNT)
    assert response.status == 200 and REQUEST_ID.match(response.headers["request-id"])
    tokenize = [r for r in backend.requests if r.path == "/tokenize"][-1]
    assert tokenize.body["messages"] == [{"role": "user", "content": "count me please"}]
    assert await response.json() == {
        "input_tokens": -(-len('[{"role":"user","content":"count me please"}]') // 4)
    }


async def test_count_tokens_estimate_for_plain_openai_servers(start_proxy: ProxyFactory) -> None:
    async with FakeBackend(max_model_len=None) as backend:  # no max_model_len: a generic OpenAI server
        proxy = await start_proxy(upstream=backend.url)
        result = await (await proxy.post("/v1/messages/count_tokens", COUNT)).json()
        assert not [r for r in backend.requests if r.path == "/tokenize"]
    translated = translate_request(
        {**COUNT, "max_tokens": 1}, "fake-model", BackendProfile(thinking_style="none")
    )
    assert result == {"input_tokens": estimate_tokens(translated.body)}


async def test_count_tokens_validates_the_body(proxy: RunningProxy) -> None:
    response = await proxy.post("/v1/messages/count_tokens", {"model": "m"})
    assert "messages" in await envelope(response, 400, "invalid_request_error")
