"""ccbench proxy: an Anthropic Messages gateway in front of OpenAI-compatible model servers."""

__version__ = "0.1.0"
