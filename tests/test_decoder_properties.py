"""Property tests: invariants that must hold for any QA image and any valid config."""

from __future__ import annotations

import dask.array as da
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import clearcube as cc
from clearcube import Flag, MaskConfig

from .strategies import chunk_sizes, qa_images, tiers

ENCODINGS_U16 = ["landsat-qa-pixel", "s2-qa60", "landsat-qa-radsat"]
ENCODINGS_U8 = ["s2-scl", "hls-fmask"]


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_fill_is_nodata_only_and_never_clear(qa, tiers):
    qa = qa | np.uint16(1)  # every pixel fill
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert (flags == Flag.NODATA).all()
    assert not cc.is_clear(flags).any()


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_bit3_is_never_clear(qa, tiers):
    qa = (qa | np.uint16(1 << 3)) & np.uint16(0xFFFE)  # cloud bit on, fill bit off
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert (flags & Flag.CLOUD).all()
    assert not cc.is_clear(flags).any()


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_more_tiers_never_unmask(qa, tiers):
    fewer = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    more = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=(*tiers, 1, 2, 3)))
    assert ((fewer & ~more) == 0).all()  # every flag set with fewer tiers stays set with more


@given(qa=qa_images(np.uint8))
def test_scl_cloud_classes_never_clear_and_nodata_alone(qa):
    flags = cc.decode(qa, "s2-scl")
    assert not cc.is_clear(flags)[np.isin(qa, [0, 1, 3, 8, 9, 10])].any()
    nodata = (flags & Flag.NODATA) != 0
    assert (flags[nodata] == Flag.NODATA).all()
    assert nodata[(qa == 0) | (qa > 11)].all()


@given(qa=qa_images(np.uint8))
def test_fmask_fill_and_cloud(qa):
    flags = cc.decode(qa, "hls-fmask")
    assert (flags[qa == 255] == Flag.NODATA).all()
    cloud = ((qa >> 1) & 1).astype(bool) & (qa != 255)
    assert not cc.is_clear(flags)[cloud].any()


@given(data=st.data(), encoding=st.sampled_from(ENCODINGS_U16 + ENCODINGS_U8))
def test_numpy_and_chunked_dask_agree(data, encoding):
    dtype = np.uint8 if encoding in ENCODINGS_U8 else np.uint16
    qa = data.draw(qa_images(dtype))
    chunks = data.draw(chunk_sizes(qa.shape))
    eager = cc.decode(qa, encoding)
    lazy = cc.decode(da.from_array(qa, chunks=chunks), encoding)
    np.testing.assert_array_equal(lazy.compute(), eager)
    assert eager.shape == qa.shape
    assert eager.dtype == np.uint16


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_only_vocabulary_bits_are_ever_set(qa, tiers):
    cfg = MaskConfig(confidence_tiers=tiers)
    every = np.uint16(sum(int(f) for f in Flag))
    for encoding in ENCODINGS_U16:
        assert ((cc.decode(qa, encoding, cfg) & ~every) == 0).all()
