"""Ctrl-C or SIGTERM during `ccbench run`: requests in flight are cancelled, the scenarios that finished are
scored and written (marked as a partial run), the exit code is the signal's, and gate refuses such a file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.backends import resolve_target
from harness.cli import main
from harness.replay import RunOptions, plan_jobs, run_scenarios
from harness.results import contract_problems
from harness.scenarios import load_scenarios, resolve_turns, select_scenarios
from tests.proxy.backend_thread import BackendThread
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.report.factory import results, write

CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.argv[0] = 'ccbench'; main()"]
REPO = Path(__file__).resolve().parents[2]
ANSWER = Reply(chunks=chunks_from_blocks([{"type": "text", "text": "fine"}]))
ANSWERED = 3  # answers before the backend stops answering


def completions(backend: FakeBackend) -> int:
    return sum(r.path.endswith("/chat/completions") for r in backend.requests)


def hanging_backend() -> FakeBackend:
    """Answers the first ANSWERED completions, then accepts and never answers (as a stuck server does)."""
    backend = FakeBackend(Reply.never_answer())
    backend.push(*[ANSWER] * ANSWERED)
    return backend


def stop_a_run(
    tmp_path: Path, backend: FakeBackend, answered: int, signum: int, out: Path
) -> tuple[int, str]:
    """`ccbench run --suite smoke` against `backend`, sent `signum` once the request after the first
    `answered` ones hangs at the backend."""
    with BackendThread(backend) as running:
        argv = ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke"]
        process = subprocess.Popen(
            [*CLI, *argv, "--concurrency", "1", "--out", str(out)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while completions(backend) <= answered and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
    return process.returncode, output


async def test_a_stopped_replay_keeps_only_whole_scenarios() -> None:
    import asyncio

    chosen = [resolve_turns(s) for s in select_scenarios(load_scenarios(REPO / "scenarios"), ["smoke"], [])]
    async with hanging_backend() as backend:
        options = RunOptions(target=resolve_target("vllm", backend.url, None), concurrency=1, timeout=60)
        stop = asyncio.Event()
        running = asyncio.ensure_future(run_scenarios(chosen, options, stop=stop))
        for _ in range(500):
            if completions(backend) > ANSWERED:
                break
            await asyncio.sleep(0.02)
        stop.set()
        replay = await asyncio.wait_for(running, 30)
    assert replay.interrupted and replay.finished < replay.planned
    assert replay.scenarios, "the scenarios answered before the hang are kept"
    kept = {s["id"] for s in replay.scenarios}
    assert len(kept) < len(chosen)
    # every kept scenario is whole: an entry for each of its planned requests, none cut off
    planned = Counter(job.scenario.id for job in plan_jobs(chosen, 1))
    entries = {s["id"]: len(s["turns"]) + len(s["count_tokens"]) for s in replay.scenarios}
    assert entries == {sid: planned[sid] for sid in kept}
    assert replay.summary["scenarios"] == len(kept)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_writes_the_finished_scenarios_and_exits_with_the_signal(
    tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "r.json"
    returncode, output = stop_a_run(tmp_path, hanging_backend(), ANSWERED, signum, out)
    assert returncode == 128 + signum, output
    assert "Traceback" not in output
    data = json.loads(out.read_text())
    assert contract_problems(data) == []
    stopped = data["run"]["interrupted"]
    assert stopped["finished"] < stopped["planned"] and stopped["finished"] >= ANSWERED
    assert 1 <= len(data["scenarios"]) < 12
    assert f"interrupted after {stopped['finished']} of {stopped['planned']} requests" in output
    assert f"the {len(data['scenarios'])} scenarios that finished" in output


def test_gate_refuses_a_partial_run_and_compare_says_it_is_one(tmp_path: Path) -> None:
    partial = {**results(), "run": {"concurrency": 1, "timeout_s": 600.0, "max_output_tokens": None,
                                    "interrupted": {"finished": 5, "planned": 68}}}  # fmt: skip
    base = write(tmp_path / "base.json", results())
    part = write(tmp_path / "part.json", partial)
    for pair in ([base, part], [part, base]):
        gate = CliRunner().invoke(main, ["gate", "--baseline", str(pair[0]), "--candidate", str(pair[1])])
        assert gate.exit_code == 2, gate.output
        assert f"{part} is a partial run (interrupted after 5 of 68 requests)" in " ".join(
            gate.output.split()
        )
    compare = CliRunner().invoke(main, ["compare", str(base), str(part)])
    assert compare.exit_code == 0, compare.output
    assert (
        "part.json was interrupted after 5 of 68 requests: its numbers cover only the 3 scenarios"
        in " ".join(compare.output.split())
    )


def test_stopped_before_any_scenario_finished_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    returncode, output = stop_a_run(tmp_path, FakeBackend(Reply.never_answer()), 0, signal.SIGINT, out)
    assert returncode == 130, output
    assert re.search(
        r"interrupted after 0 of \d+ requests, before any scenario finished: no results written", output
    )
    assert not out.exists()


def test_a_second_signal_quits_at_once_and_exit_codes_follow_the_signal() -> None:
    from harness.stop_signals import StopRequest

    stop = StopRequest()
    stop.received(signal.SIGTERM)
    assert stop.event.is_set() and stop.exit_code == 143
    with pytest.raises(KeyboardInterrupt):
        stop.received(signal.SIGINT)  # the user will not wait for the clean stop
    assert stop.exit_code == 143  # the first signal decides
    assert StopRequest().exit_code == 130


def _jobs_done_until(chosen, repeats: int, done: int):
    from harness.validation import ResponseCheck

    jobs = plan_jobs(chosen, repeats)
    for job in jobs[:done]:
        job.check = ResponseCheck()
    return jobs


def test_with_repeats_whole_repeats_are_kept_else_whole_scenarios_of_the_first() -> None:
    from harness.replay import finished_part

    chosen = [resolve_turns(s) for s in select_scenarios(load_scenarios(REPO / "scenarios"), ["smoke"], [])]
    per_repeat = len(plan_jobs(chosen, 1))
    # into the third of three repeats: the first two, every scenario
    jobs = _jobs_done_until(chosen, 3, 2 * per_repeat + 3)
    kept, kept_jobs, repeats = finished_part(chosen, jobs, 3)
    assert (kept, repeats) == (chosen, 2) and len(kept_jobs) == 2 * per_repeat
    # still in the first: the scenarios it finished, as one repeat
    jobs = _jobs_done_until(chosen, 3, 3)
    kept, kept_jobs, repeats = finished_part(chosen, jobs, 3)
    assert repeats == 1 and 0 < len(kept) < len(chosen)
    assert all(job.check is not None and job.repeat == 0 for job in kept_jobs)
    assert {job.scenario.id for job in kept_jobs} == {s.id for s in kept}
    # nothing missing: everything, unchanged
    jobs = _jobs_done_until(chosen, 2, 2 * per_repeat)
    assert finished_part(chosen, jobs, 2) == (chosen, jobs, 2)


async def test_a_replay_stopped_in_its_second_repeat_keeps_the_first_whole() -> None:
    import asyncio

    chosen = [resolve_turns(s) for s in select_scenarios(load_scenarios(REPO / "scenarios"), ["smoke"], [])]
    first_repeat = sum(job.kind == "messages" for job in plan_jobs(chosen, 1))
    backend = FakeBackend(Reply.never_answer())
    backend.push(*[ANSWER] * (first_repeat + 2))
    async with backend:
        options = RunOptions(
            target=resolve_target("vllm", backend.url, None), concurrency=1, repeats=2, timeout=60
        )
        stop = asyncio.Event()
        running = asyncio.ensure_future(run_scenarios(chosen, options, stop=stop))
        for _ in range(1000):
            if completions(backend) > first_repeat + 2:
                break
            await asyncio.sleep(0.02)
        stop.set()
        replay = await asyncio.wait_for(running, 30)
    assert replay.interrupted
    assert replay.summary["repeats"] == 1 and len(replay.scenarios) == len(chosen)
    assert all(turn["repeat"] == 0 for scenario in replay.scenarios for turn in scenario["turns"])


def test_the_stop_line_says_what_the_results_hold() -> None:
    from harness.commands.run import _kept
    from harness.replay import Replay

    def replay(scenarios: int, repeats: int) -> Replay:
        return Replay(None, {"repeats": repeats}, [{}] * scenarios, planned=100, finished=50)  # type: ignore[arg-type]

    assert _kept(replay(3, 1), 12, 1) == "the 3 scenarios that finished"
    assert _kept(replay(12, 2), 12, 3) == "all 12 scenarios in the 2 of 3 repeats that finished"
    assert _kept(replay(5, 1), 12, 3) == "the 5 scenarios that finished their first repeat (of 3)"
