"""Ids for requests, messages and tool calls: unique and shaped like Anthropic's, but not secrets.

They come from Python's Mersenne Twister, which is seeded from the OS at start-up and reseeded in every forked
worker, rather than from a getrandom() system call each: two such calls per request showed in the profile, and
nothing relies on these ids being unguessable (the API keys are the secrets; they never pass through here).
"""

from __future__ import annotations

import base64
import random


def request_id() -> str:
    """`req_` + 24 base62-ish characters."""
    text = base64.urlsafe_b64encode(random.randbytes(18)).decode()
    return "req_" + text.replace("-", "A").replace("_", "B")


def message_id() -> str:
    return "msg_" + random.randbytes(12).hex()


def tool_use_id() -> str:
    return "toolu_" + random.randbytes(12).hex()
