"""ccbench harness: record Claude Code sessions, replay them against local models, score and gate."""

from proxy import __version__

__all__ = ["__version__"]
