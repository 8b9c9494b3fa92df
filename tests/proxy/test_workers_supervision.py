"""`ccbench proxy --workers N` as an operator runs it for days (operator audit, 2026-12-04).

Before: a worker killed with SIGKILL went unnoticed (nothing logged, no replacement, its in-flight gauge stuck);
a parent killed with SIGKILL or stopped with SIGHUP left its workers serving with PPID 1; a second proxy on the
same port joined it silently through SO_REUSEPORT; and a second Ctrl-C did not end a long shutdown grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.config import Config
from proxy.workers import LISTEN_BACKLOG, PARENT_SIGNALS, exit_cause, run_workers
from tests.proxy.fake_backend import FakeBackend, Reply
from tests.proxy.test_cli_proxy import STOP_TIMEOUT, read_banner, spawn

BODY = {"model": "claude-opus-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@contextlib.asynccontextmanager
async def proxy_process(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ccbench proxy …` as a child process, killed at the end if a test left it running (its workers follow)."""
    process = await spawn("proxy", *args, env=env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def worker_pids(url: str, tries: int = 40) -> set[int]:
    """The pids answering /health, each request on a new connection (the kernel spreads connections)."""
    found: set[int] = set()
    for _ in range(tries):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            with contextlib.suppress(aiohttp.ClientError):
                found.add((await (await http.get(url + "/health")).json())["pid"])
    return found


async def stderr_until(process: asyncio.subprocess.Process, needle: str, timeout: float = 20.0) -> str:
    assert process.stderr is not None
    seen = ""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            line = await process.stderr.readline()
            assert line, f"stderr closed before {needle!r}:\n{seen}"
            seen += line.decode()
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is dead too


def test_exit_causes_read_as_an_operator_needs_them() -> None:
    assert exit_cause(1 << 8) == "exited with status 1"
    assert exit_cause(signal.SIGKILL) == "was killed by signal SIGKILL"


async def test_a_killed_worker_is_reported_and_replaced(backend: FakeBackend) -> None:
    async with proxy_process("--upstream", backend.url, "--port", "0", "--workers", "2") as process:
        url, banner = await read_banner(process)
        assert f"listening on {url} (2 worker processes)" in banner
        before = await worker_pids(url)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        log = await stderr_until(process, "starting a new one")
        assert f"(pid {victim}) was killed by signal SIGKILL; starting a new one" in log
        after: set[int] = set()
        async with asyncio.timeout(30):
            while len(after - {victim}) < 2:
                after |= await worker_pids(url, tries=10)
        assert victim not in after and not alive(victim)  # replaced, and reaped (no zombie)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


def metrics_dirs(tmp: Path) -> list[Path]:
    return list(tmp.glob("ccbench-metrics-*"))


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
async def test_workers_do_not_outlive_their_parent(
    backend: FakeBackend, how: signal.Signals, tmp_path: Path
) -> None:
    """Nor does the workers' metrics directory: the parent removes it, or the last workers when it was killed."""
    env = {"TMPDIR": str(tmp_path)}
    async with proxy_process("--upstream", backend.url, "--port", "0", "--workers", "2", env=env) as process:
        url, _ = await read_banner(process)
        workers = await worker_pids(url)
        assert len(workers) == 2
        assert len(metrics_dirs(tmp_path)) == 1
        process.send_signal(how)
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        async with asyncio.timeout(STOP_TIMEOUT):
            while any(alive(pid) for pid in workers):
                await asyncio.sleep(0.1)
    assert metrics_dirs(tmp_path) == []


async def test_a_port_in_use_is_refused_with_workers_too(backend: FakeBackend) -> None:
    with socket.create_server(("127.0.0.1", 0), reuse_port=True) as taken:
        port = str(taken.getsockname()[1])
        process = await spawn("proxy", "--upstream", backend.url, "--port", port, "--workers", "2")
        _, stderr = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT * 3)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in stderr.decode()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_second_signal_ends_a_long_grace_at_once(workers: str) -> None:
    async with FakeBackend(Reply(prefill_delay=math.inf)) as silent:
        env = {"CCBENCH_SHUTDOWN_GRACE": "120"}
        async with proxy_process(
            "--upstream", silent.url, "--port", "0", "--workers", workers, env=env
        ) as process:
            url, _ = await read_banner(process)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                answer = asyncio.ensure_future(http.post(url + "/v1/messages", json=BODY))
                async with asyncio.timeout(STOP_TIMEOUT):
                    while not any(r.path.endswith("/chat/completions") for r in silent.requests):
                        await asyncio.sleep(0.02)
                process.send_signal(signal.SIGTERM)
                log = await stderr_until(process, "(signal again to stop now)")
                assert "shutting down: waiting up to 120 s for 1 request in flight" in log
                await asyncio.sleep(1.0)  # past the debounce of one Ctrl-C reaching a worker twice
                process.send_signal(signal.SIGTERM)
                response = await answer
                assert response.status == 529
                assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
async def test_workers_listen_with_the_backlog_asked_for(backend: FakeBackend) -> None:
    with open("/proc/sys/net/core/somaxconn") as somaxconn:
        if int(somaxconn.read()) < LISTEN_BACKLOG:
            pytest.skip("the kernel caps the backlog below LISTEN_BACKLOG")
    async with proxy_process("--upstream", backend.url, "--port", "0", "--workers", "2") as process:
        url, _ = await read_banner(process)
        assert len(await worker_pids(url)) == 2  # both workers are listening
        port = url.rsplit(":", 1)[1]
        listing = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout
        backlogs = [line.split()[2] for line in listing.splitlines()]  # Send-Q of a listener: its backlog
        assert backlogs == [str(LISTEN_BACKLOG)] * 2, listing
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0


def fail_at_once(config: Config, sock: socket.socket, show_banner: bool) -> None:
    raise RuntimeError("this worker cannot start")


def test_workers_dying_at_start_stop_the_proxy_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    """No restart storm: a worker that dies right after its start, again and again, ends the proxy (status 1)."""
    handlers = {sig: signal.getsignal(sig) for sig in PARENT_SIGNALS}
    try:
        status = run_workers(Config(host="127.0.0.1", port=0, workers=2), socket.AF_INET, fail_at_once)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert status == 1
    assert "exited with status 1" in caplog.text
    assert "times in a row: stopping the proxy" in caplog.text


async def test_sighup_stops_a_single_process_proxy_cleanly(backend: FakeBackend) -> None:
    """The terminal closing (SIGHUP) is a stop like SIGTERM: requests in flight get the grace, exit status 0.
    Before, SIGHUP's default action killed the process on the spot."""
    async with proxy_process("--upstream", backend.url, "--port", "0") as process:
        url, banner = await read_banner(process)
        assert f"listening on {url}\n" in banner  # one process: no worker count
        process.send_signal(signal.SIGHUP)
        assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0
