"""uvloop when it is installed (it is optional), so neither the fake backend nor the client is the bottleneck."""

from __future__ import annotations

import asyncio
import os

NO_UVLOOP_ENV = "CCBENCH_BENCH_NO_UVLOOP"  # set to 1 to measure with the standard asyncio loop


def install_fast_loop() -> str:
    """Switch the event loop policy to uvloop if available; return the loop's name for the report."""
    if os.environ.get(NO_UVLOOP_ENV) == "1":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
