"""Smoke test: the proxy benchmark runs end to end in --quick mode (no timing assertions: speed is the
benchmark's business, not the test suite's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_without_errors_and_prints_the_ratio_lines(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/run_bench.py",
            "--quick",
            "--vllm-stack",
            "--scale-workers",
            "2",
            "--floor",
            "--paced-ms",
            "1",
            "--session-messages",
            "60",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "CCBENCH_LITELLM": ""},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    printed = completed.stdout
    assert "4 concurrent: proxy (one process) = " in printed and "× direct" in printed
    assert "4 concurrent: proxy with --workers 2 (one process per core) = " in printed
    assert "c=1 TTFT: " in printed and "ms vs direct" in printed

    results = json.loads(out.read_text())
    measured = {(level["target"], level["concurrency"]) for level in results["levels"]}
    targets = ("direct", "ccbench", "direct-vllm", "ccbench-vllm")  # raw backend, then FastAPI + uvicorn
    once = {
        ("ccbench-workers", 4),
        ("aiohttp-floor", 4),
        ("direct-paced", 4),
        ("ccbench-paced", 4),
        ("direct-long", 4),
        ("ccbench-long", 4),
    }  # there only
    assert measured == {(target, c) for target in targets for c in (1, 4)} | once
    assert results["environment"]["scaled_proxy_workers"] == 2 and results["environment"]["paced_ms"] == 1
    assert results["environment"]["long_session"].startswith("60 messages, ")
    for level in results["levels"]:
        assert level["errors"] == 0, level
        assert level["ok"] == level["requests"] >= 20
        assert level["ttft_ms"]["p50"] is not None
        assert level["ttft_ms"]["p50"] <= level["latency_ms"]["p50"]
    proxy_levels = [level for level in results["levels"] if level["target"].startswith("ccbench")]
    assert all(level["rss_kib"]["after"] > 0 for level in proxy_levels)
    names = {check["name"]: check for check in results["checks"]}
    assert names["throughput_ratio"]["value"] > 0 and names["throughput_ratio_workers"]["value"] > 0
    assert names["vllm_stack_ratio"]["value"] > 0 and "vLLM's HTTP stack" in printed
    assert names["floor_ratio"]["value"] > 0 and "4 concurrent: aiohttp pass-through floor" in printed
    assert names["paced_cpu_us_per_event"]["value"] > 0 and "4 concurrent, token by token" in printed
    assert names["long_session_ratio"]["value"] > 0
    assert "4 concurrent, a turn late in a long session (60 messages, " in printed
    assert names["errors_256"]["passed"] is None and names["soak_rss_growth_pct"]["passed"] is None


def test_fast_backend_streams_twenty_events_that_reassemble_into_one_tool_call() -> None:
    from bench.fast_backend import encode_stream_response

    raw = encode_stream_response()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    body, rest = b"", chunked
    while True:  # undo the HTTP chunking
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    events = [event for event in body.split(b"\n\n") if event]
    assert len(events) == 20 and events[-1] == b"data: [DONE]"
    chunks = [json.loads(event.removeprefix(b"data: ")) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    arguments = "".join(
        call["function"].get("arguments", "")
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert text and json.loads(arguments) == {"file_path": "/workspace/project/hello.py"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_fast_backend_parser_waits_for_whole_bodies_and_reads_chunked_ones() -> None:
    from bench.fast_backend import parse_request

    request = b'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 16\r\n\r\n{"stream": true}'
    assert parse_request(bytearray(request[:-3])) is None
    parsed, consumed = parse_request(bytearray(request + b"GET /v1/models HTTP/1.1\r\n\r\n"))
    assert (parsed.method, parsed.path, parsed.body, consumed) == (
        b"POST",
        b"/v1/chat/completions",
        b'{"stream": true}',
        len(request),
    )
    chunked = b"POST /x/chat/completions?a=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse_request(bytearray(chunked[:-2])) is None
    parsed, consumed = parse_request(bytearray(chunked))
    assert (parsed.path, parsed.body, consumed) == (b"/x/chat/completions", b"abcde", len(chunked))


def test_profile_summary_counts_self_and_inclusive_shares() -> None:
    from bench.profiling import summarize_collapsed

    collapsed = (
        "run (asyncio/base_events.py:10);handle (proxy/app.py:5);loads (orjson:0) 30\n"
        "run (asyncio/base_events.py:10);handle (proxy/app.py:7) 10\n"
        "run (asyncio/base_events.py:10);encode_event (proxy/sse.py:3) 60\n"
    )
    summary = summarize_collapsed(collapsed)
    assert summary["samples"] == 100
    assert summary["self"][0] == {"function": "sse.py:encode_event", "pct": 60.0}
    inclusive = {row["function"]: row["pct"] for row in summary["inclusive"]}
    assert inclusive["app.py:handle"] == 40.0 and inclusive["sse.py:encode_event"] == 60.0
    assert "base_events.py:run" not in inclusive  # the entry chain is in every stack: not informative


def test_a_proxy_that_cannot_start_is_a_clear_error_with_exit_code_2(tmp_path: Path) -> None:
    broken = f"{sys.executable} -c 'import sys; print(\"no such backend\"); sys.exit(3)'"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/run_bench.py",
            "--quick",
            "--proxy-command",
            broken,
            "--out",
            str(tmp_path / "r.json"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "benchmark could not run: ccbench proxy exited with 3" in completed.stdout
    assert "no such backend" in completed.stdout and "Traceback" not in completed.stdout + completed.stderr
    assert not (tmp_path / "r.json").exists()


def test_cpu_of_a_process_tree_ignores_processes_that_exited_and_counts_new_ones() -> None:
    from bench.servers import CpuTimes, cpu_delta

    before = {1: CpuTimes(1.0, 0.5), 2: CpuTimes(2.0, 1.0)}
    after = {1: CpuTimes(1.5, 0.6), 3: CpuTimes(0.2, 0.1)}  # worker 2 exited, worker 3 was started
    used = cpu_delta(before, after)
    assert used is not None
    assert (round(used.on_cpu_s, 6), round(used.runqueue_wait_s or 0, 6)) == (0.7, 0.2)
    assert cpu_delta(before, {}) is None
    assert cpu_delta({}, {1: CpuTimes(1.0, None)}) == CpuTimes(1.0, None)
    # a thread of process 1 exited: its time left the per-thread sum, so the process-wide figure is used
    then = {1: CpuTimes(5.0, 1.0, frozenset({1, 11}), 5.0)}
    now = {1: CpuTimes(4.0, 0.5, frozenset({1}), 6.5)}
    assert cpu_delta(then, now) == CpuTimes(1.5, None)


async def test_a_paced_backend_writes_each_event_on_its_own_and_the_same_bytes_in_all() -> None:
    """`--pace-ms`: the stream goes out one event per write, `pace` apart, and reassembles into the very answer
    the unpaced backend writes at once; a request behind it on the same connection waits for its end."""
    import asyncio

    from bench.fast_backend import BackendProtocol, build_responses, encode_stream_response

    class Transport:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return False

    responses = build_responses()
    protocol, transport = BackendProtocol(responses, pace=0.005), Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    stream_request = b'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 15\r\n\r\n{"stream":true}'
    protocol.data_received(stream_request + b"GET /v1/models HTTP/1.1\r\n\r\n")
    assert len(transport.writes) == 1  # the head with the first event; the rest are scheduled
    await asyncio.sleep(0.005 * 25)
    parts = responses.stream_parts
    assert transport.writes == [*parts, responses.models]
    assert b"".join(parts) == encode_stream_response() and len(parts) == 20
