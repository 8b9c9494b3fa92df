"""A backend that goes away and comes back while the proxy runs, maybe with another model and context length.

Before, only a backend that had never answered was probed again: during an outage `/health` kept saying
`reachable: true` (and `ccbench_proxy_backend_up` 1), and after vLLM was restarted with another model the proxy
kept sending the old model name and judging prompts by the old context length until it was restarted itself.
"""

from __future__ import annotations

import pytest

from proxy import backend_state
from tests.proxy.conftest import MESSAGE, ProxyFactory, envelope
from tests.proxy.fake_backend import FakeBackend, Reply


async def health(proxy) -> dict:  # noqa: ANN001 (RunningProxy)
    return (await (await proxy.http.get(proxy.url + "/health")).json())["backend"]


async def test_an_outage_and_a_restart_with_another_model_are_seen_without_restarting_the_proxy(
    start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    backend = FakeBackend(model="model-a", max_model_len=32768)
    await backend.start()
    try:
        proxy = await start_proxy(upstream=backend.url)
        assert (await proxy.post("/v1/messages", MESSAGE)).status == 200
        assert backend.requests[-1].body["model"] == "model-a"

        await backend.close()  # the server goes down
        await envelope(await proxy.post("/v1/messages", MESSAGE), 529, "overloaded_error")
        assert (await health(proxy))["reachable"] is False

        backend.model, backend.max_model_len = "model-b", 8192  # restarted on its port with another model
        await backend.start()
        assert (await proxy.post("/v1/messages", {**MESSAGE, "max_tokens": 32000})).status == 200
        sent = backend.requests[-1].body
        assert sent["model"] == "model-b" and sent["max_tokens"] < 8192  # the new model and its window
        found = await health(proxy)
        assert (found["reachable"], found["models"], found["context_length"]) == (True, ["model-b"], 8192)
    finally:
        await backend.close()


async def test_health_notices_an_outage_without_any_failed_request(
    start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A monitoring check on /health (or on backend_up) must see the backend go down while nobody sends."""
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    monkeypatch.setattr("proxy.info_routes.HEALTH_MAX_AGE", 0.0)
    backend = FakeBackend()
    await backend.start()
    try:
        proxy = await start_proxy(upstream=backend.url)
        assert (await health(proxy))["reachable"] is True
        await backend.close()
        assert (await health(proxy))["reachable"] is False
    finally:
        await backend.close()


async def test_a_404_from_the_backend_makes_the_proxy_look_at_its_models_again(
    start_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restarted with another model between two requests answers the old name with 404 ("The model
    `model-a` does not exist."): the next request goes to the model it serves now."""
    monkeypatch.setattr(backend_state, "REPROBE_INTERVAL", 0.0)
    async with FakeBackend(model="model-a") as backend:
        proxy = await start_proxy(upstream=backend.url)
        backend.model = "model-b"
        backend.push(Reply.error(404, "The model `model-a` does not exist."))
        await envelope(await proxy.post("/v1/messages", MESSAGE), 404, "not_found_error")
        assert (await proxy.post("/v1/messages", MESSAGE)).status == 200
        assert backend.requests[-1].body["model"] == "model-b"
