"""Record tests/cassettes/llamacpp_smollm2.yaml: the proxy's upstream HTTP calls to a real llama-server.

    python -m tests.e2e.record_llamacpp_cassette        (needs pip install -e '.[llamacpp]'; ~30 s)

vcrpy patches aiohttp's client, so everything the proxy sends to llama-server (probe: /v1/models, /props;
count_tokens: /apply-template, /tokenize; streaming and non-streaming /chat/completions) is stored, while the
SDK's own calls to the proxy pass through (see `_upstream_only`). test_llamacpp_cassette.py replays it.
"""

from __future__ import annotations

import asyncio

import anthropic

from harness.live import running_proxy
from harness.llamacpp import running_llama_server
from proxy.config import Config
from tests.e2e.llamacpp_support import (
    CASSETTE,
    TEXT_STREAM,
    TOOL_NON_STREAM,
    TOOL_STREAM,
    cassette_vcr,
    count_kwargs,
    sdk_kwargs,
)


async def exercise_proxy(proxy_url: str) -> tuple[int, list[anthropic.types.Message]]:
    """The calls made while recording and again while replaying, in the same order: (count_tokens, messages)."""
    client = anthropic.AsyncAnthropic(
        base_url=proxy_url, api_key="sk-ant-local-fake", timeout=120, max_retries=0
    )
    messages = []
    counted = await client.messages.count_tokens(**count_kwargs(TOOL_STREAM))
    async with client.messages.stream(**sdk_kwargs(TOOL_STREAM)) as stream:
        messages.append(await stream.get_final_message())
    messages.append(await client.messages.create(**sdk_kwargs(TOOL_NON_STREAM)))
    async with client.messages.stream(**sdk_kwargs(TEXT_STREAM)) as stream:
        messages.append(await stream.get_final_message())
    return counted.input_tokens, messages


async def record() -> None:
    CASSETTE.parent.mkdir(parents=True, exist_ok=True)
    CASSETTE.unlink(missing_ok=True)
    async with running_llama_server() as server:
        with cassette_vcr("once").use_cassette(str(CASSETTE)):
            async with running_proxy(Config(upstream=server.base_url, thinking="none"), []) as proxy_url:
                count, messages = await exercise_proxy(proxy_url)
                print("count_tokens:", count)
                for message in messages:
                    print(message.stop_reason, [b.type for b in message.content], message.usage.output_tokens)
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    asyncio.run(record())
