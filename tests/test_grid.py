import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore.codes import is_valid_cell_code
from gridcore.crs import project_geometry
from gridcore.errors import CRSError, DataFileError
from gridcore.grid import (
    GridVersion,
    generate_grid,
    point_to_cell,
    read_grid_file,
    validate_grid,
    write_features,
)


@pytest.fixture(scope="module")
def projected(city):
    cells = city.cells
    return np.asarray(project_geometry(np.asarray(cells.geometry.values)))


def test_cells_cover_each_district(city, projected):
    for code, geom in zip(city.divisions.districts.code, city.divisions.districts.geometry):
        district = project_geometry(geom)
        own = projected[(city.cells.district_code == code).to_numpy()]
        covered = shapely.intersection(shapely.union_all(own), district).area
        assert covered / district.area >= 0.9999, code


def test_cells_do_not_overlap(projected):
    tree = shapely.STRtree(projected)
    a, b = tree.query(projected, predicate="intersects")
    a, b = a[a < b], b[a < b]
    total = shapely.area(shapely.intersection(projected[a], projected[b])).sum()
    assert len(a) > len(projected)  # neighbours do touch: the check is not vacuous
    assert total < 1.0


def test_no_cell_crosses_a_community_line(city, projected):
    comm = city.divisions.communities.set_index("code").geometry
    home = project_geometry(np.asarray(comm.loc[city.cells.community_code].values))
    outside = shapely.area(shapely.difference(projected, home))
    assert outside.max() < 0.01


def test_codes_are_valid_unique_and_nested(city):
    cells = city.cells
    assert cells.code.map(is_valid_cell_code).all()
    assert cells.code.is_unique
    assert (cells.code.str.len() == 15).all()
    assert (cells.code.str[:12] == cells.community_code).all()
    assert (cells.code.str[:9] == cells.street_code).all()
    assert (cells.code.str[:6] == cells.district_code).all()
    communities = city.divisions.communities
    parent = dict(zip(communities.code, communities.parent_code))
    assert (cells.community_code.map(parent) == cells.street_code).all()


def test_cell_areas(city, projected):
    area = shapely.area(projected)
    assert 8_000 <= np.median(area) <= 12_000
    assert np.allclose(area, city.cells.area_m2, rtol=1e-9)
    assert 35_000 < len(city.cells) < 50_000  # ~400 km² of 1 ha cells


def test_numbering_runs_west_to_east_then_north_to_south(city, projected):
    full = np.isclose(shapely.area(projected), 10_000, atol=1e-3)
    cx = shapely.get_x(shapely.centroid(projected[full]))
    cy = shapely.get_y(shapely.centroid(projected[full]))
    frame = pd.DataFrame({
        "community": city.cells.community_code[full].to_numpy(),
        "seq": city.cells.code[full].str[12:].astype(int).to_numpy(),
        "row": -np.floor(cy / 100).astype(int),
        "col": np.floor(cx / 100).astype(int),
    })
    checked = 0
    for _, g in frame.groupby("community"):
        by_seq = g.sort_values("seq")
        key = list(zip(by_seq.row, by_seq.col))
        assert key == sorted(key)
        checked += len(g)
    assert checked > 20_000


def test_point_to_cell_and_edge_rule(city, projected):
    cells = city.cells
    i = 1000
    poly = cells.geometry.iloc[i]
    inner = poly.representative_point()
    assert point_to_cell(cells, [inner.x], [inner.y])[0] == i
    # a vertex shared by several cells goes to the smallest code among them
    vx, vy = shapely.get_coordinates(poly)[0]
    covering = np.flatnonzero(shapely.covers(np.asarray(cells.geometry.values),
                                             shapely.Point(vx, vy)))
    assert len(covering) >= 2
    assert point_to_cell(cells, [vx], [vy])[0] == covering.min()
    assert point_to_cell(cells, [117.5], [39.9])[0] == -1


# ----------------------------------------------------------------- regeneration keeps codes

def _move_boundary(communities, a_code, b_code):
    """Give the part of community A within 150 m of B to B (a boundary change)."""
    comm = communities.copy()
    ga = project_geometry(comm.loc[comm.code == a_code, "geometry"].item())
    gb = project_geometry(comm.loc[comm.code == b_code, "geometry"].item())
    strip = ga.intersection(gb.buffer(150))
    new_a = project_geometry(ga.difference(strip), inverse=True)
    new_b = project_geometry(gb.union(strip), inverse=True)
    comm.loc[comm.code == a_code, "geometry"] = new_a
    comm.loc[comm.code == b_code, "geometry"] = new_b
    return comm


def test_regeneration_keeps_codes_of_unchanged_cells(city, store_copy):
    comm = city.divisions.communities
    street = comm[comm.parent_code == "110102020"]  # 广安门外街道
    a, b = street.code.iloc[0], None
    ga = street.geometry.iloc[0]
    for code, geom in zip(street.code.iloc[1:], street.geometry.iloc[1:]):
        if ga.intersection(geom).length > 0:
            b = code
            break
    assert b is not None
    old = city.cells[city.cells.street_code == "110102020"].reset_index(drop=True)
    changed = _move_boundary(street, a, b)
    new = generate_grid(changed, previous=old)

    assert new.code.is_unique
    old_key = dict(zip(old.code, old.geometry))
    same_shape = np.array([
        c in old_key and old_key[c].equals_exact(g, 1e-9)
        for c, g in zip(new.code, new.geometry)
    ])
    untouched = ~new.community_code.isin([a, b])
    # every cell in the untouched communities kept code and shape
    assert same_shape[untouched.to_numpy()].all()
    assert set(new.code[untouched]) == set(old.code[~old.community_code.isin([a, b])])
    # in the changed communities, cells away from the change kept theirs, new ones are new
    touched = ~untouched.to_numpy()
    assert same_shape[touched].any() and not same_shape[touched].all()
    max_old = old.groupby("community_code").code.max().str[12:].astype(int)
    fresh = new[touched & ~same_shape]
    assert (fresh.code.str[12:].astype(int).to_numpy()
            > max_old.loc[fresh.community_code].to_numpy()).all()
    # a retired code is never given to a different shape
    retired = set(old.code) - set(new.code)
    assert retired and not (retired & set(fresh.code))

    # versions: the new grid is current from its valid-from date, the old one before it
    from datetime import date

    merged = pd.concat([city.cells[city.cells.street_code != "110102020"], new])
    merged = gpd.GeoDataFrame(merged, crs=4326).sort_values("code", ignore_index=True)
    vid = store_copy.add_grid_version(GridVersion(date(2026, 7, 1), merged, "test"))
    assert store_copy.current_version(on=date(2026, 8, 1)) == vid
    assert store_copy.current_version(on=date(2026, 6, 30)) != vid
    assert len(store_copy.load_grid(on=date(2026, 8, 1))) == len(merged)


# ----------------------------------------------------------------- validator and user files

@pytest.fixture(scope="module")
def xicheng(city):
    cells = city.cells[city.cells.district_code == "110102"].reset_index(drop=True)
    return cells[["code", "geometry"]]


def _validate(frame, city):
    d = city.divisions
    return validate_grid(frame, communities=d.communities,
                         districts=d.districts[d.districts.code == "110102"])


def test_clean_grid_validates(xicheng, city):
    report = _validate(xicheng, city)
    assert report.ok, report.problems[:5]
    assert report.coverage["110102"] > 0.9999
    assert 8_000 < report.area_stats["median"] < 12_000


def test_broken_grid_reports_each_problem_by_cell(xicheng, city):
    broken = xicheng.copy()
    gap_code = broken.code.iloc[100]
    overlap_code = broken.code.iloc[200]
    dup_code = broken.code.iloc[300]
    bow_code = broken.code.iloc[400]
    broken = broken[broken.code != gap_code].copy()
    i = broken.index[broken.code == overlap_code][0]
    broken.loc[i, "geometry"] = shapely.affinity.translate(broken.loc[i, "geometry"], 0.0003, 0)
    j = broken.index[broken.code == broken.code.iloc[301]][0]
    broken.loc[j, "code"] = dup_code
    k = broken.index[broken.code == bow_code][0]
    x0, y0, x1, y1 = broken.loc[k, "geometry"].bounds
    broken.loc[k, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    report = _validate(broken, city)
    kinds = {(p.kind, p.cell_code) for p in report.problems}
    assert ("duplicate", dup_code) in kinds
    assert ("geometry", bow_code) in kinds
    overlaps = [p for p in report.problems if p.kind == "overlap"]
    assert overlaps and all(overlap_code in p.cell_code + p.message for p in overlaps)
    gaps = [p for p in report.problems if p.kind == "gap"]
    removed = xicheng.loc[xicheng.code == gap_code].to_crs(4548).area.item()
    assert any(abs(float(p.message.split()[2]) - removed) < 1 for p in gaps)
    assert gaps and all(is_valid_cell_code(p.cell_code) for p in gaps)
    assert all(p.cell_code for p in report.problems)


def test_wrong_crs_is_rejected(xicheng, city):
    report = _validate(xicheng.to_crs(3857), city)
    assert [p.kind for p in report.problems] == ["crs"]
    assert "EPSG:4326" in report.problems[0].message
    with pytest.raises(CRSError):
        generate_grid(city.divisions.communities.to_crs(4548))
    # projected coordinates labelled as WGS84: every cell is named
    mislabelled = xicheng.to_crs(4548).set_crs(4326, allow_override=True)
    report = _validate(mislabelled.head(3), city)
    assert {p.cell_code for p in report.problems if p.kind == "crs"} == set(xicheng.code[:3])


@pytest.mark.parametrize("ext", ["gpkg", "geojson", "shp"])
def test_grid_files_round_trip(xicheng, tmp_path, ext):
    path = tmp_path / f"grid.{ext}"
    if ext == "shp":
        xicheng.head(50).to_file(path)
    else:
        write_features(xicheng.head(50), path)
    back = read_grid_file(path)
    assert list(back.code) == list(xicheng.code[:50])
    expected = xicheng.geometry[:50].normalize()
    assert back.geometry.normalize().geom_equals_exact(expected, 1e-9).all()


def test_unreadable_grid_files(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        read_grid_file(tmp_path / "missing.gpkg")
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(DataFileError):
        read_grid_file(empty)
    nocode = tmp_path / "nocode.geojson"
    gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.box(116.3, 39.9, 116.31, 39.91)],
                     crs=4326).to_file(nocode)
    with pytest.raises(DataFileError, match="no 'code' column"):
        read_grid_file(nocode)
    with pytest.raises(DataFileError, match=".gpkg"):
        write_features(gpd.GeoDataFrame(geometry=[], crs=4326), tmp_path / "x.csv")


def test_cell_crossing_a_community_line_is_named(xicheng, city):
    cells = xicheng.copy()
    comm = cells.code.str[:12]
    tree = shapely.STRtree(np.asarray(cells.geometry.values))
    for i, geom in enumerate(cells.geometry):
        nbrs = tree.query(geom, predicate="touches")
        other = [j for j in nbrs if comm.iloc[j] != comm.iloc[i]]
        if other:
            break
    grown = shapely.union_all([geom, cells.geometry.iloc[other[0]]])
    cells.loc[cells.index[i], "geometry"] = grown
    report = _validate(cells, city)
    assert any(p.kind == "crossing" and p.cell_code == cells.code.iloc[i]
               for p in report.problems)
