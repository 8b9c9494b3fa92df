"""`ccbench proxy` as a real subprocess: banner, /health, one request, clean exit on SIGTERM, usage errors."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.proxy.fake_backend import FakeBackend

CCBENCH = [sys.executable, "-c", "from harness.cli import main; main(prog_name='ccbench')"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CCBENCH,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def read_banner(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """The proxy's base URL and the banner text up to the backend line."""
    assert process.stdout is not None
    lines: list[str] = []
    url = None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode()
        if not line:
            stderr = (await process.stderr.read()).decode() if process.stderr else ""
            pytest.fail(f"ccbench proxy exited before it was ready:\n{''.join(lines)}\n{stderr}")
        lines.append(line)
        url = url or (LISTENING.search(line).group(1) if LISTENING.search(line) else None)
        if line.startswith("backend:"):
            return url or "", "".join(lines)


@pytest.fixture
async def running(backend: FakeBackend) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    process = await spawn("proxy", "--upstream", backend.url, "--port", "0", env={"CCBENCH_API_KEY": ""})
    try:
        url, banner = await read_banner(process)
        yield process, url, banner
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serves_then_exits_cleanly_on_sigterm(running, backend: FakeBackend) -> None:
    process, url, banner = running
    assert f"export ANTHROPIC_BASE_URL={url}" in banner
    assert "backend: " + backend.url + " (openai format): vllm" in banner
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        health = await http.get(url + "/health")
        assert health.status == 200 and (await health.json())["status"] == "ok"
        body = {"model": "claude-opus-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        response = await http.post(url + "/v1/messages?beta=true", json=body, headers={"x-api-key": "sk-x"})
        assert response.status == 200
        assert (await response.json())["content"] == [{"type": "text", "text": "Hello from the fake."}]
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0
    stderr = (await process.stderr.read()).decode()
    assert "POST /v1/messages claude-opus-5-5 -> fake-model 200" in stderr  # one line per request
    assert "sk-x" not in stderr and "Traceback" not in stderr


async def test_sigint_also_exits_cleanly(running) -> None:
    process, _, _ = running
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--upstream-format", "grpc"], {}, "Invalid value for '--upstream-format'"),
        (["--port", "eighty"], {}, "Invalid value for '--port'"),
        ([], {"CCBENCH_THINKING": "loud"}, "thinking must be one of"),
        (["--config", "/nonexistent/ccbench.yaml"], {}, "cannot read config file"),
        (["--upstream", "localhost:8000"], {}, "upstream must be an http(s) URL"),
        (["--upstream", "http://[::1"], {}, "upstream must be an http(s) URL, not 'http://[::1'"),
        ([], {"CCBENCH_UPSTREAM": "http://[::1"}, "CCBENCH_UPSTREAM: upstream must be an http(s) URL"),
        (["--upstream", "http:///v1"], {}, "upstream must be an http(s) URL with a host"),
        (["--upstream", "ftp://x"], {}, "upstream must be an http(s) URL, not 'ftp://x'"),
        (["--context-length", "-1"], {}, "context_length must be between 0 and"),
        (["--max-output-tokens", "0"], {}, "max_output_tokens must be between 1 and"),
        (["--max-output-tokens", "-3"], {}, "max_output_tokens must be between 1 and"),
        (["--read-timeout", "nan"], {}, "read_timeout must be a finite number of seconds greater than 0"),
        (["--workers", "0"], {}, "workers must be between 1 and 64, not 0"),
        (["--workers", "65"], {}, "workers must be between 1 and 64, not 65"),
        ([], {"CCBENCH_WORKERS": "790"}, "CCBENCH_WORKERS: workers must be between 1 and 64, not 790"),
        ([], {"CCBENCH_LOG_LEVEL": "basicConfig"}, "log_level must be one of debug, info, warning, error"),
        (  # the proxy as its own upstream: every request would come back in (was accepted, then 529s)
            ["--upstream-format", "anthropic", "--upstream", "http://localhost:8082", "--port", "8082"],
            {},
            "the upstream http://localhost:8082 is this proxy's own address (127.0.0.1:8082)",
        ),
    ],
)
async def test_usage_errors_exit_2_without_a_traceback(args: list[str], env: dict, fragment: str) -> None:
    process = await spawn("proxy", *args, env=env)
    _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert fragment in stderr.decode()
    assert "Traceback" not in stderr.decode()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("forward_headers: 5\n", "forward_headers must be a list of header names, not 5"),
        ("read_timeout: .inf\n", "read_timeout must be a finite number of seconds greater than 0, not inf"),
        ("read_timeout: .nan\n", "read_timeout must be a finite number of seconds greater than 0, not nan"),
        ("context_length: .inf\n", "context_length must be a whole number, not inf"),
        ("workers: 790\n", "workers must be between 1 and 64, not 790"),
        ("upstream: 'http://[::1'\n", "upstream must be an http(s) URL"),
        ("tiers: 5\n", "'tiers' must be a mapping"),
    ],
)
async def test_bad_config_file_values_exit_2_naming_the_file(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "ccbench.yaml"
    path.write_text(text)
    process = await spawn("proxy", "--config", str(path))
    _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert f"{path}: {fragment}" in stderr.decode()
    assert "Traceback" not in stderr.decode()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_unresolvable_host_is_a_usage_error(workers: str) -> None:
    """An invalid address or a name that does not resolve: "cannot listen on", like a port in use (with one
    process the site fails to bind; with several the shared socket does). Nothing gets bound."""
    process = await spawn(
        "proxy",
        "--host",
        "999.1.1.1",
        "--port",
        "0",
        "--workers",
        workers,
        "--upstream",
        "http://127.0.0.1:9/v1",
    )
    _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert "cannot listen on 999.1.1.1:0: " in stderr.decode() and "Traceback" not in stderr.decode()


def test_workers_listen_with_the_family_of_the_host() -> None:
    """`--workers N` binds its shared socket itself: an IPv6 host needs an IPv6 socket (resolved only, not bound)."""
    from proxy.app import listen_family

    assert listen_family("127.0.0.1") == socket.AF_INET
    assert listen_family("") == socket.AF_INET  # all interfaces, as before
    assert listen_family("::1") == socket.AF_INET6
    with pytest.raises(socket.gaierror):
        listen_family("999.1.1.1")


async def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await spawn("proxy", "--port", str(port), "--upstream", "http://127.0.0.1:9/v1")
        _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in stderr.decode() and "Traceback" not in stderr.decode()


async def test_workers_share_the_port_and_all_stop_on_sigterm(backend: FakeBackend) -> None:
    """--workers 2: two processes answer on one port (the kernel spreads connections), and SIGTERM to the
    parent stops every worker cleanly (exit 0, no orphan left behind)."""
    process = await spawn("proxy", "--upstream", backend.url, "--port", "0", "--workers", "2")
    try:
        url, _ = await read_banner(process)
        pids: set[int] = set()
        body = {"model": "claude-opus-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(40):  # a new connection each time, so that both workers get some
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                pids.add((await (await http.get(url + "/health")).json())["pid"])
                assert (await http.post(url + "/v1/messages", json=body)).status == 200
            if len(pids) == 2:
                break
        assert len(pids) == 2 and process.pid not in pids
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_serving_process_tunes_the_garbage_collector() -> None:
    """`run` (the `ccbench proxy` process) freezes start-up objects and raises the thresholds; checked in a child
    interpreter so this test process keeps its own collector settings."""
    code = (
        "import gc, proxy.app as a\n"
        "before = gc.get_freeze_count()\n"
        "a.tune_gc()\n"
        "print(gc.get_threshold() == a.GC_THRESHOLDS, gc.get_freeze_count() > before)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True"]
