"""Redaction (always on) and normalisation (optional) of recorded exchanges.

Redaction keeps secrets out of cassettes: credential headers are replaced by a marker and key-shaped strings
are masked wherever they appear (bodies, URLs, other headers). Normalisation replaces volatile values
(session ids, tool_use ids, temp paths, nonces, dates) by stable placeholders so a re-recorded session
gives the same cassette. Both work on raw text with substitutions that never introduce a quote or a
backslash, so JSON stays valid and its formatting stays exactly what Claude Code sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

REDACTED = "<redacted>"

SECRET_HEADERS = frozenset(
    {"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie", "anthropic-admin-key"}
)

_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"sk-ant-[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\g<1>" + REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    # api_key = "value" / "api-key": "value", also inside a JSON string (quotes escaped as \")
    (
        re.compile(r"""(api[_-]?key(?:\\?["'])?\s*[:=]\s*(?:\\?["']))([^"'\\\s]+)""", re.IGNORECASE),
        r"\g<1>" + REDACTED,
    ),
]


def redact_text(text: str) -> str:
    """Mask every key-shaped string in `text`."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Credential headers -> marker; every other value still goes through the body patterns."""
    return {
        name: REDACTED if name.lower() in SECRET_HEADERS else redact_text(value)
        for name, value in headers.items()
    }


WORKSPACE_ALIAS = "/workspace/project"
HOME_ALIAS = "/home/user"
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_TOOL_ID = re.compile(r"\b(?:srv)?toolu_[A-Za-z0-9]{10,}")
_MESSAGE_ID = re.compile(r"\bmsg_[A-Za-z0-9]{16,}")
_REQUEST_ID = re.compile(r"\breq_[A-Za-z0-9]{16,}")
_CCH = re.compile(r"\bcch=[0-9a-fA-F]+")
_DEVICE_ID = re.compile(r"""(device_id\\?"\s*:\s*\\?")([0-9a-fA-F]{16,})""")
_DATE = re.compile(r"((?:[Tt]oday's date is|[Cc]urrent date(?: is)?:?|date is)\s+)\d{4}-\d{2}-\d{2}")
_TOOL_RESULT_FILE = re.compile(
    r"(tool-results/)(?!output\d{4}\.)([A-Za-z0-9]{6,})(?=\.txt)"
)  # persisted large outputs
_OS_VERSION = re.compile(r"(OS Version: [A-Za-z]+) [^\s\\\"]+")
PLACEHOLDER_DATE = "2026-01-01"
VOLATILE_HEADERS = frozenset({"date", "server"})
UUID_PLACEHOLDER_PREFIX = "00000000-0000-4000-8000-"


def _mangled(path: str) -> str:
    """How Claude Code turns a project path into a directory name under ~/.claude/projects."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


@dataclass
class Normalizer:
    """Stable placeholders for volatile values; one instance per recording so mappings are consistent."""

    # absolute path (or host:port) -> alias, e.g. the temp workspace -> /workspace/project
    paths: dict[str, str] = field(default_factory=dict)
    _maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def _stable(self, kind: str, value: str, make: Callable[[int], str]) -> str:
        table = self._maps.setdefault(kind, {})
        if value not in table:
            table[value] = make(len(table) + 1)
        return table[value]

    def known(self, kind: str) -> dict[str, str]:
        """The mapping built so far for one kind ("uuid", "tool", "message", "request", "agent")."""
        return dict(self._maps.get(kind, {}))

    def learn_agent_id(self, agent_id: str) -> str:
        """Subagent ids (the x-claude-code-agent-id header) have no recognisable shape: learn them from headers."""
        return self._stable("agent", agent_id, lambda n: f"a{n:016d}")

    def _path_patterns(self) -> list[tuple[re.Pattern[str], str]]:
        pairs: list[tuple[str, str]] = []
        for path, alias in self.paths.items():
            path = path.rstrip("/")
            if path:
                pairs += [(path, alias), (_mangled(path), _mangled(alias))]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)  # longer (nested) paths first
        # a path ends where no name character follows (a dot ends it unless a name continues after it)
        return [(re.compile(re.escape(p) + r"(?![A-Za-z0-9_-]|\.[A-Za-z0-9_])"), a) for p, a in pairs]

    def _uuid_placeholder(self, match: re.Match[str]) -> str:
        value = match.group(0).lower()
        if value.startswith(UUID_PLACEHOLDER_PREFIX):  # already normalised: keep (idempotent)
            return value
        return self._stable("uuid", value, lambda n: f"{UUID_PLACEHOLDER_PREFIX}{n:012d}")

    def normalize_text(self, text: str) -> str:
        """Apply every normalisation to one text (body, header value or URL)."""
        for pattern, alias in self._path_patterns():
            text = pattern.sub(alias, text)
        for agent_id, alias in self._maps.get("agent", {}).items():
            text = text.replace(agent_id, alias)
        text = _UUID.sub(self._uuid_placeholder, text)
        text = _TOOL_ID.sub(
            lambda m: self._stable("tool", m.group(0), lambda n: f"toolu_ccbench_{n:04d}"), text
        )
        text = _MESSAGE_ID.sub(
            lambda m: self._stable("message", m.group(0), lambda n: f"msg_ccbench_{n:04d}"), text
        )
        text = _REQUEST_ID.sub(
            lambda m: self._stable("request", m.group(0), lambda n: f"req_ccbench_{n:04d}"), text
        )
        text = _TOOL_RESULT_FILE.sub(
            lambda m: m.group(1) + self._stable("result_file", m.group(2), lambda n: f"output{n:04d}"), text
        )
        text = _CCH.sub("cch=00000", text)
        text = _DEVICE_ID.sub(lambda m: m.group(1) + "0" * len(m.group(2)), text)
        text = _DATE.sub(lambda m: m.group(1) + PLACEHOLDER_DATE, text)
        return _OS_VERSION.sub(r"\g<1> x", text)

    def normalize_headers(self, headers: dict[str, str]) -> dict[str, str]:
        agent_id = headers.get("x-claude-code-agent-id")
        if agent_id:
            self.learn_agent_id(agent_id)
        return {
            name: self.normalize_text(value)
            for name, value in headers.items()
            if name not in VOLATILE_HEADERS
        }
