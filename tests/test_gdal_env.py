"""Open datasets are reused per thread, and never outlive a change of the file they read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from clearcube.gdal_env import MAX_OPEN_DATASETS, forget_open_datasets, open_dataset, rio_env


def write(path: Path, value: int) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 20, 20),
    ) as dst:
        dst.write(np.full((8, 8), value, np.uint8), 1)


def test_handles_reused_per_thread_and_reopened_when_the_file_changes(tmp_path):
    path = tmp_path / "qa.tif"
    write(path, 3)
    with rio_env():
        first = open_dataset(str(path))
        assert open_dataset(str(path)) is first
        assert int(first.read(1)[0, 0]) == 3

        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(open_dataset(str(path))))
        thread.start()
        thread.join()
        assert other[0] is not first  # a dataset is never shared between threads

        write(path, 7)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        changed = open_dataset(str(path))
        assert changed is not first
        assert int(changed.read(1)[0, 0]) == 7

        forget_open_datasets()
        assert open_dataset(str(path)) is not changed
        assert changed.closed


def test_few_handles_stay_open_per_thread_least_recently_used_closed_first(tmp_path):
    paths = [tmp_path / f"qa{k}.tif" for k in range(MAX_OPEN_DATASETS + 1)]
    for k, path in enumerate(paths):
        write(path, k)
    forget_open_datasets()
    with rio_env():
        handles = [open_dataset(str(p)) for p in paths]
        assert handles[0].closed  # an open handle keeps its decoded blocks in GDAL's cache
        assert not any(h.closed for h in handles[1:])
        assert open_dataset(str(paths[-1])) is handles[-1]
