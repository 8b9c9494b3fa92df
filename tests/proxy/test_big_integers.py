"""Integers beyond 64 bits in what a backend answers: orjson cannot write them, the standard library can."""

from __future__ import annotations

from tests.proxy.conftest import MESSAGE, ProxyFactory
from tests.proxy.fake_backend import FakeBackend, Reply


async def test_a_tool_input_with_an_integer_beyond_64_bits_reaches_a_non_streaming_client(
    start_proxy: ProxyFactory,
) -> None:
    """orjson cannot write such an integer: the whole answer was a 500 "internal proxy error" (and so was every
    retry), while the same answer streamed went through."""
    big = 123456789012345678901234567890
    call = {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": f'{{"n": {big}}}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    completion = {
        "id": "x",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5},
    }
    async with FakeBackend(Reply(completion=completion)) as backend:
        proxy = await start_proxy(upstream=backend.url)
        answer = await proxy.sdk().messages.create(**MESSAGE)
    assert answer.stop_reason == "tool_use"
    assert [block.input for block in answer.content if block.type == "tool_use"] == [{"n": big}]
