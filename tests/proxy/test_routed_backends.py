"""Model routes with backends of their own: `haiku: {model: small, upstream: http://…:8001/v1}`.

vLLM and llama-server serve one model per server, so a small model for Claude Code's haiku calls beside a large
one for the main turns means two servers. Each routed request must reach its server with that server's model,
context length, tokenizer and concurrency limit, and every route and listing must say where it goes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.banner import banner_text
from proxy.config import Config, ConfigError, RouteRule, load_config
from proxy.routing import Route
from proxy.upstream import BackendInfo
from tests.proxy.conftest import MESSAGE, ProxyFactory, envelope
from tests.proxy.fake_backend import FakeBackend, Reply, closed_port_url, wait_until
from tests.proxy.test_cli_proxy import STOP_TIMEOUT, read_banner, spawn

HAIKU = {**MESSAGE, "model": "claude-haiku-4-5-20251001"}
OPUS = {**MESSAGE, "model": "claude-opus-5-5"}


@pytest.fixture
async def small() -> AsyncIterator[FakeBackend]:
    """A second server: a small model with a small context, as a llama-server for haiku calls would be."""
    async with FakeBackend(model="small-model", max_model_len=8192) as fake:
        yield fake


def chat_models(fake: FakeBackend) -> list[str]:
    return [r.body["model"] for r in fake.requests if r.path.endswith("/chat/completions")]


# -- config -------------------------------------------------------------------------------------------------------
def test_tiers_and_rules_name_backends_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "upstream: http://127.0.0.1:8000/v1\n"
        "models:\n"
        "  default: big\n"
        "  haiku: {model: small, upstream: http://127.0.0.1:8001/v1/}\n"
        "  sonnet: {upstream: http://127.0.0.1:8002/v1}\n"
        "  rules:\n"
        "    - {match: 'review-*', upstream: http://127.0.0.1:8003/v1}\n"
        "    - {match: 'plain', model: other}\n"
    )
    cfg = load_config(path, environ={})
    assert cfg.tiers == {"haiku": "small"}
    assert cfg.tier_upstreams == {"haiku": "http://127.0.0.1:8001/v1", "sonnet": "http://127.0.0.1:8002/v1"}
    assert cfg.rules == [RouteRule("review-*", "", "http://127.0.0.1:8003/v1"), RouteRule("plain", "other")]
    assert cfg.route("claude-haiku-4-5") == Route("small", "http://127.0.0.1:8001/v1")
    assert cfg.route("claude-sonnet-4-5") == Route(None, "http://127.0.0.1:8002/v1")  # its first model
    assert cfg.route("review-1") == Route(None, "http://127.0.0.1:8003/v1")
    assert cfg.route("claude-opus-5-5") == Route("big")
    assert cfg.routed_upstreams() == [
        "http://127.0.0.1:8001/v1",
        "http://127.0.0.1:8002/v1",
        "http://127.0.0.1:8003/v1",
    ]


def test_tier_backends_from_the_environment_and_the_command_line() -> None:
    env = {"CCBENCH_HAIKU_UPSTREAM": "http://127.0.0.1:8001/v1"}
    assert load_config(environ=env).tier_upstreams == {"haiku": "http://127.0.0.1:8001/v1"}
    flags = {"opus_upstream": "http://127.0.0.1:8009/v1/", "opus": "huge"}
    cfg = load_config(overrides=flags, environ=env)
    assert cfg.tier_upstreams == {"haiku": "http://127.0.0.1:8001/v1", "opus": "http://127.0.0.1:8009/v1"}
    assert cfg.route("claude-opus-5-5") == Route("huge", "http://127.0.0.1:8009/v1")


def test_a_route_to_the_main_backend_is_not_a_second_backend() -> None:
    cfg = Config(upstream="http://127.0.0.1:8000/v1", tier_upstreams={"haiku": "http://127.0.0.1:8000/v1"})
    assert cfg.routed_upstreams() == []


@pytest.mark.parametrize(
    ("yaml", "fragment"),
    [
        ("models: {haiku: {model: s, upstream: 'ftp://x'}}", "models.haiku: upstream must be an http(s) URL"),
        (
            "models: {haiku: {model: s, upstream: 'http://h:1/v1/chat/completions'}}",
            "not the /chat/completions",
        ),
        (
            "models: {haiku: {model: s, port: 1}}",
            "models.haiku takes model, upstream, upstream_api_key, context_length, max_concurrency, not port",
        ),
        ("models: {rules: [{match: x}]}", "each rule needs 'match' and 'model' (or 'upstream')"),
        (
            "upstream_format: anthropic\nupstream: http://127.0.0.1:9000\n"
            "models: {haiku: {upstream: 'http://127.0.0.1:8001/v1'}}",
            "need upstream_format openai",
        ),
        ("port: 8082\nmodels: {haiku: {upstream: 'http://127.0.0.1:8082/v1'}}", "this proxy's own address"),
        (
            "models: {haiku: {model: s, context_length: 4096}}",
            "models.haiku: context_length is for a server of its own",
        ),
        (
            "models: {haiku: {upstream: 'http://h:1/v1', max_concurrency: 0}}",
            "max_concurrency must be at least 1, not 0",
        ),
        (
            "models: {haiku: {upstream: 'http://h:1/v1', context_length: big}}",
            "models.haiku: context_length must be a number",
        ),
        (
            "models: {haiku: {upstream: 'http://h:1/v1', context_length: 4096}, "
            "rules: [{match: x, upstream: 'http://h:1/v1', context_length: 8192}]}",
            "the rule for 'x': context_length differs from another route's to http://h:1/v1",
        ),
        ("models: {rules: [{match: x, model: m, port: 1}]}", "the rule for 'x' takes model, upstream"),
    ],
)
def test_bad_routes_and_server_settings_are_refused_with_their_name(
    tmp_path: Path, yaml: str, fragment: str
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert fragment in str(caught.value)


def test_a_listed_model_asked_for_by_name_is_used() -> None:
    """ANTHROPIC_MODEL=qwen3:8b with an Ollama that serves several: that model, not the first listed one; after
    the rules, before the tiers and the default."""
    cfg = Config(model="default-model", rules=[RouteRule("qwen3:8b", "ruled")], tiers={"opus": "big"})
    listed = {"qwen3:8b": None, "llama3:8b": None, "tiny-opus": "http://127.0.0.1:8001/v1"}
    assert cfg.route("llama3:8b", listed) == Route("llama3:8b")
    assert cfg.route("qwen3:8b", listed) == Route("ruled")  # an explicit rule still wins
    assert cfg.route("tiny-opus", listed) == Route("tiny-opus", "http://127.0.0.1:8001/v1")
    assert cfg.route("claude-opus-5-5", listed) == Route("big")
    assert cfg.route("something-else", listed) == Route("default-model")


# -- requests -----------------------------------------------------------------------------------------------------
async def test_each_tier_reaches_its_own_server(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
):
    """Haiku turns go to the small server with its model, streamed and not; everything else to the main one."""
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url})
    client = proxy.sdk()
    async with client.messages.stream(**HAIKU) as stream:
        message = await stream.get_final_message()
    assert message.model == HAIKU["model"] and message.content[0].text == "Hello from the fake."
    assert (await client.messages.create(**HAIKU)).model == HAIKU["model"]
    await client.messages.create(**OPUS)
    assert chat_models(small) == ["small-model", "small-model"]
    assert chat_models(backend) == ["fake-model"]


async def test_a_routed_request_is_fitted_to_its_servers_context(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    """Claude Code asks for 32,000 output tokens: the small server (8,192 context) gets what fits in it, the main
    one (32,768) more; each backend's own count is asked for near its limit."""
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url})
    long_prompt = [{"role": "user", "content": "word " * 6000}]
    for body in (HAIKU, OPUS):
        response = await proxy.post("/v1/messages", {**body, "max_tokens": 32000, "messages": long_prompt})
        assert response.status == 200, await response.text()
    (to_small,) = [r.body for r in small.requests if r.path.endswith("/chat/completions")]
    (to_main,) = [r.body for r in backend.requests if r.path.endswith("/chat/completions")]
    assert to_small["max_tokens"] < 8192 < to_main["max_tokens"] < 32768
    assert any(r.path.endswith("/tokenize") for r in small.requests)  # counted by its own tokenizer


async def test_count_tokens_for_a_routed_model_asks_its_server(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url})
    count = {k: v for k, v in HAIKU.items() if k != "max_tokens"}
    response = await proxy.post("/v1/messages/count_tokens", count)
    assert response.status == 200 and (await response.json())["input_tokens"] > 0
    assert [r.path for r in small.requests if r.path.endswith("/tokenize")]
    assert not [r.path for r in backend.requests if r.path.endswith("/tokenize")]


async def test_a_tier_without_a_model_uses_its_servers_first_model(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(upstream=backend.url, model="main-default", tier_upstreams={"haiku": small.url})
    assert (await proxy.post("/v1/messages", HAIKU)).status == 200
    assert chat_models(small) == ["small-model"]  # not the main backend's default


async def test_a_routed_servers_model_asked_for_by_name_goes_there(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url})
    assert (await proxy.post("/v1/messages", {**MESSAGE, "model": "small-model"})).status == 200
    assert (await proxy.post("/v1/messages", {**MESSAGE, "model": "fake-model"})).status == 200
    assert chat_models(small) == ["small-model"] and chat_models(backend) == ["fake-model"]


async def test_a_routed_server_that_is_down_fails_only_its_requests(
    backend: FakeBackend, start_proxy: ProxyFactory
) -> None:
    down = closed_port_url()
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": down})
    message = await envelope(await proxy.post("/v1/messages", HAIKU), 529, "overloaded_error")
    assert down.rsplit("/v1", 1)[0] in message
    assert (await proxy.post("/v1/messages", OPUS)).status == 200


async def test_each_server_has_its_own_concurrency_limit(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    """One slot per backend: a main turn the main server holds does not make a haiku call wait."""
    release = asyncio.Event()
    backend.reply = Reply(chunks=backend.reply.chunks, hold=release)
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url}, max_concurrency=1)
    held = asyncio.ensure_future(proxy.post("/v1/messages", OPUS))
    try:
        assert await wait_until(lambda: len(chat_models(backend)) == 1)
        response = await asyncio.wait_for(proxy.post("/v1/messages", HAIKU), 10)
        assert response.status == 200
    finally:
        release.set()
        assert (await held).status == 200


async def test_models_health_and_metrics_list_every_server(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": small.url})
    listed = {m["id"]: m for m in (await (await proxy.http.get(proxy.url + "/v1/models")).json())["data"]}
    assert listed["fake-model"]["max_input_tokens"] == 32768
    assert listed["small-model"]["max_input_tokens"] == 8192
    assert listed["claude-haiku-local"]["max_input_tokens"] == 8192
    assert "small-model" in listed["claude-haiku-local"]["description"]
    health = await (await proxy.http.get(proxy.url + "/health")).json()
    assert health["backend"]["url"] == backend.url and health["backend"]["models"] == ["fake-model"]
    (routed,) = health["routed_backends"]
    assert (routed["url"], routed["reachable"], routed["context_length"]) == (small.url, True, 8192)
    metrics = await (await proxy.http.get(proxy.url + "/metrics")).text()
    for url in (backend.url, small.url):
        assert f'ccbench_proxy_backend_up{{backend="{url}"}} 1.0' in metrics


def test_the_banner_says_where_each_tier_goes() -> None:
    config = Config(
        upstream="http://127.0.0.1:8000/v1",
        tiers={"haiku": "small"},
        tier_upstreams={"haiku": "http://u:pw@127.0.0.1:8001/v1", "opus": "http://127.0.0.1:8002/v1"},
    )
    main = BackendInfo(reachable=True, kind="vllm", models=["big"], context_length=65536)
    routed = {
        "http://u:pw@127.0.0.1:8001/v1": BackendInfo(True, "llamacpp", ["small"], 8192),
        "http://127.0.0.1:8002/v1": BackendInfo(False, "unknown"),
    }
    text = banner_text(config, main, "127.0.0.1", 8082, routed)
    assert (
        "export ANTHROPIC_DEFAULT_HAIKU_MODEL=claude-haiku-local   # -> small at http://127.0.0.1:8001/v1"
        in text
    )
    assert "  opus: the first model of http://127.0.0.1:8002/v1" in text
    assert "routed backend: http://127.0.0.1:8001/v1 (openai format): llamacpp\n  models: small\n" in text
    assert "warning: a context of 8,192 tokens cannot take Claude Code's requests" in text
    assert "routed backend: http://127.0.0.1:8002/v1 (openai format): not reachable yet" in text
    assert "pw" not in text


async def test_ccbench_proxy_takes_a_tier_backend_on_the_command_line(
    backend: FakeBackend, small: FakeBackend
) -> None:
    process = await spawn("proxy", "--upstream", backend.url, "--haiku-upstream", small.url, "--port", "0")
    try:
        url, _ = await read_banner(process)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            assert (await http.post(url + "/v1/messages", json=HAIKU)).status == 200
        assert chat_models(small) == ["small-model"] and chat_models(backend) == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


async def test_a_bad_tier_backend_on_the_command_line_is_a_usage_error() -> None:
    process = await spawn("proxy", "--haiku-upstream", "localhost:8001", "--port", "0")
    _, stderr = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT * 3)
    assert process.returncode == 2
    assert "--haiku-upstream: upstream must be an http(s) URL" in stderr.decode()


def test_the_example_config_routes_haiku_to_its_own_server() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "ccbench-proxy.yaml"
    cfg = load_config(example, environ={})
    assert cfg.routed_upstreams() == ["http://127.0.0.1:8001/v1"]
    assert cfg.route("claude-haiku-4-5-20251001") == Route(
        "Qwen/Qwen3-4B-Instruct-2507", "http://127.0.0.1:8001/v1"
    )
    assert cfg.route("claude-opus-5-5") == Route("Qwen/Qwen3-Coder-30B-A3B-Instruct")
    assert (cfg.max_concurrency, cfg.read_timeout) == (8, 900.0)


def test_the_listed_models_follow_each_new_probe_result() -> None:
    """Read on every request, rebuilt only when a probe result is replaced (a server that came up, or reloaded
    with another model)."""
    from proxy.handlers import ProxyState
    from proxy.upstream import Upstream

    config = Config(upstream="http://127.0.0.1:8000/v1", tier_upstreams={"haiku": "http://127.0.0.1:8001/v1"})
    state = ProxyState(config, Upstream(config))
    assert state.listed_models() == {}
    state.main.info = BackendInfo(True, "vllm", ["big"], 65536)
    state.routed["http://127.0.0.1:8001/v1"].info = BackendInfo(True, "llamacpp", ["small", "big"], 8192)
    listed = state.listed_models()
    assert listed == {"big": None, "small": "http://127.0.0.1:8001/v1"}  # the main server first
    assert state.listed_models() is listed  # not rebuilt while nothing changed
    state.main.info = BackendInfo(True, "vllm", ["bigger"], 65536)
    assert state.listed_models() == {
        "bigger": None,
        "small": "http://127.0.0.1:8001/v1",
        "big": "http://127.0.0.1:8001/v1",
    }


def test_a_routed_server_can_have_its_own_key_context_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "upstream: http://127.0.0.1:8000/v1\nupstream_api_key: main-key\nmax_concurrency: 8\n"
        "models:\n"
        "  haiku: {upstream: http://127.0.0.1:8001/v1, upstream_api_key: small-key, context_length: 4096,"
        " max_concurrency: '2'}\n"
        "  rules: [{match: 'x-*', upstream: http://127.0.0.1:8001/v1, context_length: 4096}]\n"
        "  opus: {upstream: http://127.0.0.1:8002/v1}\n"
    )
    cfg = load_config(path, environ={})
    small, other = (
        cfg.server_config("http://127.0.0.1:8001/v1"),
        cfg.server_config("http://127.0.0.1:8002/v1"),
    )
    assert (small.upstream_api_key, small.context_length, small.max_concurrency) == ("small-key", 4096, 2)
    assert (other.upstream_api_key, other.context_length, other.max_concurrency) == ("main-key", None, 8)
    assert (cfg.upstream_api_key, cfg.max_concurrency) == ("main-key", 8)  # the main server keeps its own


async def test_a_routed_servers_own_key_and_context_are_used(
    backend: FakeBackend, small: FakeBackend, start_proxy: ProxyFactory
) -> None:
    url = small.url
    proxy = await start_proxy(
        upstream=backend.url,
        upstream_api_key="main-key",
        tier_upstreams={"haiku": url},
        servers={url: {"upstream_api_key": "small-key", "context_length": 4096}},
    )
    long_prompt = [{"role": "user", "content": "word " * 2000}]
    assert (
        await proxy.post("/v1/messages", {**HAIKU, "max_tokens": 32000, "messages": long_prompt})
    ).status == 200
    assert (await proxy.post("/v1/messages", OPUS)).status == 200
    (to_small,) = [r for r in small.requests if r.path.endswith("/chat/completions")]
    (to_main,) = [r for r in backend.requests if r.path.endswith("/chat/completions")]
    assert to_small.headers["Authorization"] == "Bearer small-key"
    assert to_main.headers["Authorization"] == "Bearer main-key"
    assert to_small.body["max_tokens"] < 4096  # its configured context, not the 8,192 it reports
    listed = {m["id"]: m for m in (await (await proxy.http.get(proxy.url + "/v1/models")).json())["data"]}
    assert listed["claude-haiku-local"]["max_input_tokens"] == 4096


def test_a_config_built_in_code_gets_the_same_checks_on_server_settings() -> None:
    url = "http://127.0.0.1:8001/v1"
    with pytest.raises(ConfigError, match="models.haiku.upstream: max_concurrency must be at least 1, not 0"):
        Config(tier_upstreams={"haiku": url}, servers={url: {"max_concurrency": 0}}).validate()
