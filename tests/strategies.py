"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

tiers = st.lists(st.integers(0, 3), max_size=4, unique=True).map(lambda t: tuple(sorted(t)))


def qa_images(dtype: type[np.integer], max_side: int = 24) -> st.SearchStrategy[np.ndarray]:
    """2-D QA images of any values of ``dtype``."""
    return hnp.arrays(
        dtype=dtype,
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side),
        elements=st.integers(np.iinfo(dtype).min, np.iinfo(dtype).max),
    )


def chunk_sizes(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(st.integers(1, max(1, n)) for n in shape))
