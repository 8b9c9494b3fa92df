"""Reading the YAML and JSON files users hand us (configs, scenarios, scripts, results).

One place turns every way a file can be wrong (missing, a directory, unreadable, not UTF-8, bad syntax)
into one clear message naming the file, raised as the caller's own error type, so that the CLI can
answer with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def read_text_file(path: str | os.PathLike, what: str, error: type[Exception]) -> str:
    """The file's text; `what` names it in messages ("config file", "results file", ...)."""
    source = Path(path)
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"cannot read {what} {source}: no such file") from None
    except IsADirectoryError:
        raise error(f"cannot read {what} {source}: is a directory") from None
    except UnicodeDecodeError:
        raise error(f"cannot read {what} {source}: not UTF-8 text") from None
    except OSError as exc:
        raise error(f"cannot read {what} {source}: {exc.strerror or exc}") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message (context, position, a snippet with a caret) as one line, for one-line usage
    errors: `line 2, column 1: expected the node content, but found '<stream end>' (while parsing a flow node)`."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        text = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem or 'invalid YAML'}{context}"
    else:
        text = str(exc)
    return " ".join(text.split())


def load_yaml_file(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parsed YAML (JSON is YAML too); every problem is one line naming the file, raised as `error`."""
    text = read_text_file(path, what, error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {yaml_problem(exc)}") from None


def load_json_file(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parsed JSON; syntax errors name the file, line and column."""
    text = read_text_file(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
