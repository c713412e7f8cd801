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


def qa_pixel_images(max_side: int = 24) -> st.SearchStrategy[np.ndarray]:
    """2-D QA_PIXEL images of values USGS can write on a valid pixel: fill bit off and a cloud
    confidence (bits 8-9) of 1, 2 or 3; every other bit free."""
    return qa_images(np.uint16, max_side).flatmap(
        lambda qa: hnp.arrays(np.uint8, qa.shape, elements=st.integers(1, 3)).map(
            lambda conf: (qa & np.uint16(0xFCFE)) | (conf.astype(np.uint16) << np.uint16(8))
        )
    )
