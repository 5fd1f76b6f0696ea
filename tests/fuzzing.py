"""Hypothesis strategies for what a hostile client sends as JSON: shared by the
fuzz tests of the REST API, the widget endpoints and both sockets."""

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded and derandomized: the same examples on every run, in seconds.
FUZZ = settings(
    max_examples=100, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

# Lone UTF-16 surrogates: Python keeps them in a str, no UTF-8 encoder takes them.
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
texts = st.text(max_size=12) | surrogates | st.text(max_size=3).map(lambda text: text + "\x00")
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn ``weight`` times as often: the
    protocol's own messages must come often enough among the junk."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


def encoded(value: object, ascii_only: bool) -> bytes:
    """JSON as a client would send it. ``ensure_ascii`` escapes a lone surrogate
    (``"\\ud800"``); without it, the surrogate goes out as the three bytes UTF-8
    would give it, which no UTF-8 decoder accepts."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def nesting(*, max_depth: int) -> st.SearchStrategy[bytes]:
    """Opening brackets, closed or not, past the depth any parser recurses to."""
    opened = st.tuples(st.sampled_from([b"[", b'{"a":', b'{"a":[']), st.integers(1, max_depth))
    return opened.map(lambda pair: pair[0] * pair[1]) | st.integers(1, max_depth // 2).map(
        lambda depth: b"[" * depth + b"]" * depth
    )
