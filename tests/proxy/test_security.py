"""Security defaults: loopback bind, constant-time key check, no secret in any log, capped request bodies."""

from __future__ import annotations

import asyncio
import hmac
import logging

import orjson
import pytest
from click.testing import CliRunner

import proxy.app
from harness.commands.proxy import command as proxy_command
from proxy.config import Config
from proxy.requestlog import RequestLog
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.validate import validate_messages_request
from tests.proxy.fake_backend import Reply, messages_body
from tests.support import captured_requests

INBOUND_KEY = "sk-inbound-8f3a9c1e77d2"
UPSTREAM_KEY = "sk-upstream-4b6d0e2a91fc"
WRONG_KEY = "sk-wrong-c0ffee5ecret11"
TIMEOUT = 15


def test_config_binds_loopback_by_default():
    assert Config().host == "127.0.0.1"


def test_cli_binds_loopback_by_default(monkeypatch):
    seen: list[Config] = []

    async def fake_serve(config: Config) -> None:
        seen.append(config)

    monkeypatch.delenv("CCBENCH_HOST", raising=False)
    monkeypatch.setattr(proxy.app, "serve", fake_serve)
    result = CliRunner().invoke(proxy_command, ["--upstream", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 0, result.output
    assert seen[0].host == "127.0.0.1"


async def test_inbound_key_is_checked_in_constant_time(backend, start_proxy, monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(proxy.app.hmac, "compare_digest", spy)
    running = await start_proxy(upstream=backend.url, api_key=INBOUND_KEY)
    statuses = {}
    for name, headers in {
        "missing": {},
        "wrong x-api-key": {"x-api-key": WRONG_KEY},
        "wrong bearer": {"Authorization": f"Bearer {WRONG_KEY}"},
        "right x-api-key": {"x-api-key": INBOUND_KEY},
        "right bearer": {"Authorization": f"Bearer {INBOUND_KEY}"},
    }.items():
        response = await running.post("/v1/messages", messages_body(), headers=headers)
        body = await response.json()
        statuses[name] = response.status
        if response.status == 401:
            assert body["error"]["type"] == "authentication_error"
            assert response.headers["request-id"]
    assert statuses == {
        "missing": 401,
        "wrong x-api-key": 401,
        "wrong bearer": 401,
        "right x-api-key": 200,
        "right bearer": 200,
    }
    assert any(INBOUND_KEY.encode() in pair for pair in calls)  # the comparison went through compare_digest
    assert any(WRONG_KEY.encode() in pair for pair in calls)


async def test_no_secret_in_logs_during_a_full_cycle(backend, start_proxy, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    running = await start_proxy(
        upstream=backend.url, api_key=INBOUND_KEY, upstream_api_key=UPSTREAM_KEY, log_level="debug"
    )
    client = running.sdk(api_key=INBOUND_KEY)
    args = {k: v for k, v in messages_body().items() if k != "stream"}
    async with client.messages.stream(**args) as stream:
        await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    await asyncio.wait_for(client.messages.create(**args), TIMEOUT)
    await asyncio.wait_for(
        client.messages.count_tokens(model=args["model"], messages=args["messages"]), TIMEOUT
    )
    backend.push(Reply.error(429, retry_after=1))
    response = await running.post(
        "/v1/messages", messages_body(), headers={"Authorization": f"Bearer {INBOUND_KEY}"}
    )
    assert response.status == 429
    response = await running.post("/v1/messages", messages_body(), headers={"x-api-key": WRONG_KEY})
    assert response.status == 401

    chat = [r for r in backend.requests if r.path.startswith("/v1/chat/completions")]
    assert chat and all(r.headers.get("Authorization") == f"Bearer {UPSTREAM_KEY}" for r in chat)
    assert not any(INBOUND_KEY in str(r.headers) for r in backend.requests)  # the client's key stays with us

    metrics = await running.http.get(running.url + "/metrics", headers={"x-api-key": INBOUND_KEY})
    assert metrics.status == 200
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert logs  # the request log did write lines
    for secret in (INBOUND_KEY, UPSTREAM_KEY, WRONG_KEY):
        assert secret not in logs
        assert secret not in await metrics.text()


async def test_no_password_of_a_backend_url_in_health_or_metrics(backend, start_proxy):
    """Backend URLs may carry user:password (a queue server behind basic auth); the routed one's shows up in
    /health and the metrics' `backend` label, without it."""
    with_password = backend.url.replace("http://", "http://team:pw-s3cret-9@")
    running = await start_proxy(upstream=with_password, tier_upstreams={"haiku": with_password + "/"})
    running2 = await start_proxy(upstream=backend.url, tier_upstreams={"haiku": with_password})
    for each in (running, running2):
        health = await (await each.http.get(each.url + "/health")).text()
        metrics = await (await each.http.get(each.url + "/metrics")).text()
        assert backend.url in health and backend.url in metrics
        assert "pw-s3cret-9" not in health + metrics


async def test_body_over_the_limit_is_413(backend, start_proxy):
    running = await start_proxy(upstream=backend.url, max_body_bytes=10_000)
    big = messages_body("x" * 20_000)
    response = await running.post("/v1/messages", big)
    body = await response.json()
    assert response.status == 413
    assert body["error"]["type"] == "request_too_large"
    assert response.headers["request-id"]


async def test_chunked_body_over_the_limit_is_413(backend, start_proxy):
    running = await start_proxy(upstream=backend.url, max_body_bytes=10_000)

    async def chunked():
        yield b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}]}'

    response = await running.http.post(running.url + "/v1/messages", data=chunked())
    assert response.status == 413
    assert (await response.json())["error"]["type"] == "request_too_large"


async def test_a_chunked_body_in_many_pieces_is_read_whole(backend, start_proxy):
    """A real Claude Code turn uploaded in 1,000-byte chunks (no Content-Length) reaches the backend translated
    from every piece, in order."""
    captured = max(captured_requests(), key=lambda c: len(orjson.dumps(c.body)))
    raw = orjson.dumps({**captured.body, "stream": False})
    running = await start_proxy(upstream=backend.url)

    async def chunked():
        for start in range(0, len(raw), 1000):
            yield raw[start : start + 1000]

    response = await running.http.post(running.url + "/v1/messages", data=chunked())
    assert response.status == 200, await response.text()
    sent = backend.requests[-1].body
    expected = translate_request(validate_messages_request(orjson.loads(raw)), "m", BackendProfile())
    assert sent["messages"] == expected.body["messages"] and len(raw) > 40_000


@pytest.mark.parametrize("size", [1_000, 9_000])
async def test_body_under_the_limit_is_accepted(backend, start_proxy, size):
    running = await start_proxy(upstream=backend.url, max_body_bytes=10_000)
    response = await running.post("/v1/messages", messages_body("x" * size))
    assert response.status == 200


async def test_backend_cookies_never_reach_another_request(backend, start_proxy):
    """One proxy serves many Claude Code users: a cookie one backend answer sets must not ride along on the
    next user's request (the proxy keeps no cookie jar). By host name: cookie jars ignore cookies from IPs."""
    proxy = await start_proxy(upstream=backend.url.replace("127.0.0.1", "localhost"))
    backend.reply = Reply(headers={"Set-Cookie": "session=user-a-secret; Path=/"})
    first = await proxy.post("/v1/messages", messages_body())
    assert first.status == 200
    second = await proxy.post("/v1/messages", messages_body())
    assert second.status == 200
    calls = [r for r in backend.requests if r.path.endswith("/chat/completions")]
    assert len(calls) == 2
    assert "cookie" not in {name.lower() for name in calls[-1].headers}


async def test_a_client_cannot_forge_request_log_lines(backend, start_proxy, caplog):
    """Line breaks in what a client sends (the model name, the percent-decoded path) are escaped in the
    request log, so that one request is always one line."""
    caplog.set_level(logging.INFO, logger="ccbench.proxy.requests")
    running = await start_proxy(upstream=backend.url)
    forged = "FORGED POST /v1/messages 200"
    body = {**messages_body(), "stream": False, "model": f"m\n{forged}\r{forged}\u2028{forged}"}
    await running.post("/v1/messages", body)
    await running.http.get(f"{running.url}/v1/x%0A{forged.replace(' ', '%20')}")
    lines = [record.getMessage() for record in caplog.records if record.name == "ccbench.proxy.requests"]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert "m\\nFORGED POST /v1/messages 200\\rFORGED" in lines[0]
    assert "/v1/x\\nFORGED POST /v1/messages 200" in lines[1]


def test_a_passthrough_request_log_line_takes_any_json_model_value():
    entry = RequestLog("req_1", "/v1/messages", requested_model=["a\nb", 5], backend_model=5)
    assert " ['a\\nb', 5] -> 5 200 " in entry.line()  # one line, whatever the JSON value


async def test_a_huge_model_name_cannot_fill_the_log(backend, start_proxy, caplog):
    """Operator audit: a 5 MB `model` made a 5-million-character log line on every request."""
    caplog.set_level(logging.INFO, logger="ccbench.proxy.requests")
    running = await start_proxy(upstream=backend.url)
    huge = "claude-" + "x" * 5_000_000
    await running.post("/v1/messages", {**messages_body(), "stream": False, "model": huge})
    await running.http.get(f"{running.url}/v1/{'y' * 5_000}")  # under aiohttp's 8,190-byte request line
    lines = [record.getMessage() for record in caplog.records if record.name == "ccbench.proxy.requests"]
    assert len(lines) == 2 and all(len(line) < 1_000 for line in lines), [len(line) for line in lines]
    assert "claude-xxx" in lines[0] and "…" in lines[0]
