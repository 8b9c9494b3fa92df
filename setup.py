"""Build hooks: the bundled suites inside a wheel, and the hot translation modules compiled with mypyc.

The metadata lives in pyproject.toml.

Suites: an editable install reads scenarios/ and cassettes/ from the checkout; a wheel has no checkout, so they
are copied to harness/data/, where `harness.scenarios.default_scenarios_dir` looks last and where a scenario's
`cassettes/...` paths resolve (the project root is the scenarios folder's parent). Without this,
`pip install ccbench && ccbench run` would find no suites.

Compiled modules (`proxy/native.py` lists them and says why): built when mypyc is importable (pyproject.toml's
build requirements bring it) and a C compiler works. A build that fails for any reason removes whatever it
built and leaves the pure-Python package, which runs the same source; `CCBENCH_PURE_PYTHON=1` skips it. A build
that compiles nothing also removes the compiled modules an earlier editable install left beside the sources.
"""

from __future__ import annotations

import os
import runpy
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("scenarios", "cassettes")
NATIVE = runpy.run_path(str(ROOT / "proxy" / "native.py"))


class BuildPyWithSuites(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, Path(self.build_lib) / "harness" / "data" / name, dirs_exist_ok=True)


class OptionalBuildExt(build_ext):
    """Compiles the modules only when the build really runs (pip calls setup.py several times, and mypyc's type
    check takes a while), and all or nothing: a module without its group library (or the reverse) would not
    import."""

    def finalize_options(self) -> None:
        try:
            self.distribution.ext_modules = native_extensions()
        except (Exception, SystemExit) as exc:  # mypy's check failed, …: the Python package works
            self.distribution.ext_modules = []
            self.warn(
                f"ccbench: mypyc could not compile the translation modules ({exc!r}); installing them as Python"
            )
        super().finalize_options()
        if not self.distribution.ext_modules:
            # What an earlier editable (in-place) build left would shadow these sources, and fail to import without
            # its group library. (The editable flags are not set yet here, and build_ext does not run at all when
            # there is nothing to compile.)
            for path in NATIVE["remove_built_in_place"](ROOT):
                self.warn(f"ccbench: removed {path.name}, left by an earlier build")

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no C compiler, a compile error, …
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            self.warn(
                f"ccbench: compiling the translation modules failed ({exc!r}); installing them as Python"
            )


def native_extensions() -> list:
    if os.environ.get(NATIVE["PURE_ENV"]):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    paths = [name.replace(".", "/") + ".py" for name in NATIVE["MODULES"]]
    # The build environment has none of the runtime dependencies: their types are Any to mypyc.
    flags = ["--ignore-missing-imports", "--follow-imports=silent"]
    return mypycify([*flags, *paths], opt_level="3", group_name=NATIVE["GROUP"])


setup(
    cmdclass={"build_py": BuildPyWithSuites, "build_ext": OptionalBuildExt},
    # A stand-in, so that setuptools runs build_ext and tags the wheel for this platform; `OptionalBuildExt`
    # replaces it with the real extensions.
    ext_modules=[Extension(f"{NATIVE['GROUP']}__stand_in", sources=[])],
)
