"""The command line on bad input: one line on stderr, a documented exit code, no traceback.

Run as a user runs it: a subprocess on a private copy of the sample store.
"""

import csv
import io
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER7 = "id,lon,lat,cell_code,community_code,street_code,district_code"
POINT = "116.3756,39.911"  # inside the sample city (西城区)


def run(*args, db, cwd):
    env = dict(os.environ, GRIDCORE_DB=str(db), PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "gridcore.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def clean_error(out, *words):
    """The run failed with exit 2 and one readable line naming ``words``."""
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, (out.returncode, out.stderr)
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("gridcore: error: "), out.stderr
    for w in words:
        assert w in last, last
    return last


def fields(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_grid_csv_without_geometry_is_refused(env_db, tmp_path):
    (tmp_path / "grid.csv").write_text("code,x,y\n110102001019033,1,2\n")
    clean_error(run("grid", "validate", "grid.csv", db=env_db, cwd=tmp_path),
                "grid.csv", "no geometry", "GeoPackage")
    clean_error(run("grid", "import", "grid.csv", "--valid-from", "2026-07-01", db=env_db,
                    cwd=tmp_path), "grid.csv", "no geometry")


@pytest.mark.parametrize("cmd", [("grid", "validate"), ("disputes", "screen")])
def test_empty_geo_file_is_one_plain_line(env_db, tmp_path, cmd):
    (tmp_path / "empty.gpkg").write_bytes(b"")
    (tmp_path / "junk.geojson").write_text("not json at all")
    extra = ("--crs", "wgs84") if cmd[0] == "disputes" else ()
    last = clean_error(run(*cmd, "empty.gpkg", *extra, db=env_db, cwd=tmp_path),
                       "empty.gpkg", "is empty")
    assert "DRIVER" not in last and "not recognized" not in last
    last = clean_error(run(*cmd, "junk.geojson", *extra, db=env_db, cwd=tmp_path),
                       "junk.geojson", "GeoPackage")
    assert "DRIVER" not in last


def test_locate_needs_crs(env_db, tmp_path):
    (tmp_path / "in.csv").write_text(f"id,lon,lat\n1,{POINT}\n")
    last = clean_error(run("locate", "--input", "in.csv", "--output", "out.csv", db=env_db,
                           cwd=tmp_path), "--crs", "wgs84, gcj02, bd09")
    assert len(run("locate", "--help", db=env_db, cwd=tmp_path).stdout) > 0
    assert not (tmp_path / "out.csv").exists(), last


@pytest.mark.parametrize("quoted", [False, True])  # the byte path and the pandas path
@pytest.mark.parametrize("encoding, bom", [("gbk", b""), ("gb18030", b""),
                                           ("utf-8", b"\xef\xbb\xbf")])
def test_locate_reads_gbk_and_bom(env_db, tmp_path, quoted, encoding, bom):
    name = '"王五"' if quoted else "王五"
    text = f"id,name,lon,lat\n1,{name},{POINT}\n"
    (tmp_path / "in.csv").write_bytes(bom + text.encode(encoding))
    out = run("locate", "--input", "in.csv", "--output", "out.csv", "--crs", "wgs84",
              db=env_db, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = fields(tmp_path / "out.csv")  # the output is UTF-8
    assert rows[0][:4] == ["id", "name", "lon", "lat"]
    assert rows[1][1] == "王五" and rows[1][4].startswith("110102")


def test_locate_wrong_encoding_named(env_db, tmp_path):
    (tmp_path / "in.csv").write_bytes(f"id,name,lon,lat\n1,王五,{POINT}\n".encode("gbk"))
    out = run("locate", "--input", "in.csv", "--output", "out.csv", "--crs", "wgs84",
              "--encoding", "utf-8", db=env_db, cwd=tmp_path)
    clean_error(out, "in.csv", "utf-8", "--encoding")


@pytest.mark.parametrize("text, bad_line", [
    # byte path: one long and one short row, the comma total matching the header's
    (f"id,lon,lat\n1,{POINT},extra\n2,116.3756\n3,{POINT}\n", 2),
    # pandas path (quotes): the first row long, which pandas would take for an index
    (f'id,lon,lat\n"1",{POINT},extra\n2,{POINT}\n3,{POINT}\n', 2),
    # pandas path: a long row further down
    (f'id,lon,lat\n"1",{POINT}\n2,{POINT},extra\n3,{POINT}\n', 3),
])
def test_locate_rows_with_wrong_field_count(env_db, tmp_path, text, bad_line):
    (tmp_path / "in.csv").write_text(text)
    args = ("locate", "--input", "in.csv", "--output", "out.csv", "--crs", "wgs84")
    clean_error(run(*args, db=env_db, cwd=tmp_path), f"line {bad_line}", "fields",
                "--invalid-rows empty")
    assert not (tmp_path / "out.csv").exists()
    out = run(*args, "--invalid-rows", "empty", db=env_db, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = fields(tmp_path / "out.csv")
    assert ",".join(rows[0]) == HEADER7
    assert all(len(r) == 7 for r in rows), rows  # aligned: never 8 fields under 7 names
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]  # nothing shifted into the index
    assert rows[bad_line - 1][3:] == ["", "", "", ""]
    assert rows[3][3].startswith("110102")
    assert "wrong number of fields" in out.stderr


def test_bad_input_never_a_traceback(env_db, tmp_path):
    """Every command reading a file, on the awkward files a newcomer has."""
    (tmp_path / "gbk.csv").write_bytes('id,"名称",lon,lat\n1,"王五",1,2\n'.encode("gbk"))
    (tmp_path / "empty.gpkg").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    cases = [
        ("components", "import", "gbk.csv", "--crs", "wgs84"),
        ("components", "import", "empty.gpkg"),
        ("components", "import", "adir"),
        ("grid", "validate", "adir"),
        ("grid", "validate", "gbk.csv"),
        ("locate", "--input", "adir", "--output", "o.csv", "--crs", "wgs84"),
        ("locate", "--input", "gbk.csv", "--output", "nodir/o.csv", "--crs", "wgs84"),
        ("disputes", "screen", "gbk.csv", "--crs", "wgs84"),
        ("grid", "export", "nodir/cells.gpkg"),
        ("grid", "export", "cells.txt"),
    ]
    for args in cases:
        out = run(*args, db=env_db, cwd=tmp_path)
        assert "Traceback" not in out.stderr, (args, out.stderr)
        assert out.returncode == 2, (args, out.returncode, out.stderr)
        assert out.stderr.strip().splitlines()[-1].startswith("gridcore: error: "), args


def test_a_bug_is_an_internal_error_not_a_user_error(monkeypatch, capsys):
    from gridcore import cli

    def broken(args):
        return {}["missing"]  # a KeyError: our bug, not the user's input

    monkeypatch.setitem(cli._COMMANDS, "grid versions", broken)
    assert cli.main(["grid", "versions"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err  # the bug report keeps its traceback
    assert err.strip().splitlines()[-1].startswith("gridcore: internal error: KeyError")


def test_readme_locate_examples_name_the_crs():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    lines = [ln for ln in io.StringIO(readme) if ln.lstrip().startswith("gridcore locate ")]
    assert lines and all("--crs" in ln for ln in lines)


# ---- every command of `gridcore --help`, on bad input ---------------------------------

def _leaf_commands(parser, prefix=()):
    """Every runnable command of the parser ("grid validate", "serve", ...), read from it."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [" ".join(prefix)]
    return [name for action in subs for cmd, sub in action.choices.items()
            for name in _leaf_commands(sub, (*prefix, cmd))]


# command -> (arguments on bad input, the words the one error line must hold); all exit 2
# (the command could not run on this input), as the README documents
BAD_INPUT = {
    "build": (("--db", "junk.db", "build"), "file is not a database"),
    "grid validate": (("grid", "validate", "missing.gpkg"), "does not exist"),
    "grid import": (("grid", "import", "grid.csv", "--valid-from", "2026-07-01"),
                    "no geometry"),
    "grid export": (("grid", "export", "cells.txt"), "cannot tell the format of cells.txt"),
    "grid versions": (("--db", "adir", "grid", "versions"), "adir: it is a directory"),
    "divisions export": (("divisions", "export", "streets.txt", "--level", "street"),
                         "cannot tell the format of streets.txt"),
    "cell": (("cell", "--lon", "39.911", "--lat", "116.3756", "--crs", "wgs84"),
             "lon and lat look swapped (116.3756, 39.911 would be in the city)"),
    "locate": (("locate", "--input", "in.csv", "--output", "out.csv"), "--crs"),
    "components import": (("components", "import", "empty.gpkg"), "is empty"),
    "components export": (("components", "export", "c.csv", "--district", "12"),
                          "code '12' has 2 digits"),
    "disputes screen": (("disputes", "screen", "junk.geojson", "--crs", "wgs84"), "GeoPackage"),
    "heatmap pages": (("heatmap", "pages", "--out", "a_file"), "a_file"),
    "heatmap alerts": (("--db", "junk.db", "heatmap", "alerts"), "junk.db: file is not a"),
    "heatmap scan": (("heatmap", "scan", "--events", "missing.csv", "--crs", "wgs84",
                      "--start", "2018-04-01", "--end", "2018-04-08", "--output", "a.json"),
                     "No such file or directory: missing.csv"),
    "heatmap compare": (("heatmap", "compare", "--events", "missing.csv", "--crs", "wgs84",
                         "--cells", "110102001019033", "--change", "2018-04-10",
                         "--output", "r.json"), "No such file or directory: missing.csv"),
    "serve": (("serve", "--host", "no-such-host.invalid"), "is not an address or a known host"),
    "token create": (("token", "create", "--role", "admin", "--name", "x", "--expires", "5x"),
                     "'5x' is not a duration"),
    "token list": (("--db", "junk.db", "token", "list"), "cannot open the SQLite store"),
    "token revoke": (("token", "revoke", "nope"), "names no token"),
}


def test_every_command_has_a_bad_input_row():
    from gridcore.cli import _COMMANDS, build_parser

    commands = _leaf_commands(build_parser())
    assert len(commands) >= 19 and "grid validate" in commands
    assert sorted(commands) == sorted(BAD_INPUT), "give each new command a bad-input row"
    assert sorted(_COMMANDS) == sorted(commands)  # every command the parser offers runs


def test_every_command_on_bad_input_is_one_line_and_exit_2(env_db, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    (tmp_path / "adir").mkdir()
    (tmp_path / "grid.csv").write_text("code,x,y\n110102001019033,1,2\n")
    (tmp_path / "in.csv").write_text(f"id,lon,lat\n1,{POINT}\n")
    (tmp_path / "empty.gpkg").write_bytes(b"")
    (tmp_path / "junk.geojson").write_text("not json at all")
    (tmp_path / "a_file").write_text("a file where a directory should go")

    def check(item):
        name, (args, words) = item
        out = run(*args, db=env_db, cwd=tmp_path)
        assert "Traceback" not in out.stderr, (name, out.stderr)
        assert out.returncode == 2, (name, out.returncode, out.stderr)
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("gridcore")
                  and "error: " in ln]
        assert len(errors) == 1 and out.stderr.strip().splitlines()[-1] == errors[0], \
            (name, out.stderr)
        assert words in errors[0], (name, errors[0])

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(check, BAD_INPUT.items()))
    assert (tmp_path / "junk.db").read_bytes() == b"not a database at all"  # left as it was
