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
        (("cell", "--lon", "nan", "--lat", "39.9", "--crs", "wgs84"), "finite numbers"),
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


def test_bulk_locate_csv_and_its_errors(env_db, tmp_path, city):
    import numpy as np
    import pandas as pd

    from gridcore.grid import point_to_cell

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"id": range(2000), "lon": rng.uniform(116.1, 116.5, 2000),
                          "lat": rng.uniform(39.78, 39.97, 2000)})
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(src, index=False)
    out = run("locate", "--input", str(src), "--output", str(dst), "--crs", "wgs84",
              db=env_db)
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(dst, dtype=str, keep_default_na=False)
    pos = point_to_cell(city.cells, frame.lon, frame.lat)
    want = np.where(pos >= 0, city.cells.code.to_numpy()[pos], "")
    assert (got.cell_code.to_numpy() == want).all()
    assert (got.id == frame.id.astype(str)).all()
    assert 0 < (want == "").sum() < len(want)  # both inside and outside rows

    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat\n116.4,39.9\n39.9,116.4\n")
    out = run("locate", "--input", str(bad), "--output", str(tmp_path / "x.csv"),
              "--crs", "wgs84", db=env_db)
    assert out.returncode != 0 and "swapped" in out.stderr
    assert not (tmp_path / "x.csv").exists()


def test_disputes_screen_file(env_db, tmp_path):
    import geopandas as gpd
    import pandas as pd

    incidents = gpd.GeoDataFrame(
        {"acc": [20.0, 2.0]},
        geometry=[shapely.box(116.32, 39.872, 116.33, 39.877),  # across 西城/丰台
                  shapely.Point(116.40, 39.93)],  # inside 东城
        crs=4326)
    path = tmp_path / "incidents.geojson"
    incidents.to_file(path)
    out = run("disputes", "screen", str(path), "--crs", "wgs84", "--accuracy-column", "acc",
              db=env_db)
    assert out.returncode == 0, out.stderr
    from io import StringIO

    table = pd.read_csv(StringIO(out.stdout), dtype=str)
    assert table.joint.tolist() == ["True", "False"]
    assert table.codes[0] == "110102;110106" or table.codes[0] == "110106;110102"
    shares = [float(v) for v in table.shares[0].split(";")]
    assert abs(sum(shares) - 1) < 1e-6


def test_heatmap_alerts_and_pages(env_db, tmp_path):
    out = run("heatmap", "alerts", db=env_db)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines and all("110102001" in line for line in lines)  # 西长安街 cells only
    assert lines[0].startswith("2018-04-0")
    out = run("heatmap", "pages", "--out", str(tmp_path / "maps"), "--basemap", "gaode",
              db=env_db)
    assert out.returncode == 0, out.stderr
    for name in ("heat.html", "rhythm.html", "hotspots.html"):
        html = (tmp_path / "maps" / name).read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in html and "L.map" in html


def test_token_create_refuses_to_start_a_store_unless_told(tmp_path):
    missing = tmp_path / "elsewhere" / "gridcore.db"
    missing.parent.mkdir()
    out = run("token", "create", "--role", "admin", "--name", "管理员", db=missing)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert "no store at" in out.stderr and "--init" in out.stderr
    assert not missing.exists()  # nothing was created
    out = run("token", "list", db=missing)
    assert out.returncode == 2 and not missing.exists()
    out = run("token", "create", "--role", "admin", "--name", "管理员", "--init", db=missing)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("gc_")
    assert str(missing) in out.stderr
    # the store now exists but holds no grid: still refused without --init
    out = run("token", "create", "--role", "admin", "--name", "又一个", db=missing)
    assert out.returncode == 2 and "holds no grid" in out.stderr


def test_token_create_list_revoke_round_trip(env_db):
    out = run("token", "create", "--role", "supervisor", "--name", "王五", "--expires", "30d",
              db=env_db)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("gc_") and str(env_db) in out.stderr
    out = run("token", "list", db=env_db)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.strip().splitlines()
    assert header.split() == ["id", "role", "name", "subject", "created", "expires", "last",
                              "used", "revoked"]
    from gridcore.auth import hash_token

    (row,) = [r for r in rows if "王五" in r]
    assert row.split()[0] == hash_token(token)[:12]
    assert token not in out.stdout and hash_token(token) not in out.stdout
    assert "Asia/Shanghai" in out.stderr
    token_id = row.split()[0]
    out = run("token", "revoke", token_id, db=env_db)
    assert out.returncode == 0, out.stderr
    out = run("token", "list", db=env_db)
    (row,) = [r for r in out.stdout.splitlines() if "王五" in r]
    assert not row.rstrip().endswith("-")  # revoked: a time in the last column
    out = run("token", "revoke", token_id, db=env_db)
    assert out.returncode == 2 and "revoked already" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run("token", "revoke", "nosuchid", db=env_db)
    assert out.returncode == 2 and "names no token" in out.stderr


@pytest.mark.parametrize("bad", ["30", "30s", "-1d", "forever"])
def test_token_create_bad_expires_is_one_line(env_db, bad):
    out = run("token", "create", "--role", "admin", "--name", "x", f"--expires={bad}",
              db=env_db)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"gridcore: error: {bad!r} is not a duration; write a whole number of days, hours or "
        f"minutes, e.g. 30d, 12h, 90m"]
