"""The config loader: defaults < YAML file < CCBENCH_* environment < command-line overrides; bad values fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import Config, ConfigError, RouteRule, load_config
from proxy.routing import Route

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


def test_the_small_model_variable_beats_the_file_as_every_variable_does(config_file: Path) -> None:
    """Operator audit: the file's `models.haiku` won over CCBENCH_SMALL_MODEL (defaults < file < env < flags)."""
    assert load_config(config_file, environ={}).tiers["haiku"] != "tiny"  # the file names a haiku model
    assert load_config(config_file, environ={"CCBENCH_SMALL_MODEL": "tiny"}).tiers["haiku"] == "tiny"
    both = {"CCBENCH_SMALL_MODEL": "tiny", "CCBENCH_HAIKU_MODEL": "named"}
    assert load_config(config_file, environ=both).tiers["haiku"] == "named"  # the tier's own name wins


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
        "claude-haiku-local": Route("qwen3-small"),
        "claude-opus-local": Route("qwen3-big"),
        "my-exact-name": Route("exact-model"),
    }


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"upstream_format": "grpc"}, "upstream_format"),
        ({"upstream": "ftp://x"}, "http(s) URL"),
        ({"thinking": "loud"}, "thinking must be one of"),
        ({"max_concurrency": 0}, "max_concurrency must be at least 1, not 0"),
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


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"upstream": "http://[::1"}, "upstream must be an http(s) URL, not 'http://[::1'"),
        ({"upstream": "http://"}, "upstream must be an http(s) URL with a host, not 'http://'"),
        ({"upstream": "http:///v1"}, "upstream must be an http(s) URL with a host"),
        ({"upstream": "http://h:99999/v1"}, "upstream must be an http(s) URL, not 'http://h:99999/v1'"),
        ({"upstream": "http://xn--/v1"}, "upstream must be an http(s) URL"),
        ({"upstream": "http://exa mple/v1"}, "upstream must be an http(s) URL"),
        ({"upstream": "http://h/v1?key=1"}, "without ?query or #fragment"),
        ({"upstream": "8000"}, "upstream must be an http(s) URL"),
        (  # a pasted endpoint: every request went to …/chat/completions/chat/completions (404)
            {"upstream": "http://u:secret@gpu:8000/v1/chat/completions/"},
            "upstream takes the base URL, not the /chat/completions endpoint: try http://gpu:8000/v1",
        ),
        (
            {"upstream": "http://127.0.0.1:8082/v1/messages", "upstream_format": "anthropic"},
            "upstream takes the base URL, not the /v1/messages endpoint: try http://127.0.0.1:8082",
        ),
        ({"context_length": -1}, "context_length must be between 0 and"),
        ({"context_length": 1 << 40}, "context_length must be between 0 and"),
        ({"max_output_tokens": 0}, "max_output_tokens must be between 1 and"),
        ({"max_output_tokens": -5}, "max_output_tokens must be between 1 and"),
        ({"workers": 0}, "workers must be between 1 and 64, not 0"),
        ({"workers": 790}, "workers must be between 1 and 64, not 790"),
        ({"max_queue": -1}, "max_queue must be at least 0, not -1"),
        ({"max_body_bytes": 0}, "max_body_bytes must be at least 1, not 0"),
        ({"read_timeout": float("inf")}, "read_timeout must be a finite number of seconds greater than 0"),
        ({"read_timeout": float("nan")}, "read_timeout must be a finite number of seconds greater than 0"),
        ({"connect_timeout": 0}, "connect_timeout must be a finite number of seconds greater than 0"),
        ({"ping_interval": "-1"}, "ping_interval must be a finite number of seconds greater than 0"),
        ({"port": 80.5}, "port must be a whole number, not 80.5"),
        ({"workers": True}, "workers must be a number, not True"),
        ({"log_level": "basicConfig"}, "log_level must be one of debug, info, warning, error"),
    ],
)
def test_out_of_range_flags_are_config_errors_from_the_command_line(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides, environ={})
    assert str(info.value).startswith("command line: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("forward_headers: 5\n", "forward_headers must be a list of header names, not 5"),
        ("forward_headers: x-trace\n", "forward_headers must be a list of header names, not 'x-trace'"),
        ("forward_headers: [x-a, [1]]\n", "forward_headers must be a list of header names"),
        ("read_timeout: .inf\n", "read_timeout must be a finite number of seconds greater than 0, not inf"),
        ("read_timeout: .nan\n", "read_timeout must be a finite number of seconds greater than 0, not nan"),
        ("connect_timeout: -.inf\n", "connect_timeout must be a finite number of seconds greater than 0"),
        ("ping_interval: [1]\n", "ping_interval must be a number, not [1]"),
        ("context_length: .inf\n", "context_length must be a whole number, not inf"),
        ("max_output_tokens: 0\n", "max_output_tokens must be between 1 and"),
        ("workers: 790\n", "workers must be between 1 and 64, not 790"),
        ("max_concurrency: 0\n", "max_concurrency must be at least 1, not 0"),
        ("port:\n", "port must be a number, not None"),
        ("upstream: 'http://[::1'\n", "upstream must be an http(s) URL, not 'http://[::1'"),
        ("probe_backend: maybe\n", "probe_backend must be true or false, not 'maybe'"),
        ("host: [a, b]\n", "host must be a string, not ['a', 'b']"),
        ("tiers: 5\n", "'tiers' must be a mapping"),
        ("models:\n  tiers: [x]\n", "'tiers' must be a mapping"),
    ],
)
def test_bad_file_values_name_the_key_and_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("CCBENCH_WORKERS", "790", "workers must be between 1 and 64, not 790"),
        ("CCBENCH_UPSTREAM", "http://[::1", "upstream must be an http(s) URL"),
        ("CCBENCH_READ_TIMEOUT", "inf", "read_timeout must be a finite number of seconds greater than 0"),
        ("CCBENCH_CONTEXT_LENGTH", "-1", "context_length must be between 0 and"),
        ("CCBENCH_MAX_OUTPUT_TOKENS", "0", "max_output_tokens must be between 1 and"),
        ("CCBENCH_PROBE_BACKEND", "ture", "probe_backend must be true or false"),
    ],
)
def test_bad_environment_values_name_the_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={variable: value})
    assert str(info.value).startswith(f"{variable}: ")
    assert fragment in str(info.value)


def test_every_source_gets_the_same_ranges_and_good_values_pass(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("workers: 64\ncontext_length: 0\nmax_output_tokens: 1\nread_timeout: 1e3\nport: 8090.0\n")
    cfg = load_config(path, environ={"CCBENCH_MAX_QUEUE": "0", "CCBENCH_PROBE_BACKEND": "off"})
    assert (cfg.workers, cfg.context_length, cfg.max_output_tokens) == (64, 0, 1)
    assert (cfg.read_timeout, cfg.port, cfg.max_queue, cfg.probe_backend) == (1000.0, 8090, 0, False)
    for upstream in ("https://u:p@h.example:8443/v1", "http://[::1]:8000/v1", "HTTP://127.0.0.1:8000/v1/"):
        assert load_config(overrides={"upstream": upstream}, environ={}).upstream == upstream.rstrip("/")


def test_a_config_built_in_code_is_validated_the_same_way() -> None:
    with pytest.raises(ConfigError, match="read_timeout must be a finite number"):
        Config(read_timeout=float("inf")).validate()
    with pytest.raises(ConfigError, match="workers must be between 1 and 64"):
        Config(workers=100).validate()
    with pytest.raises(ConfigError, match="upstream must be an http"):
        Config(upstream="http://[::1").validate()
    Config().validate()


@pytest.mark.parametrize(
    ("upstream", "host", "port", "is_self"),
    [
        ("http://127.0.0.1:8082", "127.0.0.1", 8082, True),
        ("http://localhost:8082/v1", "127.0.0.1", 8082, True),
        ("http://127.0.0.1:8082", "0.0.0.0", 8082, True),  # a wildcard bind is reached through loopback
        ("http://[::1]:8082", "::", 8082, True),
        ("http://gpu-box:8082/v1", "gpu-box", 8082, True),
        ("http://127.0.0.1:8000/v1", "127.0.0.1", 8082, False),
        ("http://gpu-box:8082/v1", "127.0.0.1", 8082, False),  # the same port on another machine
        ("http://127.0.0.1:8082", "127.0.0.1", 0, False),  # port 0: a free port, never the upstream's
    ],
)
def test_upstream_is_self(upstream: str, host: str, port: int, is_self: bool) -> None:
    from proxy.urls import upstream_is_self

    assert upstream_is_self(Config(upstream=upstream, host=host, port=port)) is is_self


def test_an_anthropic_upstream_ending_in_v1_is_refused() -> None:
    """Requests went to /v1/v1/messages (`ccbench record --upstream` refused this already; the proxy did not)."""
    overrides = {"upstream": "https://u:k@api.example.com/v1/", "upstream_format": "anthropic"}
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides, environ={})
    assert str(info.value) == (
        "upstream with upstream_format anthropic: an Anthropic upstream is named by its root, as ANTHROPIC_BASE_URL "
        "takes it (requests go to …/v1/messages): try https://api.example.com"
    )
    assert load_config(overrides={"upstream": "https://api.example.com/v1"}, environ={}).upstream.endswith(
        "/v1"
    )
