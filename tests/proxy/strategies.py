"""Hypothesis strategies shared by the proxy's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

json_values = st.recursive(  # any JSON value (Python's ints, so beyond 64 bits too)
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
