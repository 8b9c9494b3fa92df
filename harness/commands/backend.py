"""`ccbench backend start llamacpp`: run a real llama-server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from harness.backends import MAX_TIMEOUT
from harness.commands.options import FiniteFloatRange
from harness.llamacpp import (
    DEFAULT_CTX,
    DEFAULT_MODEL,
    BackendSetupError,
    BackendStartError,
    LlamaServer,
    LlamaServerOptions,
    parse_extra_args,
    prepare_server,
)


@click.group(name="backend")
def command() -> None:
    """Start a real local model server (llama.cpp llama-server) for ccbench and Claude Code."""


def ready_banner(server: LlamaServer) -> str:
    """What to paste next, once the server is healthy."""
    return "\n".join(
        [
            f"llama-server ready: {server.base_url}",
            "Next steps:",
            f"  ccbench proxy --upstream {server.base_url}",
            f"  ccbench run --backend llamacpp --base-url {server.base_url} --suite smoke",
            "Stop with Ctrl-C.",
        ]
    )


async def serve_foreground(server: LlamaServer, ready_timeout: float) -> int:
    """Start, print the banner, then wait for a signal (forwarded to the child) or the child's own exit."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: received.done() or received.set_result(s))
    start = asyncio.create_task(server.start(ready_timeout))
    await asyncio.wait({start, received}, return_when=asyncio.FIRST_COMPLETED)
    if received.done() and not start.done():
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await server.stop(received.result())
        return 0
    start.result()  # raises BackendStartError / BackendSetupError
    click.echo(ready_banner(server), err=False)
    sys.stdout.flush()
    exited = asyncio.create_task(server.wait())
    await asyncio.wait({exited, received}, return_when=asyncio.FIRST_COMPLETED)
    if received.done():
        exited.cancel()
        await server.stop(received.result())
        return 0
    code = exited.result()
    click.echo(f"llama-server exited on its own with code {code}", err=True)
    click.echo("\n".join(f"  | {line}" for line in server.stderr_tail), err=True)
    return 1


@command.command(name="start")
@click.argument("kind", type=click.Choice(["llamacpp"]))
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="'smollm2' (packaged) or a path to a .gguf file.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--ctx", type=int, default=DEFAULT_CTX, show_default=True, help="Context length (tokens) per slot."
)
@click.option("--threads", type=int, default=None, help="CPU threads (llama-server's default when unset).")
@click.option(
    "--train-ctx",
    type=int,
    default=None,
    help="The model's trained context; when --ctx exceeds it, yarn rope scaling stretches it "
    "(known for smollm2: 8192).",
)
@click.option(
    "--model-template",
    is_flag=True,
    help="Use the model's own chat template instead of the packaged tools-aware ChatML one.",
)
@click.option("--extra-args", default=None, help='More llama-server flags, e.g. "--temp 0 --seed 1".')
@click.option(
    "--ready-timeout",
    type=FiniteFloatRange(min=1, max=MAX_TIMEOUT),
    default=120.0,
    show_default=True,
    help="Seconds to wait for /health.",
)
@click.option("--verbose", is_flag=True, help="Echo llama-server's own log.")
def start(
    kind: str,
    model: str,
    port: int,
    host: str,
    ctx: int,
    threads: int | None,
    train_ctx: int | None,
    model_template: bool,
    extra_args: str | None,
    ready_timeout: float,
    verbose: bool,
) -> None:
    """Run llama-server with tool calling and a Claude Code-sized context until Ctrl-C."""
    try:
        options = LlamaServerOptions(
            model=model,
            host=host,
            port=port,
            ctx=ctx,
            threads=threads,
            extra_args=parse_extra_args(extra_args),
            train_ctx=train_ctx,
            model_template=model_template,
        )
        server = prepare_server(options, echo_logs=verbose)
        click.echo("starting: " + " ".join(server.command), err=True)
        code = asyncio.run(serve_foreground(server, ready_timeout))
    except BackendSetupError as exc:
        raise click.UsageError(str(exc)) from None
    except BackendStartError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(1)
    sys.exit(code)
