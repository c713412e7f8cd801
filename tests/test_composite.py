"""The composite median: exactly numpy's nanmedian, from one sort."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
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


def test_clear_dates_are_the_first_and_last_clear_day_or_no_date():
    """uint16 days since 1970, ``NO_DATE`` where a pixel is never clear; the ends of the range
    (day 0, day 65534) included."""
    from clearcube.compositing import NO_DATE, _clear_dates

    rng = np.random.default_rng(3)
    days = np.array([0, 19000, 19005, 20000, 65534])
    clear = rng.random((days.size, 17, 23)) < 0.3
    clear[:, 0, 0] = False
    times = np.datetime64("1970-01-01") + days.astype("timedelta64[D]")
    da = xr.DataArray(clear, dims=("time", "y", "x"), coords={"time": times})
    first, last = (np.asarray(a) for a in _clear_dates(da))
    assert first.dtype == last.dtype == np.uint16
    for yy in range(17):
        for xx in range(23):
            seen = days[clear[:, yy, xx]]
            want = (seen.min(), seen.max()) if seen.size else (NO_DATE, NO_DATE)
            assert (first[yy, xx], last[yy, xx]) == want
    lazy = _clear_dates(da.chunk({"time": 1, "y": 8, "x": 8}))
    np.testing.assert_array_equal(np.asarray(lazy[0]), first)
    np.testing.assert_array_equal(np.asarray(lazy[1]), last)
