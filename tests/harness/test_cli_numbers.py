"""Number options refuse nan and inf up front: nan passes every range check (each comparison is false) and an
infinite timeout overflowed the event loop's timer deep inside aiohttp, a traceback after the run started."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import main

CASES = [
    (["run", "--backend", "reference", "--timeout"], "--timeout"),
    (["live", "--backend", "reference", "--timeout"], "--timeout"),
    (["backend", "start", "llamacpp", "--ready-timeout"], "--ready-timeout"),
    (
        ["gate", "--baseline", "b.json", "--candidate", "c.json", "--max-latency-growth"],
        "--max-latency-growth",
    ),
    (
        ["gate", "--baseline", "b.json", "--candidate", "c.json", "--min-schema-validity"],
        "--min-schema-validity",
    ),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("args", "option"), CASES)
def test_nan_and_inf_are_usage_errors(args: list[str], option: str, value: str) -> None:
    result = CliRunner().invoke(main, [*args, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
