"""Reading GeoJSON from clients: what is right reads as shapely would, the rest in words."""

import pytest
from shapely.geometry import mapping, shape

from gridcore.errors import CoordinateError, GeometryError
from gridcore.geojson import geojson_to_geometry, polygon_problem

OUTER = [[116.35, 39.87], [116.36, 39.87], [116.36, 39.88], [116.35, 39.88], [116.35, 39.87]]
HOLE = [[116.352, 39.872], [116.354, 39.872], [116.354, 39.874], [116.352, 39.872]]
GOOD = [
    {"type": "Point", "coordinates": [116.3756, 39.911]},
    {"type": "Point", "coordinates": [116.3756, 39.911, 45.0]},  # a height is allowed
    {"type": "MultiPoint", "coordinates": [[116.35, 39.87], [116.36, 39.88]]},
    {"type": "LineString", "coordinates": OUTER[:2]},
    {"type": "MultiLineString", "coordinates": [OUTER[:2], OUTER[2:4]]},
    {"type": "Polygon", "coordinates": [OUTER, HOLE]},  # holed
    {"type": "MultiPolygon", "coordinates": [[OUTER], [[[116.37, 39.87], [116.38, 39.87],
                                                        [116.38, 39.88], [116.37, 39.87]]]]},
    {"type": "Point", "coordinates": []},  # empty: the caller decides
]


@pytest.mark.parametrize("obj", GOOD, ids=[g["type"] for g in GOOD])
def test_good_geojson_reads_as_shapely_reads_it(obj):
    got = geojson_to_geometry(obj)
    assert got.equals(shape(obj)) or (got.is_empty and shape(obj).is_empty)
    feature = {"type": "Feature", "properties": {}, "geometry": obj}
    assert geojson_to_geometry(feature).wkb == got.wkb


BAD = [
    ("not a mapping", [116.35, 39.87], GeometryError, "must be a GeoJSON object"),
    ("no type", {"coordinates": [116.35, 39.87]}, GeometryError, 'has no "type"'),
    ("unknown type", {"type": "Circle", "coordinates": [1, 2]}, GeometryError,
     "type 'Circle': a GeoJSON geometry type is one of Point"),
    ("collection", {"type": "GeometryCollection", "geometries": []}, GeometryError,
     "GeometryCollection is not accepted"),
    ("no coordinates", {"type": "Point"}, GeometryError, 'needs "coordinates"'),
    ("feature without geometry", {"type": "Feature", "geometry": None}, GeometryError,
     "Feature without a geometry"),
    ("too shallow", {"type": "Polygon", "coordinates": OUTER}, GeometryError,
     "nested 1 level too shallow (they read as a LineString or MultiPoint)"),
    ("too deep", {"type": "LineString", "coordinates": [OUTER]}, GeometryError,
     "nested 1 level too deep (they read as a Polygon or MultiLineString)"),
    ("mixed depth", {"type": "MultiPoint", "coordinates": [[116.35, 39.87], [[116.3, 39.8]]]},
     GeometryError, "coordinates[1] of a MultiPoint must be a position [lon, lat] but holds "
                    "lists"),
    ("four numbers", {"type": "Point", "coordinates": [1, 2, 3, 4]}, GeometryError,
     "coordinates has 4 numbers"),
    ("a boolean", {"type": "Point", "coordinates": [True, 39.9]}, GeometryError,
     "coordinates holds True"),
    ("open ring", {"type": "Polygon", "coordinates": [OUTER[:4]]}, GeometryError,
     "the outer ring of the Polygon is not closed"),
    ("short hole", {"type": "Polygon", "coordinates": [OUTER, HOLE[:2] + HOLE[:1]]},
     GeometryError, "the hole 1 of the Polygon has 3 positions; a ring needs at least 4"),
    ("short line in a multi", {"type": "MultiLineString", "coordinates": [OUTER[:2], OUTER[:1]]},
     GeometryError, "line 1 of the MultiLineString needs at least 2 positions, got 1"),
    ("bow tie", {"type": "Polygon", "coordinates": [[[116.35, 39.87], [116.36, 39.88],
                                                     [116.36, 39.87], [116.35, 39.88],
                                                     [116.35, 39.87]]]},
     GeometryError, "crosses itself or another of its rings near (116.355, 39.875)"),
    ("hole outside", {"type": "Polygon", "coordinates": [OUTER, [[116.4, 39.9], [116.41, 39.9],
                                                                 [116.41, 39.91], [116.4, 39.9]]]},
     GeometryError, "a hole lies outside the outer ring"),
    ("NaN", {"type": "Point", "coordinates": [float("nan"), 39.9]}, CoordinateError,
     "coordinates: lon is NaN: coordinates must be finite numbers"),
    ("swapped", {"type": "MultiPoint", "coordinates": [[116.35, 39.87], [39.87, 116.35]]},
     CoordinateError, "coordinates[1]: lat 116.35 is outside -90..90; lon and lat look swapped"),
    ("outside China", {"type": "Polygon", "coordinates": [[[2.35, 48.85], [2.36, 48.85],
                                                           [2.36, 48.86], [2.35, 48.85]]]},
     CoordinateError, "coordinates[0][0]: lon 2.35, lat 48.85 lies outside China"),
]


@pytest.mark.parametrize(("obj", "error", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_geojson_is_named_in_words(obj, error, words):
    with pytest.raises(error) as got:
        geojson_to_geometry(obj, what="incident 3")
    message = str(got.value)
    assert message.startswith("incident 3"), message
    assert words in message, message
    for internal in ("gufunc", "signature", "IllegalArgument", "linearring", "np.", "object is"):
        assert internal not in message, message


def test_checks_can_be_left_to_the_caller():
    bow = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    assert not geojson_to_geometry(bow, check_valid=False, lonlat=False).is_valid


def test_polygon_problem_says_the_place_in_degrees():
    bow = shape({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]})
    said = polygon_problem(bow, to_lonlat=lambda x, y: (116 + x / 10, 39 + y / 10))
    assert "near (116.1, 39.1)" in said
    assert polygon_problem(shape(mapping(bow.buffer(0)))) is None
