"""Property tests: invariants that must hold for any QA image and any valid config."""

from __future__ import annotations

import dask.array as da
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import clearcube as cc
from clearcube import Flag, MaskConfig
from clearcube.sensors import get_encoding

from .strategies import chunk_sizes, qa_images, qa_pixel_images, tiers

ENCODINGS_U16 = ["landsat-qa-pixel", "s2-qa60", "landsat-qa-radsat"]
ENCODINGS_U8 = ["s2-scl", "hls-fmask"]


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_fill_is_nodata_only_and_never_clear(qa, tiers):
    qa = qa | np.uint16(1)  # every pixel fill
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert (flags == Flag.NODATA).all()
    assert not cc.is_clear(flags).any()


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_without_cloud_confidence_is_nodata_only(qa, tiers):
    qa = qa & np.uint16(0xFCFE)  # fill bit off, cloud confidence 00: a reader's fill
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert (flags == Flag.NODATA).all()
    assert not cc.is_clear(flags).any()


@given(qa=qa_images(np.uint16), tiers=tiers)
def test_landsat_nodata_is_exactly_fill_or_no_confidence(qa, tiers):
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    nodata = ((qa & 1) == 1) | (((qa >> 8) & 3) == 0)
    np.testing.assert_array_equal((flags & Flag.NODATA) != 0, nodata)
    assert (flags[nodata] == Flag.NODATA).all()  # NODATA and nothing else


@given(qa=qa_pixel_images(), tiers=tiers)
def test_landsat_bit3_is_never_clear(qa, tiers):
    qa = qa | np.uint16(1 << 3)  # cloud bit on a valid pixel
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert (flags & Flag.CLOUD).all()
    assert not cc.is_clear(flags).any()


@given(qa=qa_pixel_images(), tiers=tiers)
def test_landsat_valid_pixels_are_valid_and_tiers_select_cloud(qa, tiers):
    flags = cc.decode(qa, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    assert not (flags & Flag.NODATA).any()
    conf = (qa >> 8) & 3
    by_tier = np.isin(conf, [t for t in tiers if t > 0]) | (((qa >> 3) & 1) == 1)
    np.testing.assert_array_equal((flags & Flag.CLOUD) != 0, by_tier)


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


@given(qa=qa_images(np.uint16))
def test_qa60_only_bits_10_and_11_are_data(qa):
    flags = cc.decode(qa, "s2-qa60")
    undefined = (qa & np.uint16(0xF3FF)) != 0
    assert (flags[undefined] == Flag.NODATA).all()
    assert not (flags[~undefined] & Flag.NODATA).any()
    np.testing.assert_array_equal(
        (flags[~undefined] & Flag.CLOUD) != 0, ((qa[~undefined] >> 10) & 1) == 1
    )


@given(data=st.data(), encoding=st.sampled_from(ENCODINGS_U16 + ENCODINGS_U8))
def test_the_encoding_fill_is_nodata_wherever_it_lies(data, encoding):
    # engines that return raw codes fill with it outside a raster: it must never be clear
    enc = get_encoding(encoding)
    qa = data.draw(qa_images(np.dtype(enc.native_dtype).type))
    holes = data.draw(hnp.arrays(bool, qa.shape))
    qa = np.where(holes, qa.dtype.type(enc.fill), qa)
    flags = cc.decode(qa, encoding, MaskConfig(on_undefined="nodata"))
    assert (flags[holes] == Flag.NODATA).all()
    assert not cc.is_clear(flags)[holes].any()


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
