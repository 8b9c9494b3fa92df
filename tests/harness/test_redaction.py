"""Redaction (secrets never reach a cassette) and normalisation (stable, still-valid JSON, ids still paired)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cassette import load_cassette
from harness.recorder import RawExchange, build_interaction
from harness.redact import REDACTED, Normalizer, redact_headers, redact_text
from tests.harness.test_recorder import TIMEOUT, recording

ANTHROPIC_KEY = "sk-ant-api03-" + "Abc123_-" * 11 + "XyZ"
OPENAI_KEY = "sk-" + "a1B2c3D4e5" * 4
BEARER = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.ZmFrZXNpZw"
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"
GITHUB_TOKEN = "ghp_" + "x1Y2z3" * 6


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"key={ANTHROPIC_KEY} tail", ANTHROPIC_KEY),
        ("ANTHROPIC_API_KEY=sk-ant-local-fake", "sk-ant-local-fake"),
        (f'{{"k": "{OPENAI_KEY}"}}', OPENAI_KEY),
        (f"Authorization: Bearer {BEARER}", BEARER),
        (f"aws_access_key_id = {AWS_KEY}", AWS_KEY),
        (f"token {GITHUB_TOKEN}", GITHUB_TOKEN),
        ('{"api_key": "hunter2-secret"}', "hunter2-secret"),
        ('config: api-key = "abc.def.ghi"', "abc.def.ghi"),
        # a file containing api_key="..." read by a tool: the quotes arrive escaped inside a JSON string
        (json.dumps({"content": 'API_KEY="zz-top-secret-1"'}), "zz-top-secret-1"),
    ],
)
def test_redact_text_masks_key_shapes(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "skip the sk- prefix; a Bearer of news; ghp_short; the api key is documented"
    assert redact_text(text) == text


def test_redact_headers() -> None:
    headers = {
        "x-api-key": ANTHROPIC_KEY,
        "authorization": f"Bearer {BEARER}",
        "cookie": "session=1",
        "anthropic-admin-key": "admin",
        "x-custom": f"value {ANTHROPIC_KEY}",
        "user-agent": "claude-cli/2.1.328",
    }
    redacted = redact_headers(headers)
    assert {
        k: redacted[k] for k in ("x-api-key", "authorization", "cookie", "anthropic-admin-key")
    } == dict.fromkeys(("x-api-key", "authorization", "cookie", "anthropic-admin-key"), REDACTED)
    assert redacted["x-custom"] == f"value {REDACTED}"
    assert redacted["user-agent"] == "claude-cli/2.1.328"


async def test_recorded_cassette_holds_no_secret(tmp_path: Path) -> None:
    """Keys in headers, request body and (echoed) response body: none of them reaches the file."""
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": f"my key is {ANTHROPIC_KEY}, send Bearer {BEARER}"}],
    }
    headers = {"x-api-key": ANTHROPIC_KEY, "authorization": f"Bearer {BEARER}", "cookie": "s=1"}
    async with (
        recording(tmp_path) as (url, _),
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.post(url + f"/echo?key={ANTHROPIC_KEY}", json=body, headers=headers) as response,
    ):
        echoed = await response.json()
    assert ANTHROPIC_KEY in echoed["body"]  # the upstream really got (and echoed) the secrets
    raw = (tmp_path / "session.yaml").read_bytes()
    for secret in (ANTHROPIC_KEY, BEARER, "sk-ant-api03"):
        assert secret.encode() not in raw
    assert raw.count(REDACTED.encode()) >= 6
    (interaction,) = load_cassette(tmp_path / "session.yaml").interactions
    assert interaction.request_headers["x-api-key"] == REDACTED
    assert interaction.request_headers["authorization"] == REDACTED
    assert json.loads(interaction.response_body)["headers"]  # still valid JSON after masking


def _exchange(request: dict, response: dict, headers: dict[str, str] | None = None) -> RawExchange:
    return RawExchange(
        method="POST",
        uri="http://127.0.0.1:40123/v1/messages?beta=true",
        request_headers={"host": "127.0.0.1:40123", **(headers or {})},
        request_body=json.dumps(request).encode(),
        status=200,
        reason="OK",
        response_headers={"content-type": "application/json", "request-id": "req_011CabcdefABCDEF12345678"},
        response_body=json.dumps(response).encode(),
    )


def test_normalisation_keeps_tool_pairing_and_json_valid() -> None:
    workspace, session = "/tmp/ccbench-ws-abc123", "da3985a4-0169-45a8-a4d7-1e178b4d636c"
    normalizer = Normalizer(paths={workspace: "/workspace/project", "127.0.0.1:40123": "127.0.0.1:8083"})
    user_id = json.dumps({"device_id": "c39c346a5dc7be95c9f3b0e22426033f", "session_id": session})
    system = f"x-anthropic-billing-header: cc_version=2.1.328.188; cch=4f2a9; Today's date is 2026-11-25. cwd {workspace}"
    first_request = {
        "system": system,
        "metadata": {"user_id": user_id},
        "messages": [{"role": "user", "content": "hi"}],
    }
    tool_ids = ["toolu_01A09q90qw90lq917835lq9", "toolu_01Bxyzxyzxyzxyzxyzxyzxy"]
    response = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "content": [{"type": "tool_use", "id": tid, "name": "Read", "input": {"file_path": f"{workspace}/a.py"}}
                    for tid in tool_ids],
    }  # fmt: skip
    second_request = {
        **first_request,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": response["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tid, "content": f"{workspace}/a.py."}
                    for tid in reversed(tool_ids)
                ],
            },  # fmt: skip
        ],
    }
    session_header = {"x-claude-code-session-id": session}
    one = build_interaction(_exchange(first_request, response, session_header), 0, normalizer)
    two = build_interaction(
        _exchange(second_request, {"id": "msg_01YYYYYYYYYYYYYYYYYYYYYY"}, session_header), 1, normalizer
    )

    recorded = json.loads(one.response_body)
    new_ids = [b["id"] for b in recorded["content"]]
    assert new_ids == ["toolu_ccbench_0001", "toolu_ccbench_0002"]
    messages = two.request_body["messages"]
    assert [b["id"] for b in messages[1]["content"]] == new_ids
    assert [b["tool_use_id"] for b in messages[2]["content"]] == list(reversed(new_ids))
    assert messages[2]["content"][0]["content"] == "/workspace/project/a.py."
    assert recorded["id"] == "msg_ccbench_0001" and json.loads(two.response_body)["id"] == "msg_ccbench_0002"
    metadata = json.loads(one.request_body["metadata"]["user_id"])
    assert metadata == {"device_id": "0" * 32, "session_id": "00000000-0000-4000-8000-000000000001"}
    assert one.request_headers["x-claude-code-session-id"] == metadata["session_id"] == one.meta["session_id"]
    assert "cch=00000" in one.request_body["system"] and "date is 2026-01-01" in one.request_body["system"]
    assert workspace not in one.request_text and one.request_body["system"].endswith("cwd /workspace/project")
    assert one.uri == "http://127.0.0.1:8083/v1/messages?beta=true"
    assert one.response_headers["request-id"] == "req_ccbench_0001"


def test_normalisation_is_idempotent_and_learns_agent_ids() -> None:
    normalizer = Normalizer(paths={"/tmp/ws": "/workspace/project"})
    headers = normalizer.normalize_headers(
        {"x-claude-code-agent-id": "ad03e10d3ab22330d", "date": "Wed, 25 Nov"}
    )
    assert headers == {"x-claude-code-agent-id": "a0000000000000001"}
    text = "agent ad03e10d3ab22330d in /tmp/ws/x and -tmp-ws dir; tool-results/bu60uddjo.txt; OS Version: Linux 6.1-x"
    once = normalizer.normalize_text(text)
    assert once == (
        "agent a0000000000000001 in /workspace/project/x and -workspace-project dir; "
        "tool-results/output0001.txt; OS Version: Linux x"
    )
    assert normalizer.normalize_text(once) == once
    assert normalizer.normalize_text("/tmp/wsextra /tmp/ws.bak") == "/tmp/wsextra /tmp/ws.bak"  # other paths


ids = st.from_regex(r"toolu_01[A-Za-z0-9]{22}|msg_01[A-Za-z0-9]{22}|req_[A-Za-z0-9]{24}", fullmatch=True)
secrets = st.sampled_from(
    [ANTHROPIC_KEY, f"Bearer {BEARER}", AWS_KEY, GITHUB_TOKEN, 'api_key="abc"', OPENAI_KEY]
)
values = st.one_of(st.text(max_size=20), ids, secrets, st.builds(lambda a, b: f"{a} {b}", ids, secrets))
documents = st.recursive(
    st.one_of(values, st.integers(), st.none()),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(document=documents)
def test_redaction_and_normalisation_keep_any_json_valid(document: object) -> None:
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        cleaned = Normalizer(paths={"/tmp/ws": "/workspace/project"}).normalize_text(redact_text(text))
        json.loads(cleaned)  # raises if a substitution broke the JSON
        assert ANTHROPIC_KEY not in cleaned and BEARER not in cleaned
