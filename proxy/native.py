"""Which modules the install compiles to C with mypyc, and whether this process runs them compiled.

The proxy's own work per request is pure-Python translation: parsing chunks, the stream state machine, the event
grammar check, the request translation. An interpreter spends most of that on calls and dict lookups, which
mypyc (mypy's compiler, type hints as the types) turns into C. `setup.py` compiles the modules below when it
can (a C compiler and mypy in the build environment, both standard on Linux); otherwise, or with
`CCBENCH_PURE_PYTHON=1` at install time, the very same source runs as plain Python. The banner, `/health` and
the benchmark say which one runs.

Kept out of the list: the handlers, the relay and the backend client (aiohttp conventions, tests that patch them;
compiling them as well measured ~1 % fewer instructions), the classes in `proxy.translate.shapes` (they must stay
plain classes), and `surrogates.py` (mypyc refuses lone surrogate literals; it is used only on broken input).
`tokens.py` is in the list whole: its estimate runs on every request, and its calls to a backend's tokenizer are
coroutines that compile as they are."""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
from pathlib import Path

PURE_ENV = "CCBENCH_PURE_PYTHON"  # set at install time: build no C extensions
GROUP = "ccbench_native"  # mypyc's shared library for the group (ccbench_native__mypyc.*.so)

MODULES = (
    "proxy.bodyparse",
    "proxy.sse",
    "proxy.textmemo",
    "proxy.tokens",
    "proxy.translate.backend_errors",
    "proxy.translate.backend_stream",
    "proxy.translate.chunks",
    "proxy.translate.content",
    "proxy.translate.invariants",
    "proxy.translate.jsonprefix",
    "proxy.translate.knownmessages",
    "proxy.translate.jsonvalues",
    "proxy.translate.outcome",
    "proxy.translate.params",
    "proxy.translate.prefill",
    "proxy.translate.request",
    "proxy.translate.response",
    "proxy.translate.serialize",
    "proxy.translate.sharedtext",
    "proxy.translate.stream",
    "proxy.translate.textcalls",
    "proxy.translate.thinktags",
    "proxy.translate.toolcall",
    "proxy.translate.toolcalls",
    "proxy.translate.tools",
    "proxy.translate.validate",
)


def is_compiled(module_name: str) -> bool:
    """True when `module_name` was loaded from a C extension rather than its .py source."""
    module = importlib.import_module(module_name)
    return str(getattr(module, "__file__", "")).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> list[str]:
    return [name for name in MODULES if is_compiled(name)]


def stale_modules() -> list[str]:
    """Compiled modules whose .py source changed after they were built: the process runs the old code (an edit
    in a checkout with an editable install takes effect only after `pip install -e .` again)."""
    stale = []
    for name in compiled_modules():
        built = Path(importlib.import_module(name).__file__ or "")
        source = built.parent / (name.rpartition(".")[2] + ".py")
        if source.exists() and source.stat().st_mtime > built.stat().st_mtime:
            stale.append(name)
    return stale


def remove_built_in_place(root: Path) -> list[Path]:
    """Delete the compiled modules (and their group library) that an earlier in-place build, as an editable install
    makes, left beside the sources under `root`; the paths removed. A build that compiles nothing calls it
    (setup.py): Python would still import those files, which then fail for want of the group library."""
    removed: list[Path] = []
    for name in (*MODULES, f"{GROUP}__mypyc"):
        stem = str(root / name.replace(".", "/"))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(stem + suffix)
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed


@functools.cache
def build_kind() -> str:
    """One of "compiled" (all of MODULES), "pure" (none), "partly compiled" (a broken build) or "stale" (compiled
    from an older source)."""
    count = len(compiled_modules())
    if count == 0:
        return "pure"
    if count < len(MODULES):
        return "partly compiled"
    return "stale" if stale_modules() else "compiled"


def build_line() -> str:
    """For the start-up banner."""
    kind = build_kind()
    if kind == "compiled":
        return "translation: compiled with mypyc"
    if kind == "pure":
        return "translation: plain Python (compiled at install when a C compiler is there: ~15 % less CPU per request)"
    if kind == "stale":
        return f"translation: compiled from an older source of {', '.join(stale_modules())}: pip install -e . again"
    return f"translation: partly compiled ({len(compiled_modules())} of {len(MODULES)} modules): reinstall"
