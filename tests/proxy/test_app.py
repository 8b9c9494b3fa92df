"""The application around the translation: routes, envelopes, request ids, auth, routing, context fitting,
count_tokens and the start-up banner, all through the real app on 127.0.0.1 in front of a fake backend."""

from __future__ import annotations

import asyncio
import logging
import re

import anthropic
import jsonschema
import pytest

from proxy import backend_state
from proxy import handlers as handlers_module
from proxy.banner import banner_text
from proxy.config import Config, RouteRule
from proxy.upstream import BackendInfo
from tests.proxy.conftest import MESSAGE, REQUEST_ID, ProxyFactory, RunningProxy, envelope
from tests.proxy.fake_backend import FakeBackend, Reply, chunk, closed_port_url, usage_chunk

MODEL_INFO = {
    "type": "object",
    "required": ["type", "id", "display_name", "created_at"],
    "properties": {
        "type": {"const": "model"},
        "id": {"type": "string", "minLength": 1},
        "display_name": {"type": "string"},
        "created_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
        "max_input_tokens": {"type": ["integer", "null"]},
    },
}
MODEL_LIST = {
    "type": "object",
    "required": ["data", "first_id", "last_id", "has_more"],
    "additionalProperties": False,
    "properties": {
        "data": {"type": "array", "items": MODEL_INFO},
        "first_id": {"type": ["string", "null"]},
        "last_id": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"},
    },
}


# -- simple routes -----------------------------------------------------------------------------------------------
async def test_health_reports_the_probed_backend(proxy: RunningProxy, backend: FakeBackend) -> None:
    response = await proxy.http.get(proxy.url + "/health")
    assert response.status == 200 and REQUEST_ID.match(response.headers["request-id"])
    body = await response.json()
    assert body["status"] == "ok"
    assert body["backend"] | {"url": None} == {
        "url": None,
        "format": "openai",
        "reachable": True,
        "kind": "vllm",
        "models": ["fake-model"],
        "context_length": 32768,
    }


async def test_health_while_the_backend_is_down(start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=closed_port_url())
    response = await proxy.http.get(proxy.url + "/health")
    assert response.status == 200
    assert (await response.json())["backend"]["reachable"] is False


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("HEAD", "/"), ("HEAD", "/api/hello")])
async def test_probes_are_answered_harmlessly(proxy: RunningProxy, method: str, path: str) -> None:
    response = await proxy.http.request(method, proxy.url + path)
    assert response.status == 200 and REQUEST_ID.match(response.headers["request-id"])


async def test_a_base_url_ending_in_v1_gets_told_so(proxy: RunningProxy) -> None:
    """ANTHROPIC_BASE_URL=http://127.0.0.1:8082/v1: Claude Code posts to /v1/v1/messages?beta=true."""
    client = proxy.sdk()
    client = client.with_options(base_url=proxy.url + "/v1")
    with pytest.raises(anthropic.NotFoundError) as raised:
        await client.messages.create(
            model="claude-sonnet-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.body["error"]["message"] == (
        "not found: POST /v1/v1/messages (ANTHROPIC_BASE_URL must not end in /v1: Claude Code adds /v1/messages itself)"
    )


async def test_unknown_path_is_a_404_envelope(proxy: RunningProxy) -> None:
    message = await envelope(await proxy.http.get(proxy.url + "/v1/complete"), 404, "not_found_error")
    assert "/v1/complete" in message


async def test_wrong_method_is_a_405_envelope_with_allow(proxy: RunningProxy) -> None:
    response = await proxy.http.get(proxy.url + "/v1/messages")
    await envelope(response, 405, "invalid_request_error")
    assert "POST" in response.headers["Allow"]


async def test_models_list_shape_aliases_and_paging(backend: FakeBackend, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=backend.url, tiers={"haiku": "small", "opus": "fake-model"})
    response = await proxy.http.get(proxy.url + "/v1/models?limit=1000")
    page = await response.json()
    jsonschema.validate(page, MODEL_LIST)
    ids = [m["id"] for m in page["data"]]
    assert ids == ["fake-model", "claude-haiku-local", "claude-opus-local"]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[0], ids[-1], False)
    assert all(m["max_input_tokens"] == 32768 for m in page["data"])
    first = await (await proxy.http.get(proxy.url + "/v1/models?limit=1")).json()
    assert [m["id"] for m in first["data"]] == ["fake-model"] and first["has_more"] is True
    rest = await (await proxy.http.get(proxy.url + "/v1/models?after_id=fake-model")).json()
    assert [m["id"] for m in rest["data"]] == ids[1:]
    await envelope(await proxy.http.get(proxy.url + "/v1/models?limit=0"), 400, "invalid_request_error")


async def test_models_list_has_a_claude_alias_without_tiers(proxy: RunningProxy) -> None:
    listing = await proxy.sdk().models.list()
    assert [m.id for m in listing.data] == ["fake-model", "claude-local"]


async def test_single_model_and_unknown_model(proxy: RunningProxy) -> None:
    response = await proxy.http.get(proxy.url + "/v1/models/claude-local")
    jsonschema.validate(await response.json(), MODEL_INFO)
    message = await envelope(await proxy.http.get(proxy.url + "/v1/models/nope"), 404, "not_found_error")
    assert "nope" in message


# -- request errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"model": ', "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"", "empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"model": "m", "max_tokens": 5}', "messages"),
        (b'{"model": "m", "max_tokens": "many", "messages": []}', "max_tokens"),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [{"role": null, "content": "x"}]}',
            "messages.0.role",
        ),
    ],
)
async def test_bad_bodies_get_a_400_naming_the_problem(
    proxy: RunningProxy, data: bytes, fragment: str
) -> None:
    response = await proxy.http.post(proxy.url + "/v1/messages?beta=true", data=data)
    assert fragment in await envelope(response, 400, "invalid_request_error")


async def test_too_large_body_is_413_by_length_and_when_chunked(backend: FakeBackend, start_proxy) -> None:
    proxy = await start_proxy(upstream=backend.url, max_body_bytes=2000)
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    await envelope(await proxy.http.post(proxy.url + "/v1/messages", data=big), 413, "request_too_large")

    async def chunked():
        yield big

    response = await proxy.http.post(proxy.url + "/v1/messages", data=chunked())
    await envelope(response, 413, "request_too_large")
    assert [r for r in backend.requests if r.path.endswith("/chat/completions")] == []


async def test_unexpected_error_is_a_generic_500(proxy: RunningProxy, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(handlers_module, "translate_request", broken)
    response = await proxy.post("/v1/messages", MESSAGE)
    message = await envelope(response, 500, "api_error")
    assert "secret" not in message and response.headers["request-id"] in message
    assert "secret internal detail" in caplog.text  # logged server-side, with the traceback


async def test_unreachable_backend_is_529(start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=closed_port_url())
    await envelope(await proxy.post("/v1/messages", MESSAGE), 529, "overloaded_error")


# -- auth --------------------------------------------------------------------------------------------------------
async def test_auth_accepts_x_api_key_and_bearer_and_rejects_others(backend, start_proxy) -> None:
    proxy = await start_proxy(upstream=backend.url, api_key="s3cret")
    ok = await proxy.sdk(api_key="s3cret").messages.create(**MESSAGE)
    assert ok.content[0].text == "Hello from the fake."
    bearer = anthropic.AsyncAnthropic(base_url=proxy.url, auth_token="s3cret", max_retries=0)
    proxy.clients.append(bearer)  # closed with the proxy
    assert (await bearer.messages.create(**MESSAGE)).stop_reason == "end_turn"
    with pytest.raises(anthropic.AuthenticationError):
        await proxy.sdk(api_key="wrong").messages.create(**MESSAGE)
    await envelope(await proxy.post("/v1/messages", MESSAGE), 401, "authentication_error")
    await envelope(await proxy.http.get(proxy.url + "/v1/models"), 401, "authentication_error")
    assert (await proxy.http.get(proxy.url + "/health")).status == 200  # stays open
    assert "s3cret" not in str(backend.requests[-1].headers)  # the inbound key is not sent on


async def test_without_a_configured_key_any_key_works(proxy: RunningProxy) -> None:
    assert (await proxy.sdk(api_key="anything").messages.create(**MESSAGE)).content


# -- routing, thinking, headers ----------------------------------------------------------------------------------
async def test_model_routing_rules_tiers_default(backend: FakeBackend, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(
        upstream=backend.url,
        model="default-model",
        tiers={"haiku": "small-model"},
        rules=[RouteRule("claude-sonnet-*", "mid-model")],
    )
    client = proxy.sdk()
    for requested, expected in [
        ("claude-haiku-4-5-20251001", "small-model"),
        ("claude-sonnet-4-6", "mid-model"),
        ("claude-opus-5-5", "default-model"),
    ]:
        message = await client.messages.create(**{**MESSAGE, "model": requested})
        assert backend.requests[-1].body["model"] == expected
        assert message.model == requested  # the client sees the name it asked for


async def test_routing_falls_back_to_the_first_backend_model(
    proxy: RunningProxy, backend: FakeBackend
) -> None:
    await proxy.sdk().messages.create(**MESSAGE)
    assert backend.requests[-1].body["model"] == "fake-model"


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ("auto", {"chat_template_kwargs": {"enable_thinking": True}}),
        ("reasoning_effort", {"reasoning_effort": "high"}),
        ("none", {}),
    ],
)
async def test_thinking_style(backend: FakeBackend, start_proxy, thinking: str, expected: dict) -> None:
    proxy = await start_proxy(upstream=backend.url, thinking=thinking)
    body = {**MESSAGE, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    await proxy.post("/v1/messages", body)
    sent = backend.requests[-1].body
    assert {k: sent[k] for k in ("chat_template_kwargs", "reasoning_effort") if k in sent} == {
        **({"reasoning_effort": "high"} if thinking == "auto" else {}),
        **expected,
    }


async def test_forward_headers_reach_the_backend(proxy: RunningProxy, backend: FakeBackend) -> None:
    await proxy.post("/v1/messages", MESSAGE, headers={"x-ccbench-turn": "s1/3", "x-other": "no"})
    assert backend.requests[-1].headers.get("x-ccbench-turn") == "s1/3"
    assert "x-other" not in {k.lower() for k in backend.requests[-1].headers}
    async with proxy.sdk().messages.stream(**MESSAGE, extra_headers={"x-ccbench-turn": "s1/4"}) as stream:
        await stream.get_final_message()
    assert backend.requests[-1].headers.get("x-ccbench-turn") == "s1/4"


async def test_stream_has_a_request_id_and_the_sdk_accumulates_it(proxy: RunningProxy) -> None:
    async with proxy.sdk().messages.stream(**MESSAGE) as stream:
        final = await stream.get_final_message()
        assert REQUEST_ID.match(stream.response.headers["request-id"])
    assert final.content[0].text == "Hello from the fake." and final.stop_reason == "end_turn"


# -- request log -------------------------------------------------------------------------------------------------
async def test_one_log_line_per_request_with_models_status_timing_tokens(proxy: RunningProxy, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="ccbench.proxy.requests")
    await proxy.sdk().messages.create(**MESSAGE)
    async with proxy.sdk().messages.stream(**MESSAGE) as stream:
        await stream.get_final_message()
    await proxy.http.get(proxy.url + "/v1/nope")
    lines = [r for r in caplog.records if r.name == "ccbench.proxy.requests"]
    assert len(lines) == 3
    assert re.fullmatch(
        r"req_\w+ POST /v1/messages claude-opus-5-5 -> fake-model 200 ttft=- dur=\d+ms in=10 out=5",
        lines[0].getMessage(),
    )
    assert re.fullmatch(
        r"req_\w+ POST /v1/messages claude-opus-5-5 -> fake-model stream 200 ttft=\d+ms dur=\d+ms in=10 out=5",
        lines[1].getMessage(),
    )
    assert re.search(
        r' GET /v1/nope 404 not_found_error ttft=- dur=\d+ms in=- out=- reason="not found: GET /v1/nope"$',
        lines[2].getMessage(),
    )


async def test_a_streaming_request_refused_early_is_logged_as_a_stream_with_its_reason(
    start_proxy: ProxyFactory, caplog
) -> None:
    """Found with real Claude Code: a refused stream had no `stream` tag (so non-streaming fallbacks could not be
    counted from the log) and the line did not say why it failed."""
    caplog.set_level(logging.INFO, logger="ccbench.proxy.requests")
    async with FakeBackend(max_model_len=1024) as backend:
        proxy = await start_proxy(upstream=backend.url)
        long = {**MESSAGE, "stream": True, "messages": [{"role": "user", "content": "lorem ipsum " * 800}]}
        assert (await proxy.post("/v1/messages", long)).status == 400
    line = next(r.getMessage() for r in caplog.records if "POST /v1/messages" in r.getMessage())
    assert re.search(
        r' stream 400 invalid_request_error .* reason="prompt is too long: \d+ tokens > 704 maximum"$', line
    )


async def test_repaired_tool_arguments_are_counted_in_the_log_line(
    backend, proxy: RunningProxy, caplog
) -> None:
    """Broken tool-argument JSON from the backend is repaired and reported, never passed off silently."""
    caplog.set_level(logging.DEBUG, logger="ccbench.proxy.requests")
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "Read", "arguments": '{"file_path": "a.py"'},
    }
    chunks = [chunk({"role": "assistant", "tool_calls": [call]}), chunk({}, "tool_calls"), usage_chunk()]
    backend.push(Reply(chunks=chunks), Reply(chunks=chunks))
    tools = [
        {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
    ]
    message = await proxy.sdk().messages.create(**MESSAGE, tools=tools)
    assert message.content[0].input == {"file_path": "a.py"}
    async with proxy.sdk().messages.stream(**MESSAGE, tools=tools) as stream:
        streamed = await stream.get_final_message()
    assert streamed.content[0].input == {"file_path": "a.py"}
    lines = [r.getMessage() for r in caplog.records if r.name == "ccbench.proxy.requests"]
    assert sum(1 for line in lines if re.search(r" problems=[1-9]", line)) == 2
    assert any(" problem: " in line for line in lines)


async def test_health_counts_dropped_features(proxy: RunningProxy) -> None:
    body = {**MESSAGE, "context_management": {"edits": []}}
    await proxy.sdk().messages.create(**MESSAGE)
    assert (await proxy.post("/v1/messages", body)).status == 200
    health = await (await proxy.http.get(proxy.url + "/health")).json()
    assert health["dropped_features"].get("context_management") == 1


# -- banner ------------------------------------------------------------------------------------------------------
def test_banner_lists_the_setup_lines_and_the_backend() -> None:
    config = Config(
        upstream="http://user:pw@10.0.0.2:8000/v1", tiers={"haiku": "small", "opus": "big"}, api_key="k"
    )
    info = BackendInfo(reachable=True, kind="vllm", models=["big", "small"], context_length=32768)
    text = banner_text(config, info, "0.0.0.0", 8082)
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8082" in text
    assert "export ANTHROPIC_DEFAULT_HAIKU_MODEL=claude-haiku-local   # -> small" in text
    assert "export ANTHROPIC_DEFAULT_OPUS_MODEL=claude-opus-local   # -> big" in text
    assert "SONNET" not in text
    assert "backend: http://10.0.0.2:8000/v1 (openai format): vllm" in text
    assert "context length: 32768 tokens" in text
    assert "pw" not in text and "=k" not in text  # neither the upstream password nor the inbound key
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" not in text  # no cap, nothing to match
    assert text.endswith(
        "metrics: http://127.0.0.1:8082/metrics (Prometheus text format, with the key as a Bearer token)\n"
    )


def test_banner_hands_a_cap_to_claude_code_too() -> None:
    """So that Claude Code asks for what it gets and names the real limit when an answer is cut."""
    info = BackendInfo(reachable=True, kind="vllm", models=["m"], context_length=32768)
    text = banner_text(Config(max_output_tokens=4096), info, "127.0.0.1", 8082)
    assert "export CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096   # the proxy's --max-output-tokens" in text


def test_banner_when_the_backend_is_down() -> None:
    info = BackendInfo(reachable=False, kind="unknown", models=[], context_length=None)
    text = banner_text(Config(), info, "127.0.0.1", 9000)
    assert "export ANTHROPIC_AUTH_TOKEN=ccbench" in text
    assert "not reachable yet: requests will get 529 until it is" in text
    assert text.endswith("metrics: http://127.0.0.1:9000/metrics (Prometheus text format)\n")


# -- probe state -------------------------------------------------------------------------------------------------
class ScriptedProbe:
    """An Upstream stand-in whose probe answers from a script (down, then up)."""

    def __init__(self, *answers: BackendInfo) -> None:
        self.answers = list(answers)
        self.calls = 0

        self.release = asyncio.Event()
        self.hang_from = 0  # calls numbered >= this wait for `release` (0 = never hang)
        self.closed = False

    async def probe(self) -> BackendInfo:
        self.calls += 1
        if self.hang_from and self.calls >= self.hang_from:
            await self.release.wait()
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def close(self) -> None:
        self.closed = True


async def test_a_backend_that_comes_up_later_is_picked_up(monkeypatch) -> None:
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    down = BackendInfo(reachable=False, kind="unknown", models=[], context_length=None)
    up = BackendInfo(reachable=True, kind="llamacpp", models=["m"], context_length=4096)
    upstream = ScriptedProbe(down, up)
    state = backend_state.BackendState(Config(), upstream)  # type: ignore[arg-type]
    assert (await state.probe()).reachable is False
    assert await state.context_length() == 4096  # re-probed because the last answer was "down"
    facts = await state.facts()
    assert (facts.kind, facts.default_model, facts.profile.thinking_style) == (
        "llamacpp",
        "m",
        "chat_template_kwargs",
    )
    assert upstream.calls == 2  # once up, the answer is kept
    assert await state.facts() is facts  # built once per probe result


async def test_configured_context_length_wins_over_the_probe() -> None:
    up = BackendInfo(reachable=True, kind="vllm", models=["m"], context_length=32768)
    state = backend_state.BackendState(Config(context_length=8192), ScriptedProbe(up))  # type: ignore[arg-type]
    assert await state.context_length() == 8192


async def test_a_hanging_re_probe_does_not_stall_requests(monkeypatch) -> None:
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    monkeypatch.setattr(backend_state, "REPROBE_WAIT", 0.05)
    down = BackendInfo(reachable=False, kind="unknown", models=[], context_length=None)
    upstream = ScriptedProbe(down)
    upstream.hang_from = 2
    state = backend_state.BackendState(Config(), upstream)  # type: ignore[arg-type]
    await state.probe()
    assert await asyncio.wait_for(state.backend(), 2) is down  # gave up waiting, answered with what it knew
    assert await asyncio.wait_for(state.backend(), 2) is down  # joined the same re-probe, no second one
    assert upstream.calls == 2
    await state.close()  # cancels the hanging re-probe
    assert upstream.closed and state._reprobe is not None and state._reprobe.cancelled()


async def test_max_tokens_zero_prewarm_asks_the_backend_for_one_token(backend, proxy: RunningProxy) -> None:
    response = await proxy.post("/v1/messages", {**MESSAGE, "max_tokens": 0})
    assert response.status == 200
    assert backend.requests[-1].body["max_tokens"] == 1
