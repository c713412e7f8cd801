"""Every QA value of every encoding against the independent truth tables in ``_truth``."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import clearcube as cc
from clearcube import Flag, MaskConfig
from clearcube.sensors import ENCODINGS, get_encoding
from clearcube.sensors.hls import decode_fmask_bits
from clearcube.sensors.landsat import decode_qa_pixel_bits, decode_qa_radsat_bits
from clearcube.sensors.sentinel2 import QA60_FILL, decode_qa60_bits

from . import _truth as truth

ALL_U8 = np.arange(256, dtype=np.uint8)
ALL_U16 = np.arange(65536, dtype=np.uint16)


def expected(fn, values, **kw):
    return np.array([fn(int(v), **kw) for v in values], dtype=np.uint16)


def test_truth_flag_bits_match_the_vocabulary():
    assert (truth.NODATA, truth.SATURATED, truth.CLOUD, truth.CIRRUS, truth.SHADOW) == (
        Flag.NODATA,
        Flag.SATURATED,
        Flag.CLOUD,
        Flag.CIRRUS,
        Flag.SHADOW,
    )
    assert (truth.DILATED, truth.SNOW, truth.WATER, truth.TERRAIN_SHADOW) == (
        Flag.DILATED,
        Flag.SNOW,
        Flag.WATER,
        Flag.TERRAIN_SHADOW,
    )
    # one bit each, all distinct, all fit uint16
    values = [int(f) for f in Flag]
    assert len(set(values)) == len(values) == 10  # the nine QA flags and UNREADABLE
    assert all(v & (v - 1) == 0 and v < 2**16 for v in values)


@pytest.mark.parametrize("medium", [True, False])
def test_scl_every_value(medium):
    got = cc.decode(ALL_U8, "s2-scl", MaskConfig(scl_medium_as_cloud=medium))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, expected(truth.scl, range(256), medium_is_cloud=medium))


def test_scl_undefined_values_are_nodata_never_clear():
    flags = cc.decode(ALL_U8[12:], "s2-scl")
    assert (flags == Flag.NODATA).all()
    assert not cc.is_clear(flags).any()


def test_scl_undefined_values_raise_when_asked():
    with pytest.raises(cc.QAError, match=r"undefined QA values 12, 200"):
        cc.decode(np.array([4, 12, 200], np.uint8), "s2-scl", MaskConfig(on_undefined="raise"))


def test_scl_wider_and_signed_integers_outside_range_are_nodata():
    qa = np.array([-1, 0, 4, 9, 255, 256, 1000], dtype=np.int32)
    flags = cc.decode(qa, "s2-scl")
    np.testing.assert_array_equal(
        flags, [Flag.NODATA, Flag.NODATA, 0, Flag.CLOUD, Flag.NODATA, Flag.NODATA, Flag.NODATA]
    )


@pytest.mark.parametrize("name", sorted(truth.TRUTH))
def test_every_encoding_declares_its_fill_and_it_decodes_to_nodata_alone(name):
    encoding = get_encoding(name)
    assert encoding.fill == truth.FILL[name]
    fill = np.array([encoding.fill], dtype=encoding.native_dtype)
    decode_fn, _, _ = truth.TRUTH[name]
    assert decode_fn(encoding.fill) == truth.NODATA  # the oracle agrees it is no data
    strict = MaskConfig(on_undefined="raise")
    assert cc.decode(fill, name, strict)[0] == Flag.NODATA  # the reader's own fill never raises
    assert not cc.is_clear(cc.decode(fill, name))[0]


def test_registry_holds_exactly_the_encodings_with_a_truth_table():
    assert set(ENCODINGS) == set(truth.TRUTH)


@pytest.mark.parametrize("name", sorted(truth.TRUTH))
def test_defined_values_match_the_specification(name):
    _, defined_fn, n_values = truth.TRUTH[name]
    want = np.array([defined_fn(v) for v in range(n_values)])
    _, defined = get_encoding(name).tables(MaskConfig())
    np.testing.assert_array_equal(defined, want)
    # undefined values are NODATA alone, and raise when asked; defined ones never raise
    values = np.arange(n_values).astype(get_encoding(name).native_dtype)
    flags = cc.decode(values, name)
    assert (flags[~want] == Flag.NODATA).all()
    cc.decode(values[want], name, MaskConfig(on_undefined="raise"))
    if (~want).any():
        with pytest.raises(cc.QAError, match=rf"{name}: {int((~want).sum())} pixel\(s\)"):
            cc.decode(values, name, MaskConfig(on_undefined="raise"))


def test_qa60_bits_other_than_10_and_11_are_undefined():
    qa = np.array([0, 1024, 2048, 3072, 1, 1025, 0x1000, QA60_FILL], np.uint16)
    flags = cc.decode(qa, "s2-qa60")
    np.testing.assert_array_equal(
        flags,
        [0, Flag.CLOUD, Flag.CIRRUS, Flag.CLOUD | Flag.CIRRUS] + [Flag.NODATA] * 4,
    )
    with pytest.raises(cc.QAError, match=r"undefined QA values 1, 1025, 4096;"):
        cc.decode(qa, "s2-qa60", MaskConfig(on_undefined="raise"))


def test_qa_pixel_without_cloud_confidence_is_nodata_alone():
    # USGS sets bits 8-9 on every valid pixel: a non-fill value with confidence 00 (0 included)
    # is what a reader returns outside an untagged raster, never a clear pixel.
    without = [v for v in range(65536) if v % 2 == 0 and (v // 256) % 4 == 0]
    assert len(without) == 65536 // 8
    assert 0 in without
    flags = cc.decode(np.array(without, np.uint16), "landsat-qa-pixel")
    assert (flags == Flag.NODATA).all()
    nodata = cc.decode(ALL_U16, "landsat-qa-pixel", MaskConfig(confidence_tiers=(0, 1, 2, 3)))
    n_fill = 65536 // 2
    assert int((nodata == Flag.NODATA).sum()) == n_fill + len(without)
    assert (nodata[(nodata & Flag.NODATA) != 0] == Flag.NODATA).all()  # NODATA alone
    with pytest.raises(
        cc.QAError, match=r"landsat-qa-pixel: 1 pixel\(s\) hold undefined QA values 0;"
    ):
        cc.decode(
            np.array([1, 0, 21824], np.uint16), "landsat-qa-pixel", MaskConfig(on_undefined="raise")
        )


def test_qa60_every_value():
    np.testing.assert_array_equal(cc.decode(ALL_U16, "s2-qa60"), expected(truth.qa60, range(65536)))
    np.testing.assert_array_equal(decode_qa60_bits(ALL_U16), expected(truth.qa60, range(65536)))


@pytest.mark.parametrize("tiers", [(2, 3), (), (3,), (1, 2, 3), (0, 1, 2, 3)])
def test_qa_pixel_every_value(tiers):
    want = expected(truth.qa_pixel, range(65536), tiers=tiers)
    got = cc.decode(ALL_U16, "landsat-qa-pixel", MaskConfig(confidence_tiers=tiers))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(decode_qa_pixel_bits(ALL_U16, tiers), want)


def test_qa_pixel_known_usgs_values():
    # Values seen in real Landsat 8 QA_PIXEL rasters, decoded by hand from the USGS table.
    cases = {
        1: Flag.NODATA,  # fill
        0: Flag.NODATA,  # no cloud confidence: a reader's fill, not a USGS pixel
        0b0100_0000: Flag.NODATA,  # "clear" bit without a cloud confidence: no pixel either
        21824: Flag(0),  # clear, low confidence cloud/shadow/snow/cirrus
        21952: Flag.WATER,  # clear water
        22280: Flag.CLOUD,  # bit 3 cloud, high confidence
        55052: Flag.CLOUD | Flag.CIRRUS,  # cloud + cirrus, both high confidence (not clear!)
        23888: Flag.SHADOW,  # bit 4 shadow, high shadow confidence
        21762: Flag.DILATED,  # dilated cloud, low confidence
        30048: Flag.SNOW,  # snow, high snow confidence
        # dilated cloud with medium cloud confidence: a medium-tier cloud too
        0b0101_0110_0000_0010: Flag.DILATED | Flag.CLOUD,
    }
    got = cc.decode(np.array(list(cases), np.uint16), "landsat-qa-pixel")
    assert [Flag(int(v)) for v in got] == list(cases.values())
    usgs = cc.decode(
        np.array(list(cases), np.uint16), "landsat-qa-pixel", MaskConfig(confidence_tiers=())
    )
    assert Flag(int(usgs[-1])) == Flag.DILATED  # bit 3 alone: medium confidence is not cloud


def test_qa_pixel_wrong_layout_would_fail():
    # A decoder with cloud confidence in bits 3-4 and shadow in bit 5 (a wrong but common
    # description) calls 30048 (snow) shadow; ours must not.
    assert not cc.decode(np.array([30048], np.uint16), "landsat-qa-pixel")[0] & Flag.SHADOW


def test_qa_radsat_every_value():
    want = expected(truth.qa_radsat, range(65536))
    np.testing.assert_array_equal(cc.decode(ALL_U16, "landsat-qa-radsat"), want)
    np.testing.assert_array_equal(decode_qa_radsat_bits(ALL_U16), want)


def test_fmask_every_value():
    want = expected(truth.fmask, range(256))
    np.testing.assert_array_equal(cc.decode(ALL_U8, "hls-fmask"), want)
    np.testing.assert_array_equal(decode_fmask_bits(ALL_U8), want)


@pytest.mark.parametrize(
    ("encoding", "values"),
    [
        ("s2-scl", ALL_U8),
        ("hls-fmask", ALL_U8),
        ("s2-qa60", ALL_U16),
        ("landsat-qa-pixel", ALL_U16),
        ("landsat-qa-radsat", ALL_U16),
    ],
)
def test_dask_in_dask_out_lazy_and_equal(encoding, values):
    image = values.reshape(16, -1)
    lazy = da.from_array(image, chunks=(5, 7))
    flags = cc.decode(lazy, encoding)
    assert isinstance(flags, da.Array)
    assert flags.dtype == np.uint16
    assert flags.chunks == lazy.chunks
    np.testing.assert_array_equal(flags.compute(), cc.decode(image, encoding))
    clear = cc.is_clear(flags)
    assert isinstance(clear, da.Array)
    np.testing.assert_array_equal(clear.compute(), cc.is_clear(cc.decode(image, encoding)))


def test_xarray_keeps_coordinates():
    qa = xr.DataArray(
        np.array([[0, 4], [9, 10]], np.uint8),
        dims=("y", "x"),
        coords={"y": [1.0, 0.0], "x": [0, 1]},
    )
    flags = cc.decode(qa, "s2-scl")
    assert isinstance(flags, xr.DataArray)
    assert flags.dims == ("y", "x")
    assert flags.attrs["qa_encoding"] == "s2-scl"
    np.testing.assert_array_equal(flags["y"], qa["y"])
    np.testing.assert_array_equal(flags.values, [[Flag.NODATA, 0], [Flag.CLOUD, Flag.CIRRUS]])
    np.testing.assert_array_equal(cc.is_clear(flags).values, [[False, True], [False, False]])


def test_float_qa_is_refused_with_the_fix():
    with pytest.raises(cc.QAError, match=r"nearest resampling"):
        cc.decode(np.array([4.0, 9.0], np.float32), "s2-scl")
    with pytest.raises(cc.QAError, match=r"integer codes"):
        cc.decode(da.from_array(np.array([4.5], np.float64)), "landsat-qa-pixel")


def test_unknown_encoding_lists_the_valid_ones():
    with pytest.raises(cc.QAError, match=r"unknown QA encoding 'scl'.*s2-scl.*hls-fmask"):
        cc.decode(ALL_U8, "scl")
    assert cc.decode(ALL_U8, "S2_SCL")[9] == Flag.CLOUD  # case and separator tolerant


def test_is_clear_rules():
    cfg = MaskConfig()
    flags = np.array(
        [
            0,
            Flag.NODATA,
            Flag.CLOUD,
            Flag.SNOW,
            Flag.WATER,
            Flag.TERRAIN_SHADOW,
            Flag.DILATED,
            Flag.SATURATED,
            Flag.CIRRUS,
            Flag.SHADOW,
            Flag.NODATA | Flag.SNOW,
        ],
        dtype=np.uint16,
    )
    np.testing.assert_array_equal(
        cc.is_clear(flags, cfg),
        [True, False, False, True, True, True, False, False, False, False, False],
    )
    keep_cirrus = MaskConfig(masked_flags=("cloud", "shadow"))
    assert cc.is_clear(np.array([Flag.CIRRUS], np.uint16), keep_cirrus)[0]
    mask_snow = MaskConfig(masked_flags=[*cfg.masked_flags, "SNOW"])
    assert not cc.is_clear(np.array([Flag.SNOW], np.uint16), mask_snow)[0]


def test_qa60_uninformative_scene_check():
    zeros = np.zeros((4, 4), np.uint16)
    cloudy = zeros.copy()
    cloudy[1, 1] = 1 << 10
    assert cc.qa60_uninformative(zeros, "04.00")
    assert cc.qa60_uninformative(zeros, "N0509")
    assert cc.qa60_uninformative(zeros, None)  # unknown baseline: cautious
    assert not cc.qa60_uninformative(zeros, "02.14")
    assert not cc.qa60_uninformative(cloudy, "05.10")
    assert cc.qa60_uninformative(da.from_array(zeros, chunks=2), 4.0)
    # bits other than 10/11 carry no cloud information, and undefined values (the fill, a
    # cloud bit next to an unused one) are no data, not a cloud
    assert cc.qa60_uninformative(np.full((2, 2), 0x03FF, np.uint16), "04.00")
    assert cc.qa60_uninformative(np.full((2, 2), QA60_FILL, np.uint16), "04.00")
    assert cc.qa60_uninformative(np.array([0, 0x0401], np.uint16), "04.00")
    assert not cc.qa60_uninformative(np.array([QA60_FILL, 0x0800], np.uint16), "04.00")
    with pytest.raises(ValueError, match=r"not a Sentinel-2 processing baseline"):
        cc.qa60_uninformative(zeros, "baseline four")


@pytest.mark.parametrize(("encoding", "fn"), [("s2-scl", truth.scl), ("hls-fmask", truth.fmask)])
@pytest.mark.parametrize(
    ("shape", "view"),
    [((1,), None), ((3, 5), None), ((7, 2501), None), ((2, 2), None), ((9, 12), "odd-cols")],
)
def test_uint8_decoded_two_at_a_time_whatever_the_shape(encoding, fn, shape, view):
    # uint8 codes are looked up in pairs over the flattened array: odd widths, an odd last
    # pixel and non-contiguous views must decode exactly as one value at a time.
    rng = np.random.default_rng(sum(shape))
    qa = rng.integers(0, 256, size=shape, dtype=np.uint8)
    if view == "odd-cols":
        qa = qa[1:, ::3]
    table = expected(fn, range(256))
    np.testing.assert_array_equal(cc.decode(qa, encoding), table[qa])
