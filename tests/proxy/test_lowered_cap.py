"""An answer cut at a max_tokens the proxy lowered (--max-output-tokens, or to fit the context): Claude Code then
errors with "exceeded the N output token maximum", N being what it asked for, so the proxy says why, once."""

from __future__ import annotations

import logging

import pytest

from proxy.translate.outcome import LOWERED_CAP_PROBLEM
from proxy.translate.response import completion_to_message
from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.proxy.stream_helpers import chunk, make, run


@pytest.mark.parametrize(
    ("lowered", "finish", "advised"),
    [(True, "length", True), (False, "length", False), (True, "stop", False)],
)
def test_both_paths_name_a_cut_only_when_the_proxy_lowered_the_limit(lowered, finish, advised):
    translator = make()
    translator.ctx.lowered_max_tokens = lowered
    translator, _ = run([chunk({"content": "I will now"}), chunk({}, finish)], translator)
    assert (LOWERED_CAP_PROBLEM in translator.problems) is advised
    ctx = make().ctx
    ctx.lowered_max_tokens = lowered
    completion = {"choices": [{"index": 0, "message": {"content": "I will now"}, "finish_reason": finish}]}
    completion_to_message(completion, ctx)
    assert (LOWERED_CAP_PROBLEM in ctx.problems) is advised


async def test_the_proxy_logs_the_cut_once_and_only_when_it_lowered_the_limit(start_proxy, caplog):
    caplog.set_level(logging.INFO)
    cut = Reply(chunks=chunks_from_blocks([{"type": "text", "text": "I will now"}], finish_reason="length"))
    async with FakeBackend(cut) as backend:
        proxy: RunningProxy = await start_proxy(upstream=backend.url, max_output_tokens=50)
        client = proxy.sdk()
        for max_tokens in (40, 1000, 1000):  # 40: the client's own limit, not the proxy's doing
            message = await client.messages.create(
                model="claude-sonnet-5", max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}]
            )
            assert message.stop_reason == "max_tokens"
            if max_tokens == 40:
                assert not [r for r in caplog.records if LOWERED_CAP_PROBLEM in r.getMessage()]
        async with client.messages.stream(
            model="claude-sonnet-5", max_tokens=1000, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert (await stream.get_final_message()).stop_reason == "max_tokens"
    sent = [r.body["max_tokens"] for r in backend.requests if r.path.endswith("/chat/completions")]
    assert sent == [40, 50, 50, 50]
    advice = [
        r for r in caplog.records if r.levelno == logging.WARNING and LOWERED_CAP_PROBLEM in r.getMessage()
    ]
    assert len(advice) == 1
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" in advice[0].getMessage()


async def test_a_limit_lowered_to_fit_the_context_is_named_too(start_proxy, caplog):
    """Claude Code asks for 32,000 tokens; a 4,096-token server gets what its context leaves."""
    caplog.set_level(logging.INFO)
    cut = Reply(chunks=chunks_from_blocks([{"type": "text", "text": "I will now"}], finish_reason="length"))
    async with FakeBackend(cut, max_model_len=4096) as backend:
        proxy: RunningProxy = await start_proxy(upstream=backend.url)
        message = await proxy.sdk().messages.create(
            model="claude-sonnet-5", max_tokens=32000, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.stop_reason == "max_tokens"
    (sent,) = [r.body["max_tokens"] for r in backend.requests if r.path.endswith("/chat/completions")]
    assert sent < 4096
    assert [
        r for r in caplog.records if r.levelno == logging.WARNING and LOWERED_CAP_PROBLEM in r.getMessage()
    ]
