"""The config loader: defaults < YAML file < CCBENCH_* environment < command-line overrides; bad values fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import Config, ConfigError, RouteRule, load_config

YAML = """
upstream: http://10.0.0.5:8000/v1/
port: 9000
read_timeout: 120
models:
  default: qwen3-coder
  haiku: qwen3-small
  opus: qwen3-big
  rules:
    - {match: "claude-sonnet-*", model: qwen3-mid}
    - {match: "my-exact-name", model: exact-model}
forward_headers: [X-Ccbench-Turn, X-Trace]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(YAML)
    return path


def test_defaults_without_file_env_or_flags() -> None:
    cfg = load_config(environ={})
    assert cfg == Config()


def test_file_values_are_loaded_and_upstream_loses_its_trailing_slash(config_file: Path) -> None:
    cfg = load_config(config_file, environ={})
    assert cfg.upstream == "http://10.0.0.5:8000/v1"
    assert (cfg.port, cfg.read_timeout, cfg.model) == (9000, 120.0, "qwen3-coder")
    assert cfg.tiers == {"haiku": "qwen3-small", "opus": "qwen3-big"}
    assert cfg.rules == [RouteRule("claude-sonnet-*", "qwen3-mid"), RouteRule("my-exact-name", "exact-model")]
    assert cfg.forward_headers == ["x-ccbench-turn", "x-trace"]


def test_environment_beats_file_and_flags_beat_environment(config_file: Path) -> None:
    env = {"CCBENCH_PORT": "9100", "CCBENCH_MODEL": "env-model", "CCBENCH_HAIKU_MODEL": "env-haiku"}
    cfg = load_config(config_file, environ=env)
    assert (cfg.port, cfg.model, cfg.tiers["haiku"]) == (9100, "env-model", "env-haiku")
    cfg = load_config(
        config_file, overrides={"port": 9200, "haiku": "flag-haiku", "model": None}, environ=env
    )
    assert (cfg.port, cfg.model, cfg.tiers["haiku"]) == (9200, "env-model", "flag-haiku")


def test_small_model_sets_the_haiku_tier() -> None:
    assert load_config(overrides={"small_model": "tiny"}, environ={}).tiers == {"haiku": "tiny"}
    assert load_config(environ={"CCBENCH_SMALL_MODEL": "tiny"}).tiers == {"haiku": "tiny"}


def test_environment_booleans_and_numbers_are_coerced() -> None:
    cfg = load_config(environ={"CCBENCH_PROBE_BACKEND": "no", "CCBENCH_CONTEXT_LENGTH": "8192"})
    assert cfg.probe_backend is False
    assert cfg.context_length == 8192


def test_routing_order_rules_then_tiers_then_default_then_fallback(config_file: Path) -> None:
    cfg = load_config(config_file, environ={})
    assert cfg.resolve_model("claude-sonnet-4-5") == "qwen3-mid"  # glob rule
    assert cfg.resolve_model("CLAUDE-SONNET-4-5") == "qwen3-mid"  # case-insensitive
    assert cfg.resolve_model("claude-haiku-4-5-20251001") == "qwen3-small"  # tier in the name
    assert cfg.resolve_model("claude-opus-5-5") == "qwen3-big"
    assert cfg.resolve_model("gpt-something") == "qwen3-coder"  # default
    bare = Config()
    assert bare.resolve_model("claude-opus-5-5", fallback="backend-first") == "backend-first"
    assert bare.resolve_model("claude-opus-5-5") == "claude-opus-5-5"


def test_aliases_cover_tiers_and_exact_rules_but_not_globs(config_file: Path) -> None:
    aliases = load_config(config_file, environ={}).aliases()
    assert aliases == {
        "claude-haiku-local": "qwen3-small",
        "claude-opus-local": "qwen3-big",
        "my-exact-name": "exact-model",
    }


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"upstream_format": "grpc"}, "upstream_format"),
        ({"upstream": "ftp://x"}, "http(s) URL"),
        ({"thinking": "loud"}, "thinking must be one of"),
        ({"max_concurrency": 0}, "max_concurrency must be positive"),
        ({"port": 70000}, "port must be between 0 and 65535"),
        ({"port": "eighty"}, "port must be a number"),
        ({"no_such_setting": 1}, "unknown setting 'no_such_setting'"),
    ],
)
def test_bad_values_raise_config_error(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides, environ={})
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("upstream: [unclosed", "not valid YAML"),
        ("- a list\n- not a mapping\n", "must hold a mapping"),
        ("models: [1, 2]\n", "'models' must be a mapping"),
        ("models:\n  rules:\n    - {match: x}\n", "each rule needs 'match' and 'model'"),
        ("models:\n  gpt: x\n", "unknown models key 'gpt'"),
        ("tiers:\n  mini: x\n", "unknown models key 'mini'"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert fragment in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", environ={})
