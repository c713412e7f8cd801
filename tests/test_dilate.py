"""Dilation in metres and despeckling: exact distances, chunk-independent, no-data untouched."""

from __future__ import annotations

import dask.array as da
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from clearcube import Flag
from clearcube._dilate import dilate_flags, overlap_depth_px

GROW = int(Flag.CLOUD | Flag.SHADOW)


def brute_force(flags, distance_m, res_yx):
    """Per pixel: is there a seed within distance (pixel centres)? Independent of scipy."""
    ny, nx = flags.shape
    seeds = [
        (i, j)
        for i in range(ny)
        for j in range(nx)
        if flags[i, j] & GROW and not flags[i, j] & Flag.NODATA
    ]
    out = flags.copy()
    for i in range(ny):
        for j in range(nx):
            if flags[i, j] & Flag.NODATA or (i, j) in seeds:
                continue
            for si, sj in seeds:
                if ((i - si) * res_yx[0]) ** 2 + ((j - sj) * res_yx[1]) ** 2 <= distance_m**2:
                    out[i, j] |= Flag.DILATED
                    break
    return out


def test_ring_radius_in_metres():
    flags = np.zeros((21, 21), np.uint16)
    flags[10, 10] = Flag.CLOUD
    out = dilate_flags(flags, distance_m=30, res_yx=(10, 10), grow_bits=GROW)
    dilated = (out & Flag.DILATED) != 0
    assert dilated[10, 13]  # 30 m east
    assert not dilated[10, 14]  # 40 m east
    assert dilated[12, 12]  # 28.3 m diagonal
    assert not dilated[13, 12]  # 36 m
    assert not dilated[10, 10]  # the seed keeps CLOUD only
    assert out[10, 10] == Flag.CLOUD
    assert dilated.sum() == 28  # pixels with 0 < d <= 3 px: 29 lattice points minus the seed
    # the same 30 m on a 20 m grid reaches only one pixel
    coarse = dilate_flags(flags[::2, ::2], distance_m=30, res_yx=(20, 20), grow_bits=GROW)
    assert ((coarse & Flag.DILATED) != 0).sum() == 8


def test_nodata_never_marked_and_other_flags_kept():
    flags = np.array([[Flag.CLOUD, Flag.NODATA, Flag.WATER, Flag.SNOW]], np.uint16)
    out = dilate_flags(flags, distance_m=25, res_yx=(10, 10), grow_bits=GROW)
    assert out.tolist() == [[Flag.CLOUD, Flag.NODATA, Flag.WATER | Flag.DILATED, Flag.SNOW]]


def test_despeckle_removes_isolated_pixels_only():
    flags = np.zeros((10, 10), np.uint16)
    flags[1, 1] = Flag.CLOUD  # isolated single pixel
    flags[5:8, 5:8] = Flag.CLOUD  # a 9-pixel cloud
    flags[1, 8] = Flag.CLOUD | Flag.WATER
    out = dilate_flags(flags, distance_m=0, res_yx=(10, 10), grow_bits=GROW, despeckle_px=1)
    assert out[1, 1] == 0
    assert out[1, 8] == Flag.WATER  # loses only the grown flag
    assert (out[5:8, 5:8] == Flag.CLOUD).all()
    out2 = dilate_flags(flags, distance_m=10, res_yx=(10, 10), grow_bits=GROW, despeckle_px=1)
    assert not out2[0:3, 0:3].any()  # a removed speck seeds no buffer
    assert out2[4, 6] & Flag.DILATED


@given(
    image=hnp.arrays(
        np.uint16,
        st.tuples(st.integers(1, 14), st.integers(1, 14)),
        elements=st.sampled_from(
            [0, 0, 0, 0, int(Flag.CLOUD), int(Flag.SHADOW), int(Flag.NODATA), int(Flag.WATER)]
        ),
    ),
    distance=st.sampled_from([5.0, 10.0, 15.0, 25.0, 42.0]),
    res=st.sampled_from([(10.0, 10.0), (20.0, 10.0), (30.0, 30.0)]),
)
def test_matches_brute_force(image, distance, res):
    got = dilate_flags(image, distance_m=distance, res_yx=res, grow_bits=GROW)
    np.testing.assert_array_equal(got, brute_force(image, distance, res))


@settings(max_examples=40)
@given(
    data=st.data(),
    distance=st.sampled_from([10.0, 30.0, 55.0]),
    despeckle=st.integers(0, 3),
)
def test_chunk_edges_do_not_show(data, distance, despeckle):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cube = np.where(rng.random((2, 40, 36)) < 0.08, np.uint16(Flag.CLOUD), np.uint16(0))
    cube[:, :, :3] = Flag.NODATA
    cy = data.draw(st.integers(6, 40))
    cx = data.draw(st.integers(6, 36))
    lazy = da.from_array(cube, chunks=(1, cy, cx))
    kw = {
        "distance_m": distance,
        "res_yx": (10.0, 10.0),
        "grow_bits": GROW,
        "despeckle_px": despeckle,
    }
    got = dilate_flags(lazy, **kw)
    assert isinstance(got, da.Array)
    np.testing.assert_array_equal(got.compute(), dilate_flags(cube, **kw))


def test_overlap_depth():
    assert overlap_depth_px(30, (10, 10), 0) == (3, 3)
    assert overlap_depth_px(25, (20, 10), 0) == (2, 3)
    assert overlap_depth_px(0, (10, 10), 4) == (4, 4)
    assert overlap_depth_px(30, (10, 10), 2) == (5, 5)
