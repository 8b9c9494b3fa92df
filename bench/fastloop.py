"""uvloop when it is installed (it is optional), so neither the fake backend nor the client is the bottleneck."""

from __future__ import annotations

import asyncio
import importlib.util
import os

NO_UVLOOP_ENV = "CCBENCH_BENCH_NO_UVLOOP"  # set to 1 to measure with the standard asyncio loop


def fast_loop_name() -> str:
    """The loop the benchmark's own processes use: "uvloop" when installed and not disabled, else "asyncio"."""
    if os.environ.get(NO_UVLOOP_ENV) == "1" or importlib.util.find_spec("uvloop") is None:
        return "asyncio"
    return "uvloop"


def install_fast_loop() -> str:
    """Switch the event loop policy to uvloop if available; return the loop's name for the report."""
    name = fast_loop_name()
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name
