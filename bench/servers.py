"""Start, probe and stop the benchmark's server processes (fast backend, `ccbench proxy`, LiteLLM's proxy).

Each server is a real subprocess started the way a user starts it, so its event loop, its memory (RSS from
/proc/PID/status) and its CPU are its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


class BenchSetupError(RuntimeError):
    """A server could not be started; the message says which and why (exit code 2)."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    base_url: str  # root URL, e.g. http://127.0.0.1:8082
    log_path: Path
    cleanup: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this server's own process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for path in self.cleanup:
            with contextlib.suppress(OSError):
                path.unlink()


def free_port() -> int:
    """A port that was free a moment ago (for servers that cannot report the port they bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (`ccbench proxy --workers N` forks its workers), parent first."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return tree


def rss_kib(pid: int) -> int | None:
    """Resident set size in KiB (VmRSS) of a process and its descendants, None when it is gone."""
    total = None
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = (total or 0) + int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class CpuTimes:
    on_cpu_s: float  # time the process's threads ran
    runqueue_wait_s: float | None  # time they were runnable but waited for a core (None: no schedstat)
    threads: frozenset[int] = frozenset()  # the thread ids the two figures above were summed over
    process_cpu_s: float | None = (
        None  # utime + stime from /proc/PID/stat: exited threads included, 10 ms steps
    )


def cpu_times(pid: int) -> dict[int, CpuTimes]:
    """CPU time and run-queue wait of a process and each of its descendants, by pid (empty when it is gone)."""
    return {member: part for member in process_tree(pid) if (part := _own_cpu_times(member)) is not None}


def cpu_delta(before: dict[int, CpuTimes], after: dict[int, CpuTimes]) -> CpuTimes | None:
    """What the process tree used between two readings, never less than zero.

    Per-thread figures (nanoseconds) are used while a process kept all its threads; when some exited (LiteLLM's
    thread pools) their time is gone from the per-thread sums, so that process's CPU comes from /proc/PID/stat
    (which keeps it, in 10 ms steps) and the run-queue wait becomes unknown. A process that exited meanwhile is
    left out; one born meanwhile counts whole."""
    if not after:
        return None
    used = waited = 0.0
    wait_known = True
    for member, now in after.items():
        then = before.get(member, CpuTimes(0.0, 0.0, now.threads, 0.0))
        if then.threads <= now.threads:
            used += now.on_cpu_s - then.on_cpu_s
            if now.runqueue_wait_s is None or then.runqueue_wait_s is None:
                wait_known = False
            else:
                waited += now.runqueue_wait_s - then.runqueue_wait_s
        else:
            used += max(0.0, (now.process_cpu_s or 0.0) - (then.process_cpu_s or 0.0))
            wait_known = False
    return CpuTimes(used, waited if wait_known else None)


def _process_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu_times(pid: int) -> CpuTimes | None:
    """CPU time and run-queue wait of all of a process's threads (/proc/PID/task/*/schedstat), None when gone.

    CPU per request barely moves when other processes share the cores, unlike req/s; the run-queue wait says
    how long the process was ready to run but had no core, i.e. how much of its latency the machine caused."""
    process_cpu = _process_cpu_s(pid)
    try:
        on_cpu = waited = 0
        threads = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            ran, wait, _slices = (task / "schedstat").read_text().split()
            on_cpu, waited = on_cpu + int(ran), waited + int(wait)
            threads.append(int(task.name))
        return CpuTimes(on_cpu / 1e9, waited / 1e9, frozenset(threads), process_cpu)
    except FileNotFoundError:  # a kernel without schedstat: CPU time from /proc/PID/stat, no wait
        if process_cpu is None:
            return None
        return CpuTimes(process_cpu, None, frozenset(), process_cpu)
    except (OSError, ValueError):
        return None


def _spawn(
    name: str, command: list[str], env: dict[str, str], **popen: object
) -> tuple[subprocess.Popen, Path]:
    """Start a server with its output in a temporary log file (read back when it fails to start)."""
    handle, name_on_disk = tempfile.mkstemp(prefix=f"ccbench-bench-{name}-", suffix=".log")
    with os.fdopen(handle, "wb") as log:
        popen.setdefault("stdout", log)
        process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=log, env=env, **popen)  # type: ignore[call-overload]
    return process, Path(name_on_disk)


def _wait_healthy(server: Server, path: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll `path` until it answers 200; otherwise stop the server and raise with the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            problem = f"{server.name} exited with {server.process.returncode}"
            break
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    else:
        problem = f"{server.name} did not answer {path} within {timeout:.0f} s"
    tail = server.log_tail()
    server.stop()
    raise BenchSetupError(f"{problem}:\n{tail}")


def start_fast_backend(
    module: str = "bench.fast_backend", name: str = "fast backend", extra_args: tuple[str, ...] = ()
) -> Server:
    """A benchmark server module (bench/fast_backend.py unless told otherwise); it prints the port it bound."""
    command = [sys.executable, "-u", "-m", module, "--port", "0", *extra_args]
    env = {**os.environ, "PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH"))}
    process, log_path = _spawn("backend", command, env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "LISTENING <port>" or EOF when it failed
    if not line.startswith("LISTENING "):
        process.kill()
        raise BenchSetupError(f"{name} did not start: {line!r} {log_path.read_text(errors='replace')}")
    server = Server(name, process, f"http://127.0.0.1:{int(line.split()[1])}", log_path, [log_path])
    _wait_healthy(server, "/health")
    return server


def start_vllm_stack_backend() -> Server:
    """The same answers behind FastAPI + uvicorn (bench/vllm_stack_backend.py); needs the `bench` extra."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise BenchSetupError("fastapi and uvicorn are not installed (pip install -e '.[bench]')")
    return start_fast_backend("bench.vllm_stack_backend", "vLLM-stack backend")


def start_paced_backend(pace_ms: float) -> Server:
    """bench/fast_backend.py writing each event of a stream `pace_ms` apart, as a model generating tokens does."""
    return start_fast_backend(name="paced backend", extra_args=("--pace-ms", f"{pace_ms:g}"))


def start_floor_relay(upstream: str) -> Server:
    """bench/floor_relay.py in front of `upstream`: the proxy's HTTP stack without its work."""
    return start_fast_backend("bench.floor_relay", "aiohttp floor relay", ("--upstream", f"{upstream}/v1"))


def ccbench_command() -> list[str]:
    """The `ccbench` console script's entry point, run by this interpreter from this checkout.

    Not the `ccbench` on PATH: that may belong to another checkout (an editable install elsewhere), and the
    benchmark must measure the code it ships with."""
    return [sys.executable, "-c", "from harness.cli import main; main()"]


def _with_repo_root(pythonpath: str | None) -> str:
    return os.pathsep.join([str(REPO_ROOT), *([pythonpath] if pythonpath else [])])


def start_ccbench_proxy(
    upstream: str, max_concurrency: int, extra_args: list[str], launcher: list[str] | None = None
) -> Server:
    """`ccbench proxy --upstream URL/v1 --port P --max-concurrency N`, exactly as a user runs it.

    `launcher` replaces `ccbench` (e.g. a script that patches the proxy) to A/B a change before it lands."""
    port = free_port()
    command = (launcher or ccbench_command()) + ["proxy", "--upstream", f"{upstream}/v1", "--port", str(port)]
    command += ["--max-concurrency", str(max_concurrency), *extra_args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH"))}
    process, log_path = _spawn("proxy", command, env)
    server = Server("ccbench proxy", process, f"http://127.0.0.1:{port}", log_path, [log_path])
    _wait_healthy(server, "/health")
    return server


def litellm_command() -> list[str] | None:
    """LiteLLM's proxy CLI: $CCBENCH_LITELLM, else the `litellm` script installed beside this interpreter (by
    `pip install -e '.[bench]'`, found even when its environment is not activated), else `litellm` on PATH."""
    configured = os.environ.get("CCBENCH_LITELLM")
    if configured:
        return [configured]
    beside = Path(sys.executable).parent / "litellm"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    installed = shutil.which("litellm")
    return [installed] if installed else None


def litellm_config(upstream: str, model_names: list[str]) -> dict:
    """Every Claude model name the bodies use routes to the fast backend as an OpenAI model."""
    params = {"model": "openai/bench-model", "api_base": f"{upstream}/v1", "api_key": "sk-bench-not-a-secret"}
    return {
        "model_list": [{"model_name": name, "litellm_params": dict(params)} for name in model_names],
        "litellm_settings": {
            "drop_params": True,
            "telemetry": False,
            "set_verbose": False,
            # LiteLLM >= 1.8x sends openai/ models' /v1/messages to the Responses API; the fast backend (like
            # vLLM / llama.cpp) serves Chat Completions, which is the translation being compared.
            "use_chat_completions_url_for_anthropic_messages": True,
        },
    }


def start_litellm(upstream: str, model_names: list[str]) -> tuple[Server, str]:
    """LiteLLM's proxy on the same backend, one worker; returns it and the per-run master key its clients send.

    LiteLLM refuses to start without a master key; a random one lives only in memory for this run.
    """
    command = litellm_command()
    if command is None:
        raise BenchSetupError(
            "litellm is not installed (pip install -e '.[bench]', or set CCBENCH_LITELLM to its litellm script)"
        )
    port = free_port()
    master_key = "sk-" + secrets.token_hex(16)
    config_fd, config_name = tempfile.mkstemp(prefix="ccbench-bench-litellm-", suffix=".yaml")
    with os.fdopen(config_fd, "w") as handle:
        yaml.safe_dump(litellm_config(upstream, model_names), handle)
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list at start-up
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": master_key,
    }
    args = ["--config", config_name, "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    process, log_path = _spawn("litellm", command + args, env)
    server = Server(
        "litellm proxy", process, f"http://127.0.0.1:{port}", log_path, [log_path, Path(config_name)]
    )
    _wait_healthy(server, "/health/liveliness", timeout=180.0)
    return server, master_key
