"""The composite median: exactly numpy's nanmedian, from one sort."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from clearcube.compositing import nanmedian_last

finite32 = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False, width=32)
values = st.one_of(finite32, st.just(float("nan")))


@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=17),
        elements=values,
    )
)
def test_equals_numpy_nanmedian_bit_for_bit(a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on all-NaN pixels
        want = np.nanmedian(a, axis=-1)
    got = nanmedian_last(a)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_pixels_without_a_value_are_nan_and_others_untouched():
    a = np.array([[np.nan, np.nan, np.nan], [3.0, np.nan, 1.0], [1.0, 2.0, 4.0]], np.float32)
    got = nanmedian_last(a)
    assert np.isnan(got[0])
    assert got[1] == 2.0
    assert got[2] == 2.0


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 12), st.integers(1, 9), st.integers(1, 9)),
        elements=values,
    )
)
def test_the_time_first_median_equals_numpy_bit_for_bit(a):
    from clearcube.compositing import nanmedian_first

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(a, axis=0)
    got = nanmedian_first(a)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))
