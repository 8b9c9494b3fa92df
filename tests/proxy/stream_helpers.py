"""Helpers for the StreamTranslator tests: a translator for two tools, OpenAI chunk builders, and the events
accumulated by the anthropic SDK's own code (validated against its types first)."""

from __future__ import annotations

import pydantic
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent

from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator

SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
NOARGS = {"type": "object", "properties": {}}


def make(stop_sequences=()):
    ctx = ResponseContext(
        "claude-sonnet-5",
        {"Read": "Read", "Ls": "Ls"},
        {"Read": SCHEMA, "Ls": NOARGS},
        list(stop_sequences),
        "msg_1",
        50,
    )
    return StreamTranslator(ctx)


def chunk(delta=None, finish=None, usage=None, **extra):
    out: dict = {
        "choices": [{"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}]
    }
    if usage is not None:
        out["usage"] = usage
    out.update(extra)
    return out


def tc(index, id_=None, name=None, arguments=None):
    fragment: dict = {"index": index}
    if id_:
        fragment["id"] = id_
    function = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        fragment["function"] = function
    return fragment


def run(chunks, translator=None):
    translator = translator or make()
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish()
    return translator, events


EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def accumulate(events):
    """Every event validated against the SDK's types, then accumulated by the SDK's own code."""
    snapshot, bufs = None, {}
    for event in events:
        if event["type"] not in ("error", "ping"):  # the SDK's SSE layer handles these itself
            parsed = EVENT.validate_python(event)
            snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def blocks(events):
    return [b.to_dict() for b in accumulate(events).content]


def types(events):
    return [e["type"] for e in events]
