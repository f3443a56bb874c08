"""The command line, run as a user runs it: a subprocess on a real SQLite file."""

import json
import os
import subprocess
import sys

import geopandas as gpd
import pytest
import shapely


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, db):
    env = dict(os.environ, GRIDCORE_DB=str(db), PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "gridcore.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_cell_by_code_and_by_coordinate(env_db, city):
    code = city.cells.code.iloc[5000]
    out = run("cell", code, "--compact", db=env_db)
    assert out.returncode == 0, out.stderr
    cell = json.loads(out.stdout)
    assert cell["code"] == code
    assert cell["district"]["name"] in {"东城区", "西城区", "丰台区"}
    p = shapely.geometry.shape(cell["geometry"]).representative_point()
    from gridcore.crs import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(p.x, p.y)
    out = run("cell", "--lon", repr(float(glon)), "--lat", repr(float(glat)), "--crs", "gcj02",
              "--compact", db=env_db)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["code"] == code


@pytest.mark.parametrize(
    "args,message",
    [
        (("cell", "11010"), "5 digits"),
        (("cell", "110102001999999"), "no unit grid cell"),
        (("cell", "--lon", "39.911", "--lat", "116.3756", "--crs", "wgs84"), "swapped"),
        (("cell", "--lon", "nan", "--lat", "39.9", "--crs", "wgs84"), "not a finite"),
        (("cell", "--lon", "117.9", "--lat", "39.9", "--crs", "wgs84"), "no unit grid cell"),
        (("grid", "validate", "missing.gpkg"), "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(env_db, args, message):
    out = run(*args, db=env_db)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_exports_are_readable_by_other_tools(env_db, tmp_path, city):
    out = run("grid", "export", str(tmp_path / "cells.gpkg"), db=env_db)
    assert out.returncode == 0, out.stderr
    cells = gpd.read_file(tmp_path / "cells.gpkg")
    assert cells.crs.to_epsg() == 4326
    assert {"code", "community_code", "street_code", "district_code", "area_m2"} <= set(
        cells.columns)
    assert len(cells) == len(city.cells) and set(cells.code) == set(city.cells.code)
    for level, n in (("district", 3), ("street", 58), ("community", 872)):
        path = tmp_path / f"{level}.geojson"
        out = run("divisions", "export", str(path), "--level", level, db=env_db)
        assert out.returncode == 0, out.stderr
        frame = gpd.read_file(path)
        assert len(frame) == n and {"code", "name"} <= set(frame.columns)


def test_validate_and_import_a_users_grid(env_db, tmp_path, city, store_copy):
    xicheng = city.cells[city.cells.district_code == "110102"][["code", "geometry"]]
    good = tmp_path / "good.geojson"
    xicheng.to_file(good)
    out = run("grid", "validate", str(good), db=env_db)
    assert out.returncode == 0, out.stdout + out.stderr

    broken = xicheng.copy()
    broken.iloc[10, broken.columns.get_loc("code")] = broken.code.iloc[11]  # duplicate
    bad = tmp_path / "bad.gpkg"
    broken.drop(index=broken.index[50]).to_file(bad)  # and a gap
    out = run("grid", "validate", str(bad), db=env_db)
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert any(line.startswith(broken.code.iloc[11]) and "duplicate" in line for line in lines)
    assert any("gap" in line for line in lines)
    assert all(line.split(":")[0].isdigit() for line in lines)

    before = len(store_copy.grid_versions())
    out = run("grid", "import", str(bad), "--valid-from", "2026-07-01", db=env_db)
    assert out.returncode == 1 and "store is unchanged" in out.stderr
    assert len(store_copy.grid_versions()) == before

    wrong_crs = tmp_path / "wrong.gpkg"
    xicheng.to_crs(3857).to_file(wrong_crs)
    out = run("grid", "validate", str(wrong_crs), db=env_db)
    assert out.returncode == 1 and "EPSG:4326" in out.stdout

    out = run("grid", "import", str(good), "--valid-from", "2026-07-01", db=env_db)
    assert out.returncode == 0, out.stderr
    versions = store_copy.grid_versions()
    assert len(versions) == before + 1 and versions.n_cells.iloc[-1] == len(xicheng)
    out = run("cell", xicheng.code.iloc[0], "--compact", db=env_db)
    assert out.returncode == 0 and json.loads(out.stdout)["code"] == xicheng.code.iloc[0]


def test_build_on_an_empty_store(tmp_path):
    db = tmp_path / "fresh.db"
    out = run("build", db=db)
    assert out.returncode == 0, out.stderr
    assert "872 communities" in out.stdout
    assert "unit grid" in out.stderr  # the progress bar
    out = run("grid", "versions", db=db)
    assert out.returncode == 0 and "sample" in out.stdout
