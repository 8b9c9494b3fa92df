"""The `ccbench` command group.

Each subcommand lives in `harness/commands/<name>.py` as a click command named `command`, and is imported
only when it runs, so `ccbench proxy` starts without loading the harness and `ccbench --help` stays fast.
"""

from __future__ import annotations

import importlib

import click

from proxy import __version__

COMMANDS: dict[str, str] = {
    "proxy": "Serve the Anthropic Messages API in front of an OpenAI-compatible (or Anthropic) backend.",
    "record": "Record Claude Code sessions into a vcrpy-format cassette through a recording proxy.",
    "run": "Replay scenarios against a backend and score schema validity, tool calls and latency.",
    "compare": "Compare results files from several runs (terminal table, Markdown, HTML).",
    "gate": "CI gate: fail when a candidate's results regress against a baseline.",
    "backend": "Start a real local model server (llama.cpp llama-server).",
    "live": "Run the real Claude Code CLI through the proxy on task scenarios.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"harness.commands.{cmd_name}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, help_text in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ccbench")
def main() -> None:
    """ccbench: will your local model work with Claude Code?

    A translating proxy (Anthropic Messages <-> OpenAI Chat Completions) and a record-replay harness that
    scores schema validity, tool-call success and latency, compares models and gates upgrades in CI.
    """
