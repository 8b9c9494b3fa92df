"""`ccbench proxy`: serve the Anthropic Messages API in front of an OpenAI-compatible (or Anthropic) backend.

Every option can also come from a CCBENCH_* variable or the YAML file given with --config; flags win over the
environment, which wins over the file (see proxy/config.py). Bad values are usage errors (exit 2).
"""

from __future__ import annotations

import errno
import socket
import sys

import click

from proxy.config import LOG_LEVELS, MAX_WORKERS, THINKING_STYLES, ConfigError, load_config
from proxy.urls import upstream_is_self

LISTEN_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES, errno.EAFNOSUPPORT)


@click.command(name="proxy")
@click.option("--upstream", help="Backend URL: an OpenAI base URL ending in /v1, or an Anthropic root URL.")
@click.option(
    "--upstream-format",
    type=click.Choice(["openai", "anthropic"]),
    help="openai: translate to Chat Completions (default); anthropic: pass requests through.",
)
@click.option("--model", help="Default backend model (default: the first model the backend lists).")
@click.option("--small-model", help="Backend model for Claude Code's small/fast (haiku) requests.")
@click.option("--haiku-model", help="Backend model for claude-haiku-* requests.")
@click.option("--sonnet-model", help="Backend model for claude-sonnet-* requests.")
@click.option("--opus-model", help="Backend model for claude-opus-* requests.")
@click.option(
    "--haiku-upstream",
    help="OpenAI base URL of a server of its own for claude-haiku-* requests (e.g. a small model's).",
)
@click.option(
    "--sonnet-upstream", help="OpenAI base URL of a server of its own for claude-sonnet-* requests."
)
@click.option("--opus-upstream", help="OpenAI base URL of a server of its own for claude-opus-* requests.")
@click.option(
    "--config", "config_file", envvar="CCBENCH_CONFIG", help="YAML config file (env CCBENCH_CONFIG)."
)
@click.option("--host", help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8082; 0 picks a free one).")
@click.option("--api-key", help="Require this key from clients (x-api-key or Authorization: Bearer).")
@click.option(
    "--upstream-api-key", help="Key sent to the backend (Bearer for OpenAI, x-api-key for Anthropic)."
)
@click.option("--read-timeout", type=float, help="Longest backend silence in seconds (default 600).")
@click.option("--max-concurrency", type=int, help="Requests in flight to the backend (default 16).")
@click.option(
    "--context-length",
    type=int,
    help="Context length in tokens, overriding what the backend reports (0: no override).",
)
@click.option(
    "--max-output-tokens", type=int, help="Hard cap on max_tokens sent to the backend (at least 1)."
)
@click.option(
    "--thinking",
    type=click.Choice(THINKING_STYLES),
    help="How Anthropic thinking/effort reach the backend (default auto: by backend kind).",
)
@click.option(
    "--workers",
    type=int,  # its range (like every other setting's) is checked by load_config, whatever the source
    help=f"Processes sharing the port, one core each (1-{MAX_WORKERS}, default 1); limits such as "
    "--max-concurrency are per process. A worker that dies is replaced; a second Ctrl-C ends the shutdown grace.",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help="Log level (default info).")
def command(config_file: str | None, **options: object) -> None:
    """Serve the Anthropic Messages API for Claude Code in front of a local model server.

    \b
    Example:
      ccbench proxy --upstream http://127.0.0.1:8000/v1
      export ANTHROPIC_BASE_URL=http://127.0.0.1:8082 ANTHROPIC_AUTH_TOKEN=ccbench
      claude
    """
    tier_models = {f"{tier}_model": tier for tier in ("haiku", "sonnet", "opus")}
    overrides = {tier_models.get(k, k): v for k, v in options.items()}
    try:
        config = load_config(config_file, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if upstream_is_self(config):
        raise click.UsageError(
            f"the upstream {config.upstream} is this proxy's own address ({config.host}:{config.port}): "
            "every request would come back to it; name the model server, or listen on another --port"
        )
    from proxy.app import run  # imported late: `ccbench proxy --help` stays fast
    from proxy.logsetup import configure_logging

    configure_logging(config.log_level)

    try:
        status = run(config)
    except OSError as exc:  # socket.gaierror: a host that is no address and does not resolve
        if isinstance(exc, socket.gaierror) or exc.errno in LISTEN_ERRORS:
            raise click.UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
        raise
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed (during the start-up probe)
        sys.exit(130)
    sys.exit(status)
