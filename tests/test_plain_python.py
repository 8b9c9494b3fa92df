"""The same source as plain Python, where this install runs the translation modules compiled (proxy/native.py).

Plain Python is what a machine without a C compiler installs, and the only build in which the `plain_python`
tests can count calls inside the translation modules (that a long tool call is not rescanned per fragment, that
a shared tool list is translated once). So the test files that hold them, and the core translation tests, run
here again in a copy of the checkout without the compiled modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.native import MODULES, compiled_modules

ROOT = Path(__file__).resolve().parent.parent
TEST_FILES = (
    "tests/proxy/test_long_tool_calls.py",  # the plain_python tests
    "tests/proxy/test_bodyparse.py",
    "tests/proxy/test_body_tail.py",
    "tests/proxy/test_coalesce.py",
    "tests/proxy/test_fixture_translation.py",
    "tests/proxy/test_translate_request.py",
    "tests/proxy/test_stream_machine.py",
)
TIMEOUT = 600  # seconds; the files take about a minute
LEFT_OUT = ("*.so", "*.pyd", "build", ".git", "__pycache__", "*.egg-info", ".hypothesis", "node_modules")


@pytest.mark.skipif(not compiled_modules(), reason="the whole suite already runs as plain Python here")
def test_translation_tests_pass_as_plain_python(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*LEFT_OUT), symlinks=True)
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "from proxy.native import compiled_modules as c; print(len(c()))"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "0", "the copy must import the .py sources"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    assert " skipped" not in result.stdout.splitlines()[-1], tail  # the plain_python tests really ran
    assert len(MODULES) == len(compiled_modules())  # and this install runs every listed module compiled
