"""The cube store writes its chunk files itself: byte for byte what zarr writes, read back
right by zarr and xarray, empty chunks left out, edge chunks padded."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from odc.geo.geobox import GeoBox

from clearcube.products.zarr import CubeStore, open_cube

SHAPE = (3, 70, 90)  # edge chunks in y and x
CHUNKS = (1, 32, 40)


def _grid():
    return GeoBox.from_bbox((500000, 9600000, 500900, 9600700), "EPSG:32721", resolution=10)


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    refl = rng.normal(0.1, 0.03, SHAPE).astype(np.float32)
    refl[rng.random(SHAPE) < 0.4] = np.nan
    refl[1] = np.nan  # a whole time step without a value: no chunk file
    refl[2, :32, :40] = np.nan  # one empty chunk among written ones
    flags = rng.integers(0, 1 << 12, SHAPE).astype(np.uint16)
    flags[0, 32:64, :] = 0  # empty chunks of an integer array (fill 0)
    clear = rng.random(SHAPE) < 0.5
    clear[2] = False
    return {"red": refl, "flags": flags, "clear": clear}


def _dataarray(values: np.ndarray) -> xr.DataArray:
    g = _grid()
    return xr.DataArray(
        da.from_array(values, chunks=CHUNKS),
        dims=("time", "y", "x"),
        coords={"time": np.arange(SHAPE[0]), "y": g.coords["y"].values, "x": g.coords["x"].values},
    )


def _refuse(*args, **kwargs):
    raise AssertionError("written through zarr.Array.__setitem__")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    arrays = _arrays(7)
    store = CubeStore(tmp_path_factory.mktemp("cube") / "cube.zarr", _grid())
    writes = store.write_screen(_dataarray(arrays["flags"]), _dataarray(arrays["clear"]), None)
    writes += store.write_bands({"red": _dataarray(arrays["red"])})
    with pytest.MonkeyPatch.context() as mp:
        # the chunks must not go through zarr's own write path
        mp.setattr(zarr.Array, "__setitem__", _refuse)
        da.compute(*writes, scheduler="threads")
    return store, arrays


def test_arrays_read_back_exactly(written):
    store, arrays = written
    cube = open_cube(store.path)
    for name, values in arrays.items():
        np.testing.assert_array_equal(cube[name].values, values)
        np.testing.assert_array_equal(zarr.open_array(store.path / name, mode="r")[:], values)


def test_chunk_files_are_what_zarr_writes(written, tmp_path):
    store, arrays = written
    for name, values in arrays.items():
        ours = zarr.open_array(store.path / name, mode="r")
        ref = zarr.create_array(
            tmp_path / name,
            shape=ours.shape,
            chunks=ours.chunks,
            dtype=ours.dtype,
            fill_value=ours.fill_value,
            compressors=ours.compressors,
            zarr_format=3,
        )
        ref[:] = values
        mine = sorted(
            p.relative_to(store.path / name)
            for p in (store.path / name).rglob("c/**/*")
            if p.is_file()
        )
        theirs = sorted(
            p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("c/**/*") if p.is_file()
        )
        assert mine == theirs, name  # the same chunks written, the same left out
        assert mine, name
        for rel in mine:
            assert (store.path / name / rel).read_bytes() == (tmp_path / name / rel).read_bytes(), (
                rel
            )


def test_empty_chunks_are_not_written(written):
    store, _ = written
    red = store.path / "red" / "c"
    assert not (red / "1").exists()  # the all-NaN time step
    assert not (red / "2" / "0" / "0").exists()
    assert (red / "2" / "0" / "1").exists()
    assert not (store.path / "flags" / "c" / "0" / "1" / "0").exists()


def test_the_store_reads_its_own_chunk_files(written):
    store, arrays = written
    cube = store.open()
    for name, values in arrays.items():
        assert cube[name].data.name.startswith("clearcube-chunks-"), name
        np.testing.assert_array_equal(cube[name].values, values)
        np.testing.assert_array_equal(
            cube[name].isel(time=2, x=slice(5, 60)).values, values[2, :, 5:60]
        )
