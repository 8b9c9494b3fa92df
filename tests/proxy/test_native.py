"""Which build runs: the install compiles the translation modules when it can, and says when it did not."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from proxy import native
from proxy.banner import banner_text
from proxy.config import Config


def test_an_install_with_a_c_compiler_runs_every_listed_module_compiled() -> None:
    """A type error that mypyc refuses makes setup.py fall back to plain Python quietly: this says so loudly."""
    if os.environ.get(native.PURE_ENV):
        assert native.build_kind() == "pure"
    elif shutil.which("cc") or shutil.which("gcc"):
        assert native.build_kind() == "compiled", native.stale_modules() or native.compiled_modules()
    else:
        assert native.build_kind() in ("compiled", "pure")


def test_every_listed_module_exists_and_defines_no_class_that_must_stay_plain() -> None:
    root = Path(native.__file__).resolve().parent.parent
    for name in native.MODULES:
        source = root / (name.replace(".", "/") + ".py")
        assert source.exists(), name
        text = source.read_text()
        for plain_only in ("TypedDict", "(AssertionError)", "msgspec.Struct", "(Struct"):
            assert plain_only not in text, f"{name} defines a {plain_only}: see proxy/translate/shapes.py"


def _fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_newer: bool) -> None:
    built = tmp_path / "fake_translation.cpython-311-x86_64-linux-gnu.so"
    source = tmp_path / "fake_translation.py"
    built.write_bytes(b"")
    source.write_text("")
    old, new = 1_000_000_000, 1_000_000_100
    os.utime(built, (old, new if not source_newer else old))
    os.utime(source, (old, new if source_newer else old))
    module = types.ModuleType("fake_translation")
    module.__file__ = str(built)
    monkeypatch.setitem(sys.modules, "fake_translation", module)
    monkeypatch.setattr(native, "MODULES", ("fake_translation",))
    native.build_kind.cache_clear()


def test_a_module_compiled_from_an_older_source_is_named_as_stale(tmp_path, monkeypatch) -> None:
    _fake_build(tmp_path, monkeypatch, source_newer=True)
    try:
        assert native.stale_modules() == ["fake_translation"]
        assert native.build_kind() == "stale"
        assert "older source of fake_translation: pip install -e . again" in native.build_line()
    finally:
        native.build_kind.cache_clear()


def test_a_fresh_build_is_compiled_and_the_banner_says_so(tmp_path, monkeypatch) -> None:
    _fake_build(tmp_path, monkeypatch, source_newer=False)
    try:
        assert native.stale_modules() == []
        assert native.build_kind() == "compiled"
        assert "translation: compiled with mypyc\n" in banner_text(Config(), None, "127.0.0.1", 8082)
    finally:
        native.build_kind.cache_clear()


def test_a_partial_build_asks_for_a_reinstall(monkeypatch) -> None:
    monkeypatch.setattr(native, "MODULES", ("proxy.translate.shapes", "proxy.native"))  # neither compiled
    monkeypatch.setattr(native, "compiled_modules", lambda: ["proxy.native"])
    native.build_kind.cache_clear()
    try:
        assert native.build_kind() == "partly compiled"
        assert native.build_line().endswith("(1 of 2 modules): reinstall")
    finally:
        native.build_kind.cache_clear()


def test_a_build_that_compiles_nothing_removes_what_an_earlier_in_place_build_left(tmp_path) -> None:
    """An editable install whose compile step falls back to Python (a type error, CCBENCH_PURE_PYTHON=1) must not
    leave the previous build's modules beside the sources: Python would import them, and they need the group
    library (setup.py calls this then)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    left = [
        tmp_path / (native.MODULES[0].replace(".", "/") + suffix),
        tmp_path / f"{native.GROUP}__mypyc{suffix}",
    ]
    kept = [tmp_path / (native.MODULES[0].replace(".", "/") + ".py"), tmp_path / f"other{suffix}"]
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert sorted(native.remove_built_in_place(tmp_path)) == sorted(left)
    assert not any(path.exists() for path in left) and all(path.exists() for path in kept)
    assert native.remove_built_in_place(tmp_path) == []
