"""Build hook: a wheel carries the bundled suites (scenarios/ and cassettes/) inside the package.

The metadata lives in pyproject.toml. An editable install reads scenarios/ and cassettes/ from the checkout;
a wheel has no checkout, so they are copied to harness/data/, where `harness.scenarios.default_scenarios_dir`
looks last and where a scenario's `cassettes/...` paths resolve (the project root is the scenarios folder's
parent). Without this, `pip install ccbench && ccbench run` would find no suites.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("scenarios", "cassettes")


class BuildPyWithSuites(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, Path(self.build_lib) / "harness" / "data" / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithSuites})
