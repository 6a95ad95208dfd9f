"""Geographic helpers and the grid spatial index."""

from __future__ import annotations

import numpy as np
import pytest

from metropilot.core.geo import (
    BBox,
    grid_cell,
    grid_cells,
    grid_cells_covering,
    grid_ranges,
    haversine_m,
    haversine_many_m,
)


def test_haversine_matches_known_distance() -> None:
    # The reference points of Dijon and Talant are about 3.2 km apart.
    assert haversine_m(5.0415, 47.3220, 5.0050, 47.3370) == pytest.approx(3185, rel=0.02)
    # One thousandth of a degree of latitude is ~111 m everywhere.
    assert haversine_m(5.04, 47.32, 5.04, 47.321) == pytest.approx(111.2, rel=0.001)


def test_vectorised_haversine_agrees_with_scalar() -> None:
    lons = np.array([5.0, 5.1, 4.95])
    lats = np.array([47.3, 47.35, 47.28])
    expected = [haversine_m(lon, lat, 5.04, 47.32) for lon, lat in zip(lons, lats, strict=True)]
    assert haversine_many_m(lons, lats, 5.04, 47.32) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "5,47,4,48", "nan,1,2,3", "0,0,0,100"])
def test_bbox_parse_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValueError, match=r"bbox|latitudes|longitudes|finite"):
        BBox.parse(text)


def test_bbox_around_contains_the_circle() -> None:
    box = BBox.around(5.04, 47.32, 1000)
    assert haversine_m(5.04, 47.32, 5.04, box.max_lat) == pytest.approx(1000, rel=1e-3)
    assert haversine_m(5.04, 47.32, box.max_lon, 47.32) == pytest.approx(1000, rel=1e-2)


def test_every_point_in_a_bbox_falls_in_one_of_its_grid_ranges() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        lon0, lat0 = rng.uniform(4.9, 5.2), rng.uniform(47.2, 47.4)
        box = BBox(lon0, lat0, lon0 + rng.uniform(0, 0.2), lat0 + rng.uniform(0, 0.2))
        ranges = grid_ranges(box)
        lons = rng.uniform(box.min_lon, box.max_lon, 50)
        lats = rng.uniform(box.min_lat, box.max_lat, 50)
        cells = grid_cells(lons, lats)
        assert all(any(lo <= cell <= hi for lo, hi in ranges) for cell in cells)
        assert [grid_cell(lon, lat) for lon, lat in zip(lons, lats, strict=True)] == cells.tolist()


def test_small_boxes_use_one_range_per_grid_row() -> None:
    box = BBox(5.03, 47.31, 5.04, 47.316)
    assert len(grid_ranges(box)) == 4


def test_listed_cells_agree_with_ranges() -> None:
    box = BBox(5.031, 47.315, 5.037, 47.3195)
    listed = grid_cells_covering(box)
    assert listed is not None
    assert sorted(listed) == [c for lo, hi in grid_ranges(box) for c in range(lo, hi + 1)]
    assert grid_cells_covering(BBox(4.9, 47.2, 5.2, 47.4)) is None  # the whole métropole: use ranges
