"""vcrpy-format cassettes: load, save and read recorded Claude Code sessions.

A cassette is a plain vcrpy YAML file (`FilesystemPersister.load_cassette` reads it) with two extra `ccbench`
blocks vcrpy ignores: one at the top (Claude Code version, upstream, description) and one per interaction
(request class, session id, per-event timing). Responses keep the raw SSE text byte-for-byte, because vcrpy
itself flattens streams and the replay needs the events and their timing.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from proxy.sse import SSEDecoder

FORMAT = 1
VCR_VERSION = 1

try:  # libyaml is much faster on 50 KB request bodies; the pure-Python classes behave the same
    from yaml import CSafeDumper as _BaseDumper
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class CassetteError(Exception):
    """A cassette that cannot be read or an SSE body that cannot be accumulated; the message says why."""


class _Dumper(_BaseDumper):
    """Multi-line strings (SSE bodies) as literal blocks so cassettes stay readable and diff well."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML text the way every cassette is written (unicode kept, no line folding, key order kept)."""
    text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000_000_000)
    # libyaml closes a document holding a keep-chomped (`|+`) block with "..."; fragments are concatenated
    # into one document, and each ends with a plain mapping, so the marker is dropped.
    return text.removesuffix("...\n")


@dataclass
class Interaction:
    """One request/response exchange. Header names are lower-case; values are single strings."""

    seq: int
    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: dict | None
    status: int
    response_headers: dict[str, str]
    response_body: str
    meta: dict = field(default_factory=dict)
    request_text: str | None = None  # the exact request body text; saved instead of request_body when set
    status_message: str = ""

    @property
    def path(self) -> str:
        """The request path without the query, e.g. "/v1/messages"."""
        return urlsplit(self.uri).path or "/"

    @property
    def is_stream(self) -> bool:
        content_type = self.response_headers.get("content-type", "")
        if content_type:
            return content_type.startswith("text/event-stream")
        return bool(self.request_body and self.request_body.get("stream"))

    def response_message(self) -> dict:
        """The Anthropic Message the response carried, from SSE or JSON; a CassetteError names the interaction."""
        where = f"interaction {self.seq}"
        if self.is_stream:
            try:
                return parse_sse_message(self.response_body)
            except CassetteError as exc:
                raise CassetteError(f"{where}: {exc}") from exc
        try:
            message = json.loads(self.response_body)
        except json.JSONDecodeError as exc:
            raise CassetteError(f"{where}: response body is not JSON: {exc}") from exc
        if not isinstance(message, dict):
            raise CassetteError(f"{where}: response body is not a JSON object (got {type(message).__name__})")
        return message


@dataclass
class Cassette:
    path: Path
    meta: dict
    interactions: list[Interaction]


def request_class(path: str, headers: dict[str, str], body: dict | None) -> str:
    """main / subagent / auxiliary / count_tokens / other; the Claude Code header wins when present.

    Claude Code 2.1.328 marks subagent requests with `x-claude-code-agent-id` and `cc_is_subagent=true` in
    the billing header; side requests (titles, topic, quota probes) carry no tools.
    """
    declared = headers.get("x-claude-code-request-class", "").strip().lower()
    if declared:
        return declared
    if path.endswith("/count_tokens"):
        return "count_tokens"
    if not path.endswith("/v1/messages"):
        return "other"
    body = body or {}
    system = body.get("system")
    system_text = system if isinstance(system, str) else json.dumps(system or "")
    if headers.get("x-claude-code-agent-id") or "cc_is_subagent=true" in system_text:
        return "subagent"
    return "main" if body.get("tools") else "auxiliary"


def _headers_to_vcr(headers: dict[str, str]) -> dict[str, list[str]]:
    return {name: [value] for name, value in headers.items()}


def _headers_from_vcr(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CassetteError(f"{where}: headers must be a mapping, got {type(raw).__name__}")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        out[str(name).lower()] = str(value)
    return out


def request_text_of(interaction: Interaction) -> str | None:
    """The body text to store: the recorded text when it still matches request_body, else fresh JSON."""
    if interaction.request_text is not None:
        if interaction.request_body is None:
            return interaction.request_text
        try:
            if json.loads(interaction.request_text) == interaction.request_body:
                return interaction.request_text
        except json.JSONDecodeError:
            pass
    if interaction.request_body is None:
        return None
    return json.dumps(interaction.request_body, ensure_ascii=False)


def interaction_to_vcr(interaction: Interaction) -> dict:
    """The vcrpy dict for one interaction (plus its `ccbench` block)."""
    return {
        "request": {
            "body": request_text_of(interaction),
            "headers": _headers_to_vcr(interaction.request_headers),
            "method": interaction.method,
            "uri": interaction.uri,
        },
        "response": {
            "body": {"string": interaction.response_body},
            "headers": _headers_to_vcr(interaction.response_headers),
            "status": {"code": interaction.status, "message": interaction.status_message},
        },
        "ccbench": {"seq": interaction.seq, **{k: v for k, v in interaction.meta.items() if k != "seq"}},
    }


def header_yaml(meta: dict) -> str:
    """The YAML text before the interactions list."""
    return dump_yaml({"version": VCR_VERSION, "ccbench": {"format": FORMAT, **meta}})


def interaction_yaml(interaction: Interaction) -> str:
    """One `- request: ...` list item, ready to append under `interactions:`."""
    return dump_yaml([interaction_to_vcr(interaction)])


def assemble_yaml(meta: dict, interaction_fragments: list[str]) -> str:
    """A whole cassette from its header and already-dumped interactions (the recorder caches fragments)."""
    if not interaction_fragments:
        return header_yaml(meta) + "interactions: []\n"
    return header_yaml(meta) + "interactions:\n" + "".join(interaction_fragments)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def check_writable(path: Path) -> None:
    """Raise the OSError that writing `path` would raise (it is a folder, or no file can be made where it goes),
    without writing it: commands check their outputs before a long run or session, not after. Missing folders
    are fine, as `write_atomic` makes them; a temporary file is made and dropped in the nearest one that exists."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    with tempfile.TemporaryFile(dir=folder):
        pass


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same directory, fsync, then os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; cassettes are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_cassette(cassette: Cassette, path: Path | str | None = None) -> None:
    """Write the whole cassette atomically (to `path`, default `cassette.path`)."""
    target = Path(path) if path is not None else cassette.path
    meta = {k: v for k, v in cassette.meta.items() if k != "format"}
    write_atomic(target, assemble_yaml(meta, [interaction_yaml(i) for i in cassette.interactions]))


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CassetteError(f"{where}: missing '{key}'")
    return mapping[key]


def _interaction_from_vcr(raw: Any, index: int, source: Path) -> Interaction:
    where = f"{source}: interactions[{index}]"
    request = _require(raw, "request", where)
    response = _require(raw, "response", where)
    meta = raw.get("ccbench") or {}
    if not isinstance(meta, dict):
        raise CassetteError(f"{where}.ccbench: must be a mapping")
    request_text = request.get("body") if isinstance(request, dict) else None
    if isinstance(request_text, bytes):
        request_text = request_text.decode("utf-8", "replace")
    request_body = None
    if isinstance(request_text, str) and request_text.strip():
        try:
            parsed = json.loads(request_text)
        except json.JSONDecodeError:
            parsed = None
        request_body = parsed if isinstance(parsed, dict) else None
    status = _require(response, "status", f"{where}.response")
    code = _require(status, "code", f"{where}.response.status")
    if not isinstance(code, int):
        raise CassetteError(f"{where}.response.status.code: must be an integer, got {code!r}")
    body = _require(response, "body", f"{where}.response")
    body_text = body.get("string") if isinstance(body, dict) else body
    if isinstance(body_text, bytes):
        body_text = body_text.decode("utf-8", "replace")
    return Interaction(
        seq=int(meta.get("seq", index)),
        method=str(_require(request, "method", f"{where}.request")),
        uri=str(_require(request, "uri", f"{where}.request")),
        request_headers=_headers_from_vcr(request.get("headers"), f"{where}.request"),
        request_body=request_body,
        status=code,
        response_headers=_headers_from_vcr(response.get("headers"), f"{where}.response"),
        response_body=body_text or "",
        meta=meta,
        request_text=request_text if isinstance(request_text, str) else None,
        status_message=str(status.get("message") or ""),
    )


def load_cassette(path: Path | str) -> Cassette:
    """Read a cassette; every problem becomes a CassetteError naming the file and the place."""
    source = Path(path)
    if not source.is_file():
        raise CassetteError(f"cassette not found: {source}")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"cannot read cassette {source}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_BaseLoader)
    except yaml.YAMLError as exc:
        raise CassetteError(f"cassette {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "interactions" not in data:
        raise CassetteError(f"cassette {source} is not a vcrpy cassette (no 'interactions' list)")
    raw_interactions = data["interactions"]
    if not isinstance(raw_interactions, list):
        raise CassetteError(f"cassette {source}: 'interactions' must be a list")
    meta = data.get("ccbench") or {}
    if not isinstance(meta, dict):
        raise CassetteError(f"cassette {source}: 'ccbench' must be a mapping")
    interactions = [_interaction_from_vcr(raw, i, source) for i, raw in enumerate(raw_interactions)]
    return Cassette(path=source, meta=meta, interactions=interactions)


def _apply_delta(block: dict, delta: dict, partial_json: dict[int, str], index: int) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        partial_json[index] = partial_json.get(index, "") + delta.get("partial_json", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = block.get("signature", "") + delta.get("signature", "")
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta.get("citation"))
    else:
        raise CassetteError(f"unknown delta type {kind!r}")


def parse_sse_message(sse_text: str) -> dict:
    """Accumulate an Anthropic SSE body into the final Message dict (as the SDK's get_final_message does)."""
    decoder = SSEDecoder()
    events = decoder.feed(sse_text.encode("utf-8")) + decoder.flush()
    message: dict | None = None
    partial_json: dict[int, str] = {}
    for event in events:
        try:
            data = json.loads(event.data)
        except json.JSONDecodeError as exc:
            raise CassetteError(f"SSE event {event.event!r} has invalid JSON data: {exc}") from exc
        kind = data.get("type")
        if kind == "error":
            error = data.get("error") or {}
            raise CassetteError(
                f"stream ended with an error event: {error.get('type')}: {error.get('message')}"
            )
        if kind == "message_start":
            message = dict(data["message"])
            message["content"] = list(message.get("content") or [])
            continue
        if kind in ("ping", "message_stop"):
            continue
        if message is None:
            raise CassetteError(f"SSE event {kind!r} before message_start")
        if kind == "content_block_start":
            block = dict(data["content_block"])
            if block.get("type") in ("tool_use", "server_tool_use"):
                partial_json[data["index"]] = ""
            message["content"].append(block)
        elif kind == "content_block_delta":
            index = data["index"]
            _apply_delta(message["content"][index], data["delta"], partial_json, index)
        elif kind == "content_block_stop":
            index = data["index"]
            if index in partial_json:
                text = partial_json.pop(index)
                try:
                    message["content"][index]["input"] = json.loads(text) if text else {}
                except json.JSONDecodeError as exc:
                    raise CassetteError(f"tool_use block {index}: input JSON is invalid: {exc}") from exc
        elif kind == "message_delta":
            message.update({k: v for k, v in (data.get("delta") or {}).items()})
            usage = data.get("usage")
            if usage:
                message["usage"] = {**(message.get("usage") or {}), **usage}
    if message is None:
        raise CassetteError("SSE body has no message_start event")
    return message
