"""Request, message and tool ids: Anthropic's shapes, unique, and different in every forked worker."""

from __future__ import annotations

import os
import re

import pytest

from proxy.ids import message_id, request_id, tool_use_id


def test_shapes() -> None:
    assert re.fullmatch(r"req_[A-Za-z0-9]{24}", request_id())
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message_id())
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", tool_use_id())


def test_unique() -> None:
    for make in (request_id, message_id, tool_use_id):
        assert len({make() for _ in range(10_000)}) == 10_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_workers_draw_different_ids() -> None:
    """`ccbench proxy --workers N` forks: each worker must not repeat its siblings' ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, " ".join(message_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    parent = {message_id() for _ in range(5)}
    assert len(child) == 5 and not child & parent
