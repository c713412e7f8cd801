"""The exact placement reference: integer grids reduce to repeat; reprojection matches a
point-by-point pyproj transform."""

from __future__ import annotations

import numpy as np
from affine import Affine
from pyproj import Transformer

from clearcube.engines.placement import source_pixel_index


def test_same_crs_integer_ratio_is_repeat():
    src = Affine(20, 0, 399960, 0, -20, 5300040)
    dst = Affine(10, 0, 399960 + 40, 0, -10, 5300040 - 60)
    rows, cols = source_pixel_index("EPSG:32633", src, (50, 50), "EPSG:32633", dst, (6, 8))
    np.testing.assert_array_equal(rows[:, 0], [3, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(cols[0], [2, 2, 3, 3, 4, 4, 5, 5])


def test_outside_is_minus_one():
    src = Affine(20, 0, 0, 0, -20, 0)
    dst = Affine(20, 0, -40, 0, -20, 0)
    rows, cols = source_pixel_index("EPSG:32633", src, (2, 2), "EPSG:32633", dst, (3, 4))
    np.testing.assert_array_equal(cols[0], [-1, -1, 0, 1])
    assert (rows[2] == -1).all()


def test_reprojected_matches_point_by_point():
    # Source in UTM 22S, output in UTM 21S (a real S2 pair across the zone boundary).
    src = Affine(20, 0, 199980, 0, -20, 9700000)
    dst = Affine(30, 0, 900000, 0, -30, 9690000)
    rows, cols = source_pixel_index("EPSG:32722", src, (5490, 5490), "EPSG:32721", dst, (20, 25))
    to_src = Transformer.from_crs("EPSG:32721", "EPSG:32722", always_xy=True)
    for r in range(0, 20, 3):
        for c in range(0, 25, 4):
            x, y = 900000 + 30 * (c + 0.5), 9690000 - 30 * (r + 0.5)
            sx, sy = to_src.transform(x, y)
            want_c, want_r = int(np.floor((sx - 199980) / 20)), int(np.floor((9700000 - sy) / 20))
            inside = 0 <= want_r < 5490 and 0 <= want_c < 5490
            assert (rows[r, c], cols[r, c]) == ((want_r, want_c) if inside else (-1, -1))
    assert (rows >= 0).all()
