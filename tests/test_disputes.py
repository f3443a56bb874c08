"""Cross-boundary detection and joint tasks on the real 西城 (110102) / 丰台 (110106) line."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point, Polygon, box, mapping

from gridcore import disputes as D
from gridcore.crs import wgs84_to_bd09, wgs84_to_gcj02
from gridcore.errors import (
    CoordinateError,
    CRSError,
    GeometryError,
    GridcoreError,
    InvalidCodeError,
    OutsideCityError,
    PermissionDeniedError,
    TransitionError,
)

XC, FT = "110102", "110106"
# an independent path to metres (pyproj directly), so the tests do not lean on gridcore's
_FWD = Transformer.from_crs(4326, 4548, always_xy=True)
_INV = Transformer.from_crs(4548, 4326, always_xy=True)
_GEOD = Geod(ellps="WGS84")


def to_m(g):
    return shapely.transform(g, lambda xy: np.column_stack(_FWD.transform(xy[:, 0], xy[:, 1])))


def to_deg(g):
    return shapely.transform(g, lambda xy: np.column_stack(_INV.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def districts(city):
    d = city.divisions.districts
    return d[d["code"].isin([XC, FT])].reset_index(drop=True)


@pytest.fixture(scope="module")
def screener(districts):
    return D.DisputeScreener(districts, level="district")


@pytest.fixture(scope="module")
def border(districts):
    return border_frame(districts)


def border_frame(districts):
    """The longest straight segment of the shared border, in metres, and frame vectors.

    Returns (p0, p1, u, n) with u the unit vector along the segment and n the unit normal
    pointing into 西城.
    """
    xc = to_m(districts.set_index("code").geometry[XC])
    ft = to_m(districts.set_index("code").geometry[FT])
    # the two districts were converted from GCJ-02 apart: their shared vertices agree to
    # ~1e-8 m, not bit for bit, so the border is 西城's boundary within 1 cm of 丰台
    common = shapely.intersection(xc.boundary, ft.buffer(0.01))
    coords = [
        np.asarray(g.coords)
        for g in shapely.get_parts(shapely.line_merge(common))
        if g.geom_type == "LineString"
    ]
    segs = [(c[i], c[i + 1]) for c in coords for i in range(len(c) - 1)]
    p0, p1 = max(segs, key=lambda s: np.hypot(*(s[1] - s[0])))
    u = (p1 - p0) / np.hypot(*(p1 - p0))
    n = np.array([-u[1], u[0]])
    mid = (p0 + p1) / 2
    if not xc.contains(Point(mid + 5 * n)):
        n = -n
    assert xc.contains(Point(mid + 5 * n)) and ft.contains(Point(mid - 5 * n))
    return p0, p1, u, n


def rect(mid, u, n, *, along, into_xc, into_ft):
    """A rectangle in metres centred on ``mid`` of the border, as WGS84."""
    a, b = mid - u * along / 2, mid + u * along / 2
    ring = [a + n * into_xc, b + n * into_xc, b - n * into_ft, a - n * into_ft]
    return to_deg(Polygon(ring))


def test_the_real_line_is_about_8_9_km(screener):
    line = screener.shared_border([XC, FT])
    length = _GEOD.geometry_length(line)
    assert 8_500 < length < 9_300
    gj = mapping(line)
    assert gj["type"] in ("LineString", "MultiLineString")


def test_polygon_straddling_the_line_splits_by_area(screener, border):
    p0, p1, u, n = border
    assert np.hypot(*(p1 - p0)) > 40
    mid = (p0 + p1) / 2
    poly = rect(mid, u, n, along=30, into_xc=24, into_ft=8)
    s = screener.screen_one(poly, crs="wgs84")
    assert s.joint and set(s.codes) == {XC, FT}
    assert abs(sum(p.share for p in s.parties) - 1) < 1e-9
    # by construction: 24 m of the 32 m depth lie in 西城
    assert s.share_of(XC) == pytest.approx(24 / 32, abs=1e-6)
    assert s.share_of(FT) == pytest.approx(8 / 32, abs=1e-6)
    # and the measures are the areas of the two parts (geodesic, independent of EPSG:4548)
    xc_part = shapely.intersection(poly, screener.geoms_wgs84[list(screener.codes).index(XC)])
    assert s.parties[0].measure == pytest.approx(
        abs(_GEOD.geometry_area_perimeter(xc_part)[0]), rel=2e-3
    )
    assert s.measure_unit == "m2" and s.outside_share == pytest.approx(0, abs=1e-9)
    task = D.open_joint_task(
        s,
        event_class="0101",
        description="违建",
        opened_by="广外",
        at=datetime(2018, 1, 5, 9),
        receiving_code=XC,
    )
    assert set(task.party_codes) == {XC, FT}
    assert task.lead_code == XC and task.lead_rule is D.LeadRule.RECEIVING


def test_polygon_well_inside_one_district_is_not_joint(screener, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    poly = to_deg(Point(mid - 300 * n).buffer(40))
    s = screener.screen_one(poly, crs="wgs84")
    assert not s.joint and s.codes == (FT,) and s.parties[0].share == 1.0
    with pytest.raises(TransitionError, match="not a cross-boundary case"):
        D.open_joint_task(
            s, event_class="0101", description="x", opened_by="a", at=datetime(2018, 1, 1)
        )


def test_polygon_sharing_only_an_edge_with_the_line_is_not_joint(screener, border):
    p0, p1, u, n = border
    poly = rect((p0 + p1) / 2, u, n, along=20, into_xc=15, into_ft=0)
    s = screener.screen_one(poly, crs="wgs84")
    assert s.codes == (XC,)


def test_points_on_and_near_the_line(screener, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    on = screener.screen_one(to_deg(Point(mid)), crs="wgs84", accuracy_m=0)
    assert on.joint and on.share_of(XC) == pytest.approx(0.5, abs=1e-3)
    near = to_deg(Point(mid - 5 * n))  # 5 m into 丰台
    wide = screener.screen_one(near, crs="wgs84", accuracy_m=20)
    assert wide.joint and wide.codes[0] == FT
    r, d = 20.0, 5.0  # circular segment beyond the line, on the 西城 side
    segment = r * r * math.acos(d / r) - d * math.sqrt(r * r - d * d)
    assert wide.share_of(XC) == pytest.approx(segment / (math.pi * r * r), rel=1e-2)
    narrow = screener.screen_one(near, crs="wgs84", accuracy_m=2)
    assert not narrow.joint and narrow.codes == (FT,)


def test_points_in_other_crs_give_the_same_answer(screener, border):
    p0, p1, u, n = border
    lon, lat = to_deg(Point((p0 + p1) / 2 - 5 * n)).coords[0]
    base = screener.screen_one(Point(lon, lat), crs="wgs84", accuracy_m=20)
    for crs, fn in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        x, y = fn(np.array([lon]), np.array([lat]))
        other = screener.screen_one(
            {"type": "Point", "coordinates": [float(x[0]), float(y[0])]}, crs=crs, accuracy_m=20
        )
        assert other.codes == base.codes
        # the share moves ~0.03 per metre here: 5e-3 allows the ~10 cm of BD-09's published formula
        assert other.share_of(XC) == pytest.approx(base.share_of(XC), abs=5e-3)
    # the same numbers read as WGS84 land ~500 m away, wholly in one district
    x, y = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    assert not screener.screen_one(Point(x[0], y[0]), crs="wgs84", accuracy_m=20).joint


def test_line_exactly_along_the_border_is_shared_equally(screener, border):
    p0, p1, u, n = border
    s = screener.screen_one(to_deg(LineString([p0, p1])), crs="wgs84")
    assert s.joint and s.measure_unit == "m"
    assert s.share_of(XC) == pytest.approx(0.5, abs=1e-9)
    assert s.total_measure == pytest.approx(np.hypot(*(p1 - p0)), rel=1e-6)


def test_line_along_the_border_splits_by_length(screener, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    start = mid - 20 * u
    # 30 m along the line 3 m inside 西城, cross (6 m), 10 m along 3 m inside 丰台
    pts = [start + 3 * n, start + 30 * u + 3 * n, start + 30 * u - 3 * n, start + 40 * u - 3 * n]
    s = screener.screen_one(to_deg(LineString(pts)), crs="wgs84")
    assert s.joint
    assert s.share_of(XC) == pytest.approx(33 / 46, abs=1e-6)
    assert s.share_of(FT) == pytest.approx(13 / 46, abs=1e-6)
    assert s.total_measure == pytest.approx(46, rel=1e-6)


def _market(border, side=XC, *, frm=date(2018, 1, 1), to=None, oid="market"):
    p0, p1, u, n = border
    area = rect((p0 + p1) / 2, u, n, along=60, into_xc=40, into_ft=40)
    return D.Override(
        id=oid,
        geometry=area,
        level="district",
        assigned_code=side,
        valid_from=frm,
        valid_to=to,
        agreed_by=("广安门外街道", "太平桥街道"),
        name="农贸市场",
    )


def test_override_moves_the_whole_case_to_its_side(districts, border):
    p0, p1, u, n = border
    building = rect((p0 + p1) / 2, u, n, along=20, into_xc=8, into_ft=12)  # mostly 丰台
    sc = D.DisputeScreener(districts, overrides=[_market(border, XC)])
    s = sc.screen_one(building, crs="wgs84", on=date(2018, 3, 1))
    assert not s.joint and s.codes == (XC,)
    assert [o.id for o in s.overrides] == ["market"] and s.overrides[0].share == pytest.approx(1)
    assert s.overrides[0].agreed_by == ("广安门外街道", "太平桥街道")
    # before the agreement, the line decides
    before = sc.screen_one(building, crs="wgs84", on=date(2017, 12, 31))
    assert before.joint and before.overrides == () and before.codes[0] == FT


def test_override_takes_effect_at_the_citys_midnight(districts, border):
    from datetime import UTC

    from gridcore._time import FixedClock

    p0, p1, u, n = border
    building = rect((p0 + p1) / 2, u, n, along=20, into_xc=8, into_ft=12)  # mostly 丰台
    sc = D.DisputeScreener(districts, overrides=[_market(border, XC)])  # from 2018-01-01
    # 23:59 UTC on 31 Dec 2017 is 07:59 on 1 Jan 2018 in Beijing: the agreement holds
    clock = FixedClock(datetime(2017, 12, 31, 23, 59, tzinfo=UTC), tz="Asia/Shanghai")
    assert sc.screen_one(building, crs="wgs84", clock=clock).codes == (XC,)
    # 15:59 UTC is 23:59 on 31 Dec in Beijing: not yet
    clock.set(datetime(2017, 12, 31, 15, 59, tzinfo=UTC))
    assert sc.screen_one(building, crs="wgs84", clock=clock).joint
    # an aware instant given as `on` is read as the city's date too
    on = datetime(2017, 12, 31, 16, 0, tzinfo=UTC)
    assert sc.screen_one(building, crs="wgs84", on=on, clock=clock).codes == (XC,)


def test_joint_task_overdue_against_the_clock(straddling):
    from datetime import UTC

    from gridcore._time import FixedClock

    t0 = datetime(2018, 1, 5, 1, 0, tzinfo=UTC)
    t = D.open_joint_task(straddling, event_class="0101", description="两层违建",
                          opened_by="广外接诉", at=t0)
    for code in t.party_codes:
        t.check_in(code, actor="x", at=t0)
    deadline = datetime(2018, 1, 6, 18, 0, tzinfo=UTC)  # 02:00 on 7 Jan in Beijing
    t.agree(t.lead_code, division_of_labour={c: "拆" for c in t.party_codes},
            deadline=deadline, actor="x", at=t0)
    clock = FixedClock(datetime(2018, 1, 7, 1, 59), tz="Asia/Shanghai")  # city time
    assert not t.is_overdue(clock=clock)
    clock.advance(timedelta(minutes=2))
    assert t.is_overdue(clock=clock)
    assert not t.is_overdue(deadline, clock=clock)


def test_override_covering_part_of_a_case(districts, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    # the agreement covers only the 丰台 side in [mid-10u, mid+10u]; the building is 40 m long
    ring = [mid - 10 * u, mid + 10 * u, mid + 10 * u - 50 * n, mid - 10 * u - 50 * n]
    ov = D.Override(
        id="road",
        geometry=to_deg(Polygon(ring)),
        level="district",
        assigned_code=XC,
        valid_from=date(2018, 1, 1),
    )
    building = rect(mid, u, n, along=40, into_xc=10, into_ft=10)
    s = D.DisputeScreener(districts, overrides=[ov]).screen_one(
        building, crs="wgs84", on=date(2018, 2, 1)
    )
    # 西城 holds its half (400 m²) plus the agreed 200 m² of the 丰台 half
    assert s.share_of(XC) == pytest.approx(600 / 800, abs=1e-6)
    assert s.overrides[0].share == pytest.approx(200 / 800, abs=1e-6)


def test_newest_overlapping_override_wins(districts, border):
    old = _market(border, FT, frm=date(2017, 1, 1), oid="old")
    new = _market(border, XC, frm=date(2018, 1, 1), oid="new")
    p0, p1, u, n = border
    b = rect((p0 + p1) / 2, u, n, along=10, into_xc=5, into_ft=5)
    s = D.DisputeScreener(districts, overrides=[old, new]).screen_one(
        b, crs="wgs84", on=date(2018, 6, 1)
    )
    assert s.codes == (XC,) and [o.id for o in s.overrides] == ["new"]


def test_override_to_an_unknown_code_is_refused(districts, border):
    with pytest.raises(InvalidCodeError, match="110999"):
        D.DisputeScreener(districts, overrides=[_market(border, "110999")])


@pytest.mark.parametrize(
    ("geometry", "crs", "accuracy", "error", "match"),
    [
        (Polygon(), "wgs84", 0, GeometryError, "empty"),
        ({"type": "Point", "coordinates": []}, "wgs84", 0, GeometryError, "empty"),
        (
            {"type": "Polygon", "coordinates": [[116.35, 39.87]]},
            "wgs84",
            0,
            GeometryError,
            "nested 1 level too shallow",
        ),
        ("POINT (116.35 39.87)", "wgs84", 0, GeometryError, "GeoJSON mapping"),
        (
            Polygon([(116.35, 39.87), (116.36, 39.88), (116.36, 39.87), (116.35, 39.88)]),
            "wgs84",
            0,
            GeometryError,
            "crosses itself",
        ),
        (
            shapely.GeometryCollection([Point(116.35, 39.87)]),
            "wgs84",
            0,
            GeometryError,
            "Collection",
        ),
        (Point(116.37, 39.87), "epsg:3857", 0, CRSError, "wgs84"),
        (Point(449_000.0, 4_414_000.0), "wgs84", 0, CRSError, "projected metres"),
        (Point(116.37, 95.0), "wgs84", 0, CoordinateError, None),
        (Point(float("nan"), 39.87), "wgs84", 0, CoordinateError, "NaN"),
        (Point(39.87, 116.37), "wgs84", 0, CoordinateError, None),
        (Point(117.20, 39.10), "wgs84", 5, OutsideCityError, "outside"),
        (box(116.30, 39.80, 116.40, 39.90), "wgs84", 0, GeometryError, "limit"),
        (LineString([(116.30, 39.86), (116.45, 39.86)]), "wgs84", 0, GeometryError, "limit"),
        (Point(116.37, 39.87), "wgs84", -1, GeometryError, "accuracy"),
        (Point(116.37, 39.87), "wgs84", 5000, GeometryError, "limit"),
    ],
)
def test_bad_geometries_raise_clear_errors(screener, geometry, crs, accuracy, error, match):
    with pytest.raises(error, match=match) as info:
        screener.screen_one(geometry, crs=crs, accuracy_m=accuracy)
    assert isinstance(info.value, GridcoreError)


def test_limits_are_configurable(districts, border):
    p0, p1, u, n = border
    poly = rect((p0 + p1) / 2, u, n, along=30, into_xc=10, into_ft=10)
    small = D.DisputeScreener(districts, limits=D.ScreenLimits(max_area_m2=100))
    with pytest.raises(GeometryError, match="600 m² exceeds the limit of 100 m²"):
        small.screen_one(poly, crs="wgs84")


def test_unknown_level_lists_valid_values(districts):
    for bad in ("province", "cell"):
        with pytest.raises(InvalidCodeError, match="'district', 'street', 'community'"):
            D.DisputeScreener(districts, level=bad)


def test_many_at_once_equals_one_by_one(screener, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    geoms = [to_deg(Point(mid + k * n)) for k in (-30, -5, 0, 5, 30)]
    geoms.append(rect(mid, u, n, along=10, into_xc=3, into_ft=7))
    acc = [20, 20, 0, 2, 20, 0]
    batch = screener.screen(geoms, crs="wgs84", accuracy_m=acc)
    for g, a, s in zip(geoms, acc, batch, strict=True):
        one = screener.screen_one(g, crs="wgs84", accuracy_m=a)
        assert one.codes == s.codes and one.key == s.key
        assert [p.share for p in one.parties] == pytest.approx([p.share for p in s.parties])
    assert [s.joint for s in batch] == [False, True, True, False, False, True]


def test_street_level_inside_one_district():
    # two synthetic streets of one district and one of another, 9-digit codes
    streets = gpd.GeoDataFrame(
        {
            "code": ["110102020", "110102019", "110106002"],
            "name": ["广外", "白纸坊", "太平桥"],
            "parent_code": [XC, XC, FT],
        },
        geometry=[
            box(116.34, 39.87, 116.35, 39.88),
            box(116.35, 39.87, 116.36, 39.88),
            box(116.34, 39.86, 116.36, 39.87),
        ],
        crs=4326,
    )
    sc = D.DisputeScreener(streets, level="street")
    s = sc.screen_one(box(116.349, 39.875, 116.351, 39.876), crs="wgs84")
    assert s.level is D.Level.STREET and set(s.codes) == {"110102020", "110102019"}
    assert s.share_of("110102020") == pytest.approx(0.5, abs=1e-3)
    corner = sc.screen_one(Point(116.35, 39.87), crs="wgs84", accuracy_m=10)
    assert set(corner.codes) == {"110102020", "110102019", "110106002"}
    assert abs(sum(p.share for p in corner.parties) - 1) < 1e-9
    assert corner.territorial_code == "110102019"  # lowest code holding the corner point
    border = sc.shared_border(["110102020", "110102019"])
    assert border.length == pytest.approx(0.01, abs=1e-6)


# --------------------------------------------------------------------------- the joint task


T0 = datetime(2018, 1, 5, 9, 0)


@pytest.fixture
def straddling(screener, border):
    p0, p1, u, n = border
    return screener.screen_one(
        rect((p0 + p1) / 2, u, n, along=20, into_xc=9, into_ft=11), crs="wgs84"
    )


def _open(s, **kw):
    return D.open_joint_task(
        s, event_class="0101", description="两层违建", opened_by="广外接诉", at=T0, **kw
    )


def test_lead_rules(screener, border, straddling):
    t = _open(straddling)
    assert t.lead_code == FT and t.lead_rule is D.LeadRule.LARGEST_SHARE
    assert t.receiving_code is None
    t = _open(straddling, receiving_code=XC)
    assert t.lead_code == XC and t.lead_rule is D.LeadRule.RECEIVING
    assert t.party(FT).role is D.PartyRole.WHISTLED
    with pytest.raises(InvalidCodeError, match="not a party"):
        _open(straddling, receiving_code="110101")
    p0, p1, u, n = border
    tie = screener.screen_one(to_deg(LineString([p0, p1])), crs="wgs84")
    t = _open(tie)
    assert t.lead_rule is D.LeadRule.TERRITORIAL and t.lead_code == min(XC, FT)


def test_the_joint_task_runs_to_a_joint_closure(straddling):
    t = _open(straddling, receiving_code=XC)
    h = timedelta(hours=1)
    t.check_in(XC, actor="广外", at=T0 + h)
    t.check_in(FT, actor="太平桥", at=T0 + 2 * h)
    t.call_department(FT, "FT-CG", "丰台城管执法", actor="太平桥", at=T0 + 3 * h)
    t.department_report("FT-CG", actor="执法队", at=T0 + 4 * h)
    t.hold_meeting(
        XC,
        meeting_at=T0 + 24 * h,
        place="广外街道办",
        attendees=[XC, FT, "FT-CG"],
        actor="广外",
        at=T0 + 5 * h,
    )
    with pytest.raises(TransitionError, match="after the division of labour"):
        t.report(XC, text="x", actor="广外", at=T0 + 6 * h)
    with pytest.raises(PermissionDeniedError, match="only the lead"):
        t.agree(
            FT,
            division_of_labour={XC: "a", FT: "b"},
            deadline=T0 + 99 * h,
            actor="x",
            at=T0 + 6 * h,
        )
    with pytest.raises(TransitionError, match="missing"):
        t.agree(
            XC, division_of_labour={XC: "拆除西侧"}, deadline=T0 + 99 * h, actor="x", at=T0 + 6 * h
        )
    t.agree(
        XC,
        division_of_labour={XC: "拆除西城一侧", FT: "拆除丰台一侧, 清运"},
        deadline=datetime(2018, 5, 31),
        actor="广外",
        at=T0 + 6 * h,
    )
    assert t.status is D.TaskStatus.IN_PROGRESS and t.party(FT).part.startswith("拆除丰台")
    t.report(XC, text="西侧已拆", done=True, actor="广外", at=T0 + 7 * h)
    with pytest.raises(TransitionError, match="waiting for 110106"):
        t.close(XC, actor="广外", at=T0 + 8 * h)
    with pytest.raises(TransitionError, match="already reported"):
        t.report(XC, text="again", done=True, actor="广外", at=T0 + 8 * h)
    t.report(FT, text="进行中", actor="太平桥", at=T0 + 8 * h)
    t.report(FT, text="东侧已拆", done=True, actor="太平桥", at=T0 + 9 * h)
    with pytest.raises(PermissionDeniedError):
        t.close(FT, actor="太平桥", at=T0 + 10 * h)
    t.close(XC, actor="广外", at=T0 + 10 * h, note="联合拆除完毕")
    assert t.status is D.TaskStatus.CLOSED and t.closed_at == T0 + 10 * h
    actions = [s.action.value for s in t.history]
    assert actions == [
        "open",
        "check_in",
        "check_in",
        "call_department",
        "department_report",
        "meeting",
        "agree",
        "report",
        "report",
        "report",
        "close",
    ]
    assert all(s.actor for s in t.history)
    assert [s.at for s in t.history] == sorted(s.at for s in t.history)
    # nothing more on a closed task
    for act in (
        lambda: t.check_in(XC, actor="a", at=T0 + 11 * h),
        lambda: t.report(FT, text="x", actor="a", at=T0 + 11 * h),
        lambda: t.hold_meeting(XC, meeting_at=T0, place="p", actor="a", at=T0 + 11 * h),
        lambda: t.close(XC, actor="a", at=T0 + 11 * h),
    ):
        with pytest.raises(TransitionError, match="closed"):
            act()
    assert len(t.history) == 11


def test_illegal_check_ins(straddling):
    t = _open(straddling, receiving_code=XC)
    with pytest.raises(PermissionDeniedError, match="not a party"):
        t.check_in("110101", actor="东城", at=T0)
    t.check_in(XC, actor="广外", at=T0)
    with pytest.raises(TransitionError, match="already checked in"):
        t.check_in(XC, actor="广外", at=T0)
    with pytest.raises(TransitionError, match="every side must check in"):
        t.agree(
            XC,
            division_of_labour={XC: "a", FT: "b"},
            deadline=T0 + timedelta(days=1),
            actor="广外",
            at=T0,
        )
    with pytest.raises(PermissionDeniedError, match="not called"):
        t.department_report("X", actor="x", at=T0)
    with pytest.raises(TransitionError, match="precede"):
        t.check_in(FT, actor="太平桥", at=T0 - timedelta(days=1))
    assert [s.action for s in t.history] == [D.StepAction.OPEN, D.StepAction.CHECK_IN]


def test_opening_is_idempotent(screener, border, straddling):
    first, opened = D.open_or_join(
        straddling,
        existing=[],
        event_class="0101",
        description="a",
        opened_by="12345",
        at=T0,
        task_id="t1",
    )
    assert opened
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    # the same polygon, ring started elsewhere and reversed: same key
    poly = straddling.geometry
    coords = list(poly.exterior.coords)[:-1]
    again_geom = Polygon(list(reversed(coords[2:] + coords[:2])))
    again = screener.screen_one(again_geom, crs="wgs84")
    assert again.key == straddling.key
    task, opened = D.open_or_join(
        again,
        existing=[first],
        event_class="0101",
        description="again",
        opened_by="巡查",
        at=T0 + timedelta(hours=5),
    )
    assert task is first and not opened and first.history[-1].action is D.StepAction.JOIN
    # a slightly different drawing of the same building (~90 % overlap) joins too
    near = screener.screen_one(
        rect(mid + 1 * u, u, n, along=20, into_xc=9, into_ft=11), crs="wgs84"
    )
    assert near.key != straddling.key
    assert (
        D.open_or_join(
            near,
            existing=[first],
            event_class="0101",
            description="c",
            opened_by="x",
            at=T0 + timedelta(hours=6),
        )[1]
        is False
    )
    # another class, or outside the window, or after closure: a new task
    assert (
        D.open_or_join(
            near,
            existing=[first],
            event_class="0504",
            description="d",
            opened_by="x",
            at=T0 + timedelta(hours=7),
        )[1]
        is True
    )
    assert (
        D.open_or_join(
            near,
            existing=[first],
            event_class="0101",
            description="e",
            opened_by="x",
            at=T0 + timedelta(days=10),
        )[1]
        is True
    )
    assert (
        D.open_or_join(
            near,
            existing=[first],
            event_class="0101",
            description="e",
            opened_by="x",
            at=T0 + timedelta(days=10),
            window=timedelta(days=30),
        )[1]
        is False
    )
    far = screener.screen_one(
        rect(mid + 15 * u, u, n, along=20, into_xc=9, into_ft=11), crs="wgs84"
    )
    assert (
        D.open_or_join(
            far,
            existing=[first],
            event_class="0101",
            description="f",
            opened_by="x",
            at=T0 + timedelta(hours=8),
        )[1]
        is True
    )


def test_footprint_key_ignores_vertex_order():
    a = box(116.35, 39.87, 116.351, 39.871)
    b = Polygon(list(reversed(a.exterior.coords)))
    assert D.footprint_key(a) == D.footprint_key(b)
    assert D.footprint_key(a) != D.footprint_key(box(116.35, 39.87, 116.351, 39.8711))
    assert D.footprint_overlap(a, b) == pytest.approx(1.0)


def test_screening_to_dict_is_json_ready(straddling):
    import json

    d = json.loads(json.dumps(straddling.to_dict()))
    assert d["joint"] is True and {p["code"] for p in d["parties"]} == {XC, FT}
    assert sum(p["share"] for p in d["parties"]) == pytest.approx(1, abs=1e-9)


def test_a_road_override_is_a_corridor(districts, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    road = to_deg(LineString([mid - 100 * u, mid + 100 * u]))  # the road runs on the line
    ov = D.Override(
        id="road",
        geometry=road,
        level="district",
        assigned_code=FT,
        valid_from=date(2018, 1, 1),
        valid_to=date(2018, 12, 31),
        buffer_m=10,
    )
    sc = D.DisputeScreener(districts, overrides=[ov])
    pothole = to_deg(Point(mid + 3 * n))  # in 西城, on the road
    s = sc.screen_one(pothole, crs="wgs84", accuracy_m=5, on=date(2018, 6, 1))
    assert s.codes == (FT,) and s.overrides[0].id == "road"
    after = sc.screen_one(pothole, crs="wgs84", accuracy_m=5, on=date(2019, 1, 1))
    assert after.joint and after.codes[0] == XC and after.overrides == ()


def test_geojson_feature_input(screener, border):
    p0, p1, u, n = border
    poly = rect((p0 + p1) / 2, u, n, along=10, into_xc=5, into_ft=5)
    feature = {"type": "Feature", "properties": {}, "geometry": mapping(poly)}
    s = screener.screen_one(feature, crs="wgs84")
    assert s.joint and s.share_of(XC) == pytest.approx(0.5, abs=1e-6)


def test_part_outside_the_city_is_left_out_of_the_split(screener):
    # 西城's northern edge borders 海淀, which is not in the sample city
    xc = to_m(screener.geoms_wgs84[list(screener.codes).index(XC)])
    top = max(shapely.get_coordinates(xc), key=lambda c: c[1])
    probe = LineString([top - [0, 50], top + [0, 50]])  # ~half inside, half beyond the city
    s = screener.screen_one(to_deg(probe), crs="wgs84")
    inside = shapely.length(shapely.intersection(probe, xc))
    assert s.codes == (XC,) and s.parties[0].share == 1.0
    assert s.outside_share == pytest.approx(1 - inside / 100, abs=1e-5)  # 1 mm in 100 m
    assert 0 < s.outside_share < 1


def test_screen_a_frame_of_incidents(screener, border):
    p0, p1, u, n = border
    mid = (p0 + p1) / 2
    frame = gpd.GeoDataFrame(
        {"accuracy": [20.0, 2.0, 0.0, 5.0]},
        geometry=[to_deg(Point(mid - 5 * n)), to_deg(Point(mid - 5 * n)),
                  rect(mid, u, n, along=10, into_xc=6, into_ft=4), Point(117.2, 39.1)],
        crs=4326,
    )
    out = screener.screen_frame(frame, crs="wgs84", accuracy_column="accuracy")
    assert out["joint"].tolist() == [True, False, True, False]
    assert out["outside_city"].tolist() == [False, False, False, True]
    assert out.loc[2, "codes"] == f"{XC};{FT}" and out.loc[2, "shares"] == "0.600000;0.400000"
    assert out.loc[1, "codes"] == FT
    with pytest.raises(OutsideCityError):
        screener.screen(list(frame.geometry), crs="wgs84", accuracy_m=5)
    with pytest.raises(ValueError, match="'raise', 'none'"):
        screener.screen(list(frame.geometry), crs="wgs84", outside="skip")
    with pytest.raises(CRSError, match="EPSG:3857"):
        screener.screen_frame(frame.to_crs(3857), crs="wgs84")
