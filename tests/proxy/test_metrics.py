"""GET /metrics: Prometheus counts that match what the proxy did, with bounded labels, behind the key, summed over
`--workers`. Exposition is parsed with prometheus_client's own parser (what a Prometheus server would read)."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import MAX_MODEL_LABELS, OTHER, ProxyMetrics
from proxy.requestlog import RequestLog
from tests.proxy.conftest import MESSAGE, ProxyFactory, RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply, closed_port_url, usage_chunk, wait_until
from tests.proxy.test_cli_proxy import STOP_TIMEOUT, read_banner, spawn
from tests.support import captured_requests

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """{(sample name, frozenset of label items): value} for every sample in the exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(items)[label] for sample, items in samples if sample == name}


async def scrape(proxy: RunningProxy, **kwargs: object) -> Samples:
    response = await proxy.http.get(proxy.url + "/metrics", **kwargs)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(await response.text())


async def test_counts_real_claude_code_requests(proxy: RunningProxy) -> None:
    """Two streamed and one non-streamed real Claude Code turn: counted by route, backend model and status, with
    the tokens the backend reported, a first-token time per stream, and the features dropped from them."""
    captured = [r for r in captured_requests() if r.body.get("stream")][:3]
    bodies = [captured[0].body, captured[1].body, {**captured[2].body, "stream": False}]
    skip = {"content-length", "host", "connection", "accept-encoding"}  # set by the client for this body
    headers = {k: v for k, v in captured[0].headers.items() if k.lower() not in skip}
    for body in bodies:
        response = await proxy.post("/v1/messages?beta=true", body, headers=headers)
        assert response.status == 200
        await response.read()
    samples = await scrape(proxy)
    ok = {"route": "/v1/messages", "model": "fake-model", "status": "200", "error_type": ""}
    assert value(samples, "ccbench_proxy_requests_total", **ok) == 3
    assert (
        value(
            samples, "ccbench_proxy_request_duration_seconds_count", route="/v1/messages", model="fake-model"
        )
        == 3
    )
    assert value(samples, "ccbench_proxy_time_to_first_token_seconds_count", model="fake-model") == 2
    assert value(samples, "ccbench_proxy_input_tokens_total", model="fake-model") == 3 * 10
    assert value(samples, "ccbench_proxy_output_tokens_total", model="fake-model") == 3 * 5
    with_cache_control = sum("cache_control" in str(body) for body in bodies)
    assert with_cache_control == 3
    assert value(samples, "ccbench_proxy_dropped_features_total", feature="cache_control") == 3
    assert value(samples, "ccbench_proxy_backend_up", backend=proxy.config.upstream) == 1
    assert value(samples, "ccbench_proxy_backend_requests_in_flight", backend=proxy.config.upstream) == 0


async def test_errors_by_type_and_one_label_for_unmatched_paths(start_proxy: ProxyFactory) -> None:
    """An unreachable backend's 529 is counted with its error type; scanners' random paths share the route label
    "other" (raw paths would make a series each); scrapes and health checks are not counted."""
    proxy = await start_proxy(upstream=closed_port_url(), model="local-model")
    response = await proxy.post("/v1/messages", MESSAGE)
    assert response.status == 529
    for n in range(5):
        assert (await proxy.http.get(f"{proxy.url}/wp-admin/{n}.php")).status == 404
    await proxy.http.get(proxy.url + "/health")
    await scrape(proxy)
    samples = await scrape(proxy)
    down = {
        "route": "/v1/messages",
        "model": "local-model",
        "status": "529",
        "error_type": "overloaded_error",
    }
    assert value(samples, "ccbench_proxy_requests_total", **down) == 1
    unmatched = {"route": OTHER, "model": "", "status": "404", "error_type": "not_found_error"}
    assert value(samples, "ccbench_proxy_requests_total", **unmatched) == 5
    assert names(samples, "ccbench_proxy_requests_total", "route") == {"/v1/messages", OTHER}
    assert value(samples, "ccbench_proxy_backend_up", backend=proxy.config.upstream) == 0
    assert not names(samples, "ccbench_proxy_time_to_first_token_seconds_count", "model")  # no empty series


def test_error_types_outside_anthropics_count_as_other() -> None:
    """A pass-through backend's error body may name any type: the label keeps Anthropic's and `client_closed`."""
    metrics = ProxyMetrics()
    for error_type in (
        "overloaded_error",
        "client_closed",
        "made_up_by_a_backend_1",
        "made_up_by_a_backend_2",
    ):
        metrics.observe(RequestLog("req", "/v1/messages", status=500, error_type=error_type), "/v1/messages")
    samples = parse(metrics.exposition().decode())
    kinds = names(samples, "ccbench_proxy_requests_total", "error_type")
    assert kinds == {"overloaded_error", "client_closed", OTHER}
    assert (
        value(
            samples,
            "ccbench_proxy_requests_total",
            route="/v1/messages",
            model="",
            status="500",
            error_type=OTHER,
        )
        == 2
    )


def test_model_label_values_are_bounded() -> None:
    """Without a model mapping a client's model name reaches the backend as is: past MAX_MODEL_LABELS names the
    label is "other", so no client can grow the metrics without bound."""
    metrics = ProxyMetrics()
    for n in range(MAX_MODEL_LABELS + 40):
        metrics.observe(
            RequestLog(f"req_{n}", "/v1/messages", backend_model=f"model-{n}", status=404), "/v1/messages"
        )
    samples = parse(metrics.exposition().decode())
    models = names(samples, "ccbench_proxy_requests_total", "model")
    assert len(models) == MAX_MODEL_LABELS + 1 and OTHER in models
    other = {"route": "/v1/messages", "model": OTHER, "status": "404", "error_type": ""}
    assert value(samples, "ccbench_proxy_requests_total", **other) == 40


async def test_metrics_need_the_key_when_one_is_set(backend: FakeBackend, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=backend.url, api_key="s3cret")
    assert (await proxy.http.get(proxy.url + "/metrics")).status == 401
    samples = await scrape(proxy, headers={"Authorization": "Bearer s3cret"})
    assert value(samples, "ccbench_proxy_backend_up", backend=proxy.config.upstream) == 1
    refused = {"route": "/metrics", "model": "", "status": "401", "error_type": "authentication_error"}
    assert value(samples, "ccbench_proxy_requests_total", **refused) == 1


async def test_queue_gauges_while_requests_wait(backend: FakeBackend, start_proxy: ProxyFactory) -> None:
    """One backend slot, three requests: one in flight, two queued while the backend holds its answer; none after."""
    release = asyncio.Event()
    backend.reply = Reply(chunks=backend.reply.chunks, hold=release)
    proxy = await start_proxy(upstream=backend.url, max_concurrency=1)
    body = {**MESSAGE, "stream": True}
    calls = [asyncio.ensure_future(proxy.post("/v1/messages", body)) for _ in range(3)]
    try:
        assert await wait_until(lambda: len(backend.requests) == 1)

        async def queued_two() -> bool:
            samples = await scrape(proxy)
            return value(samples, "ccbench_proxy_backend_requests_queued", backend=proxy.config.upstream) == 2

        for _ in range(250):
            if await queued_two():
                break
            await asyncio.sleep(0.02)
        samples = await scrape(proxy)
        assert value(samples, "ccbench_proxy_backend_requests_in_flight", backend=proxy.config.upstream) == 1
        assert value(samples, "ccbench_proxy_backend_requests_queued", backend=proxy.config.upstream) == 2
    finally:
        release.set()
        for response in await asyncio.gather(*calls):
            await response.read()
    samples = await scrape(proxy)
    assert value(samples, "ccbench_proxy_backend_requests_in_flight", backend=proxy.config.upstream) == 0
    assert value(samples, "ccbench_proxy_backend_requests_queued", backend=proxy.config.upstream) == 0
    ok = {"route": "/v1/messages", "model": "fake-model", "status": "200", "error_type": ""}
    assert value(samples, "ccbench_proxy_requests_total", **ok) == 3


async def test_every_worker_reports_the_sum_over_all_workers(backend: FakeBackend) -> None:
    """`--workers 2`: whichever worker answers the scrape, the counts are the whole proxy's (each worker alone
    would report only the requests the kernel gave it)."""
    process = await spawn("proxy", "--upstream", backend.url, "--port", "0", "--workers", "2")
    try:
        url, _ = await read_banner(process)
        sent, answered_by = 0, {}
        for _ in range(60):  # a new connection each time, so that the kernel spreads them over both workers
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                pid = (await (await http.get(url + "/health")).json())["pid"]
                assert (await http.post(url + "/v1/messages", json=MESSAGE)).status == 200
                sent += 1
                answered_by[pid] = answered_by.get(pid, 0) + 1
                # the same connection, so the same worker, answers the scrape
                text = await (await http.get(url + "/metrics")).text()
            ok = {"route": "/v1/messages", "model": "fake-model", "status": "200", "error_type": ""}
            assert value(parse(text), "ccbench_proxy_requests_total", **ok) == sent
            if len(answered_by) == 2 and min(answered_by.values()) >= 3:
                break
        assert len(answered_by) == 2, answered_by
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


@pytest.mark.parametrize("path", ["/metrics", "/health"])
async def test_pollers_stay_out_of_the_request_log(proxy: RunningProxy, path: str, caplog) -> None:
    caplog.set_level("INFO", logger="ccbench.proxy.requests")
    assert (await proxy.http.get(proxy.url + path)).status == 200
    assert not [r for r in caplog.records if path in r.getMessage()]


async def test_a_stream_cut_after_it_started_keeps_status_200_with_its_error_type(
    backend: FakeBackend, proxy: RunningProxy
) -> None:
    """The client got 200 and then an `event: error`: the count says both, so an alert on error types sees it."""
    backend.push(Reply(chunks=backend.reply.chunks, cut_after=2))
    response = await proxy.post("/v1/messages", {**MESSAGE, "stream": True})
    assert response.status == 200 and b"event: error" in await response.read()
    samples = await scrape(proxy)
    cut = {"route": "/v1/messages", "model": "fake-model", "status": "200", "error_type": "api_error"}
    assert value(samples, "ccbench_proxy_requests_total", **cut) == 1


async def test_client_chosen_feature_names_cannot_grow_the_counts(proxy: RunningProxy) -> None:
    """Dropped-feature names can carry what a client sent (a role, a block or tool type): past 64 distinct names
    they count as `other`, in /health and /metrics alike."""
    for n in range(80):
        body = {**MESSAGE, "system": [{"type": f"made-up-{n}", "text": "x"}]}
        assert (await proxy.post("/v1/messages", body)).status == 200
    health = await (await proxy.http.get(proxy.url + "/health")).json()
    assert len(health["dropped_features"]) == 64 + 1 and health["dropped_features"]["other"] == 80 - 64
    samples = await scrape(proxy)
    features = names(samples, "ccbench_proxy_dropped_features_total", "feature")
    assert features == set(health["dropped_features"])


async def test_token_counts_are_what_the_backend_reported_processing(
    backend: FakeBackend, proxy: RunningProxy, caplog
) -> None:
    """Found with a real llama-server: count_tokens answers were added to the prompt-token counter, prompt-cache
    reads were nowhere, and a stream cut after its text went out counted message_start's estimate as input and
    0 as output."""
    caplog.set_level("INFO", logger="ccbench.proxy.requests")
    assert (await proxy.post("/v1/messages/count_tokens", MESSAGE)).status == 200
    cached = backend.reply.chunks[:-1] + [
        {**usage_chunk(100, 7), "usage": {"prompt_tokens": 100, "completion_tokens": 7,
                                          "prompt_tokens_details": {"cached_tokens": 90}}}
    ]  # fmt: skip
    backend.push(Reply(chunks=cached))
    assert b"message_stop" in await (await proxy.post("/v1/messages", {**MESSAGE, "stream": True})).read()
    backend.push(Reply(chunks=backend.reply.chunks, cut_after=2))
    assert b"event: error" in await (await proxy.post("/v1/messages", {**MESSAGE, "stream": True})).read()
    samples = await scrape(proxy)
    assert value(samples, "ccbench_proxy_input_tokens_total", model="fake-model") == 10  # 100 - 90 cached
    assert value(samples, "ccbench_proxy_cache_read_input_tokens_total", model="fake-model") == 90
    assert value(samples, "ccbench_proxy_output_tokens_total", model="fake-model") == 7
    lines = [r.getMessage() for r in caplog.records if "POST /v1/messages" in r.getMessage()]
    assert " in=10 cached=90 out=7" in lines[1]
    assert lines[2].endswith(' in=- out=- reason="backend closed the stream early"')  # nothing claimed


async def test_a_non_streaming_answer_without_usage_counts_no_tokens(
    backend: FakeBackend, proxy: RunningProxy, caplog
) -> None:
    """Operator audit: a backend that reports no usage had the proxy's own estimates logged and counted as
    tokens for non-streaming requests (streams already showed `in=- out=-`)."""
    caplog.set_level("INFO", logger="ccbench.proxy.requests")
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
    }
    backend.push(Reply(completion=answer))
    response = await proxy.post("/v1/messages", MESSAGE)
    assert response.status == 200 and (await response.json())["usage"]["input_tokens"] > 0  # the estimate
    samples = await scrape(proxy)
    assert value(samples, "ccbench_proxy_input_tokens_total", model="fake-model") in (None, 0)
    assert value(samples, "ccbench_proxy_output_tokens_total", model="fake-model") in (None, 0)
    (line,) = [r.getMessage() for r in caplog.records if "POST /v1/messages" in r.getMessage()]
    assert " in=- out=-" in line
