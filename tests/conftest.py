"""Suite-wide: tests marked `plain_python` need the translation modules as plain Python (see proxy/native.py)."""

from __future__ import annotations

import pytest

from proxy.native import compiled_modules

COMPILED_SKIP = (
    "patches or subclasses translation internals, which run compiled in this install; "
    "tests/test_plain_python.py runs it against the same source as plain Python"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not compiled_modules():
        return
    for item in items:
        if item.get_closest_marker("plain_python"):
            item.add_marker(pytest.mark.skip(reason=COMPILED_SKIP))
