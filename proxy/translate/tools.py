"""Tool definitions, names, ids and arguments: the parts of tool calling both directions share.

OpenAI servers demand function names matching `^[a-zA-Z0-9_-]{1,64}$` and many reject tool-call ids with
other characters, while Claude Code may send longer names and servers may answer with ids such as
`functions.Read:0`. Every mapping here is deterministic, so the same history always translates to the same
prompt (prefix caches stay warm) and a name always maps back to the tool Claude Code offered.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field

import json_repair
import orjson

from proxy.bodyparse import is_shared
from proxy.errors import AnthropicError
from proxy.ids import tool_use_id
from proxy.textmemo import IdentityMemo, TextMemo
from proxy.tokens import estimate_tool_tokens
from proxy.translate.jsonprefix import MAX_DEPTH, json_depth, loads_exact
from proxy.translate.surrogates import dump_json_text

OPENAI_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

# Keys of an Anthropic custom tool that have no OpenAI counterpart; consumed and reported in `dropped`.
CONSUMED_TOOL_KEYS = (
    "cache_control",
    "defer_loading",
    "eager_input_streaming",
    "input_examples",
    "strict",
    "allowed_callers",
)
# Schema keys that trip backends: llama.cpp's json-schema-to-grammar converter rejects `$schema`.
DROPPED_SCHEMA_KEYS = frozenset({"$schema"})
# JSON-Schema keywords whose value is a map from arbitrary property names to sub-schemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def openai_tool_name(name: str) -> str:
    """An OpenAI-legal function name for an Anthropic tool name; identity when already legal."""
    if OPENAI_NAME_RE.match(name):
        return name
    cleaned = _INVALID_CHARS.sub("_", name)[:55] or "tool"
    return f"{cleaned}_{_short_hash(name)}"


def sanitize_tool_id(tool_id: str) -> str:
    """A tool-call id matching `^[a-zA-Z0-9_-]+$`; identity when already legal, stable otherwise."""
    if TOOL_ID_RE.match(tool_id):
        return tool_id
    cleaned = _INVALID_CHARS.sub("_", tool_id)[:48]
    return f"{cleaned}_{_short_hash(tool_id)}" if cleaned else f"toolu_{_short_hash(tool_id, 24)}"


def new_tool_id() -> str:
    """A fresh Anthropic-style tool_use id for a backend call that came without one."""
    return tool_use_id()


def unique_tool_id(tool_id: str, used: set[str]) -> str:
    """`tool_id`, or `tool_id_2`, `_3`… when the conversation already has it, recorded in `used`.

    Anthropic requires unique ids within a message, and some servers (DeepSeek, GLM) give parallel calls the
    same one: both tool_results would then answer one call. The suffix is deterministic, so a replayed answer
    gets the same ids, and it keeps the id legal for `sanitize_tool_id` (identity on the next turn)."""
    unique, n = tool_id, 2
    while unique in used:
        unique, n = f"{tool_id}_{n}", n + 1
    used.add(unique)
    return unique


def message_tool_id(backend_id: object, used: set[str], problems: list[str]) -> str:
    """A tool_use id for one call of a message: the backend's (sanitized) or a new one, unique within the
    conversation (`used`: the ids of the request's history and those given out in this message), with a reused
    backend id reported. The one rule for streamed and non-streamed answers.

    Unique across turns too: some servers number their calls per answer (`call_0` on every turn, Kimi's
    `functions.Bash:0`), and Claude Code, finding a second tool_use with an id it already has, rewrites the later
    call as "[Tool use interrupted]" and its result as "(no content)" in the next request."""
    base = sanitize_tool_id(backend_id) if isinstance(backend_id, str) and backend_id else new_tool_id()
    tool_id = unique_tool_id(base, used)
    if tool_id != base:
        problems.append(f"backend reused tool-call id {base!r} of this conversation; sent as {tool_id!r}")
    return tool_id


def strip_schema(schema: object) -> object:
    """A copy of a JSON Schema without the keys backends choke on (property names are left alone)."""
    if isinstance(schema, list):
        return [strip_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        if key in DROPPED_SCHEMA_KEYS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strip_schema(sub) for name, sub in value.items()}
        else:
            out[key] = strip_schema(value)
    return out


@dataclass
class TranslatedTools:
    functions: list[dict] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # OpenAI name -> Anthropic name
    tool_schemas: dict[str, dict] = field(default_factory=dict)  # Anthropic name -> input_schema
    prompt_tokens: int = 0  # estimate_tool_tokens(functions), computed once per memoised translation
    # orjson.dumps(functions), likewise: spliced into each request as it is
    functions_json: bytes | None = None


_Memoised = tuple[TranslatedTools, tuple[str, ...]]
_MEMO_SIZE = 32
_MEMO_BYTES = 8 << 20  # of tool-list JSON (Claude Code's is ~30 KB)
_memo: TextMemo[_Memoised] = TextMemo(_MEMO_SIZE, _MEMO_BYTES)  # by exact JSON
_by_identity = IdentityMemo(_MEMO_SIZE, _MEMO_BYTES)  # the lists proxy.bodyparse shares, by identity


def translate_tools(tools: list[dict], dropped: list[str]) -> TranslatedTools:
    """Anthropic tools -> OpenAI functions. Server/versioned tools without an input_schema are dropped.

    Memoised: Claude Code sends the same dozen schemas on every turn, and translating them is a tenth of the
    proxy's CPU per request. The list `proxy.bodyparse` shares between requests is recognised by identity (the
    memo keeps it alive, so its id cannot be reused); any other list by its exact JSON. Callers get fresh
    containers; the function dicts inside are shared and must be treated as read-only (they are only
    serialised)."""
    shared = is_shared(tools)
    hit = _by_identity.get((id(tools),)) if shared else None
    if hit is None:
        hit = _translate_by_json(tools)
        if shared:
            _by_identity.put((id(tools),), tools, hit, len(hit[0].functions_json or b""))
    translated, notes = hit
    dropped.extend(notes)
    return TranslatedTools(
        list(translated.functions),
        dict(translated.tool_names),
        dict(translated.tool_schemas),
        translated.prompt_tokens,
        translated.functions_json,
    )


def _translate_by_json(tools: list[dict]) -> _Memoised:
    try:
        key = orjson.dumps(tools)
    except (TypeError, orjson.JSONEncodeError):
        return _translate_fresh(tools)
    return _memo.get_or_make(key, _translate_fresh, tools)


def _translate_fresh(tools: list[dict]) -> _Memoised:
    notes: list[str] = []
    translated = _translate_tools(tools, notes)
    translated.prompt_tokens = estimate_tool_tokens(translated.functions)
    with contextlib.suppress(TypeError, orjson.JSONEncodeError):  # then the handler serialises them itself
        translated.functions_json = orjson.dumps(translated.functions)
    return translated, tuple(notes)


def _translate_tools(tools: list[dict], dropped: list[str]) -> TranslatedTools:
    out = TranslatedTools()
    for tool in tools:
        name = tool["name"]
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            dropped.append(f"tool:{tool.get('type') or name}")
            continue
        for key in CONSUMED_TOOL_KEYS:
            if key in tool:
                dropped.append(key)
        parameters = strip_schema(schema)
        if "$schema" in schema:
            dropped.append("$schema")
        if not isinstance(parameters, dict) or "type" not in parameters:
            parameters = {"type": "object", **(parameters if isinstance(parameters, dict) else {})}
        function: dict = {"name": openai_tool_name(name), "parameters": parameters}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.functions.append({"type": "function", "function": function})
        out.tool_names[function["name"]] = name
        out.tool_schemas[name] = schema
    return out


SERVER_RUN_TOOLS = ("web_search", "web_fetch", "code_execution")  # tool types Anthropic's servers run


def server_run_tools(tools: list[dict]) -> list[str]:
    """The tools in `tools` that Anthropic's servers run (web search, web fetch, code execution): no local
    model can run them, and the proxy drops them."""
    return [
        str(tool.get("name") or tool.get("type"))
        for tool in tools
        if not isinstance(tool.get("input_schema"), dict)
        and isinstance(tool.get("type"), str)
        and tool["type"].startswith(SERVER_RUN_TOOLS)
    ]


def only_server_run_tools_error(tools: list[dict]) -> AnthropicError | None:
    """The error for a request whose only tools are server-run ones (Claude Code's WebSearch sends its own
    request offering just `web_search`): answered without them, a local model would make up search results
    that Claude Code hands to the main model as real ones. A 400 makes WebSearch fail visibly instead."""
    server = server_run_tools(tools)
    if not server or len(server) < len(tools):
        return None
    return AnthropicError.invalid_request(
        f"{', '.join(sorted(set(server)))}: tools that Anthropic's servers run are not available through "
        "ccbench with a local model, and this request offers no other tool"
    )


def required_properties(schema: object) -> list[str]:
    if not isinstance(schema, dict):
        return []
    required = schema.get("required")
    return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []


def compact_json(value: object) -> str:
    """Deterministic compact JSON (same input, same bytes) for arguments sent to the backend: orjson's, or the
    standard library's for what orjson refuses (integers beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # and lone surrogates, which dump_json_text keeps as escapes
        return dump_json_text(value)


@dataclass
class ParsedArguments:
    """The outcome of reading a backend's tool-call arguments: `input` is None when unusable."""

    input: dict | None
    problem: str | None = None


def parse_tool_arguments(raw: object, name: str, schema: dict | None) -> ParsedArguments:
    """Backend `arguments` -> a tool input object, repairing broken JSON only when that is safe.

    Safe means: json_repair yields an object that still has every property the tool's schema requires.
    Anything else is unusable, and the caller reports it instead of passing on a guessed input.
    """
    if isinstance(raw, dict):
        return ParsedArguments(raw)
    text = raw if isinstance(raw, str) else ""
    if not text.strip():
        missing = required_properties(schema)
        problem = f"tool {name}: empty arguments but the schema requires {missing}" if missing else None
        return ParsedArguments({}, problem)
    try:
        value = loads_exact(text)  # exact: these values go to Claude Code as they are parsed here
        double_encoded = isinstance(value, str)  # ("{\"a\":1}"): a known server quirk
        if isinstance(value, str):
            value = loads_exact(value)
        if isinstance(value, dict):
            if json_depth(value) > MAX_DEPTH:
                return ParsedArguments(None, f"tool {name}: arguments nest deeper than {MAX_DEPTH} levels")
            problem = f"tool {name}: arguments were double-encoded JSON" if double_encoded else None
            return ParsedArguments(value, problem)
    except ValueError:
        pass
    try:
        repaired = json_repair.loads(text)
    except RecursionError:  # json_repair parses recursively: nesting this deep is not worth repairing
        repaired = None
    missing = [
        key for key in required_properties(schema) if not (isinstance(repaired, dict) and key in repaired)
    ]
    if isinstance(repaired, dict) and repaired and not missing and json_depth(repaired) <= MAX_DEPTH:
        return ParsedArguments(repaired, f"tool {name}: repaired invalid JSON arguments")
    return ParsedArguments(
        None, f"tool {name}: arguments are not valid JSON and could not be repaired safely"
    )


def unusable_call_text(name: str, raw: object) -> str:
    """The text block that replaces a tool call whose arguments could not be used."""
    snippet = raw if isinstance(raw, str) else repr(raw)
    if len(snippet) > 300:
        snippet = snippet[:300] + "…"
    return f"[ccbench: the model called tool {name!r} with invalid JSON arguments, so the call was dropped: {snippet}]"
