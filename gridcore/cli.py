"""The ``gridcore`` command line.

Every command works on the store named by ``$GRIDCORE_DB`` (default ``./gridcore.db``),
building the sample city first when a command needs a city and the store is empty.
Errors print one line per problem on stderr and exit non-zero; nothing half-done is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date

from .auth import Role
from .errors import GridcoreError

EXIT_PROBLEMS = 1  # the input was read and has problems (e.g. an invalid grid)
EXIT_ERROR = 2  # the command could not run (bad arguments, unreadable file...)
EXIT_INTERNAL = 3  # a bug in gridcore: the traceback is printed for the bug report
CRS_CHOICES = ("wgs84", "gcj02", "bd09")

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _command(name: str):
    def register(fn):
        _COMMANDS[name] = fn
        return fn

    return register


def _store(args: argparse.Namespace):
    from .store import open_store

    return open_store(args.db or None)


def _city(args: argparse.Namespace, store=None):
    """Return the city in the store (building the sample city into an empty one)."""
    from .sample import load_sample_city

    return load_sample_city(store if store is not None else _store(args), progress=True)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-07-01") from None


@_command("build")
def _build(args: argparse.Namespace) -> int:
    from .sample import build_sample_city

    store = _store(args)
    if not store.is_empty() and not args.force:
        print(f"{store.path} already holds a city (use --force to add a fresh sample grid)",
              file=sys.stderr)
        return 0
    city = build_sample_city(store, progress=True)
    d = city.divisions
    print(f"sample city in {store.path}: {len(d.districts)} districts, {len(d.streets)} "
          f"streets, {len(d.communities)} communities, {len(city.cells)} cells "
          f"(grid version {city.grid_version})")
    return 0


@_command("grid validate")
def _grid_validate(args: argparse.Namespace) -> int:
    from .grid import read_grid_file, validate_grid

    frame = read_grid_file(args.file, layer=args.layer)
    if args.standalone:
        report = validate_grid(frame)
    else:
        city = _city(args)
        report = validate_grid(frame, communities=city.divisions.communities,
                               districts=_districts_for(frame, city.divisions.districts))
    for p in report.problems:
        print(p)
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else EXIT_PROBLEMS


def _districts_for(frame, districts):
    """Return the districts a user's grid claims to cover: those its codes name."""
    named = {str(c)[:6] for c in frame["code"]}
    return districts[districts["code"].isin(named)]


@_command("grid import")
def _grid_import(args: argparse.Namespace) -> int:
    from .grid import GridVersion, cells_from_file, read_grid_file, validate_grid

    frame = read_grid_file(args.file, layer=args.layer)
    store = _store(args)
    city = _city(args, store)
    report = validate_grid(frame, communities=city.divisions.communities,
                           districts=_districts_for(frame, city.divisions.districts))
    if not report.ok:
        for p in report.problems:
            print(p)
        print(f"not imported: {len(report.problems)} problem(s); the store is unchanged",
              file=sys.stderr)
        return EXIT_PROBLEMS
    from . import app

    vid = app.add_grid_version(store, GridVersion(args.valid_from, cells_from_file(frame),
                                                  source=f"file:{args.file}"))
    print(f"imported {len(frame)} cells as grid version {vid}, valid from {args.valid_from}")
    return 0


@_command("grid export")
def _grid_export(args: argparse.Namespace) -> int:
    from .grid import write_features

    store = _store(args)
    _city(args, store)  # builds the sample city on an empty store
    cells = store.load_grid(args.version)
    path = write_features(cells, args.out)
    print(f"wrote {len(cells)} cells to {path}")
    return 0


@_command("grid versions")
def _grid_versions(args: argparse.Namespace) -> int:
    print(_store(args).grid_versions().to_string(index=False))
    return 0


@_command("divisions export")
def _divisions_export(args: argparse.Namespace) -> int:
    from .grid import write_features

    frame = _city(args).divisions.level(args.level)
    path = write_features(frame, args.out)
    print(f"wrote {len(frame)} {args.level} polygons to {path}")
    return 0


@_command("cell")
def _cell(args: argparse.Namespace) -> int:
    import shapely

    from .crs import describe_lonlat, to_wgs84
    from .errors import CoordinateError, OutsideCityError
    from .grid import point_to_cell

    store = _store(args)
    city = _city(args, store)
    if args.code:
        row = store.get_cell(args.code)
    else:
        if args.lon is None or args.lat is None or args.crs is None:
            raise GridcoreError("give a cell CODE, or --lon, --lat and --crs")
        words = describe_lonlat(args.lon, args.lat,
                                city_bounds=tuple(city.cells.total_bounds.tolist()))
        if words:  # as the service says it: "... would be in the city"
            raise CoordinateError(words)
        lon, lat = to_wgs84([args.lon], [args.lat], crs=args.crs)
        pos = point_to_cell(city.cells, lon, lat)[0]
        if pos < 0:
            raise OutsideCityError(
                f"lon {args.lon}, lat {args.lat} ({args.crs}) lies in no unit grid cell "
                "of this city")
        row = city.cells.iloc[pos]
    names = city.divisions
    out = {
        "code": row["code"],
        "community": {"code": row["community_code"], "name": names.name_of(row["community_code"])},
        "street": {"code": row["street_code"], "name": names.name_of(row["street_code"])},
        "district": {"code": row["district_code"], "name": names.name_of(row["district_code"])},
        "area_m2": round(float(row["area_m2"]), 1),
        "geometry": shapely.geometry.mapping(row["geometry"]),
    }
    print(json.dumps(out, ensure_ascii=False, indent=None if args.compact else 2))
    return 0


@_command("locate")
def _locate(args: argparse.Namespace) -> int:
    from .locate import Locator, locate_csv

    if args.crs is None:  # a CSV's lon/lat do not say their CRS; guessing shifts ~500 m
        raise GridcoreError(f"--crs is required: the CRS of {args.input}'s lon/lat columns, "
                            f"one of {', '.join(CRS_CHOICES)}")
    city = _city(args)
    locator = Locator.from_city(city)  # codes only: no component index needed
    result = locate_csv(args.input, args.output, crs=args.crs, locator=locator,
                        invalid_rows=args.invalid_rows, encoding=args.encoding,
                        progress=True)
    wrong = f" ({result.wrong_fields} with the wrong number of fields)" if (
        result.wrong_fields) else ""
    read_as = "" if result.encoding.startswith("utf-8") else f"; read as {result.encoding}"
    print(f"{result.rows} rows written to {args.output}: {result.located} located, "
          f"{result.outside} outside the city, {result.invalid} unusable{wrong}{read_as}",
          file=sys.stderr)
    return 0


@_command("components import")
def _components_import(args: argparse.Namespace) -> int:
    store = _store(args)
    _city(args, store)
    from . import app

    n = app.import_components(store, args.file, crs=args.crs)
    print(f"imported {n} components from {args.file}")
    return 0


@_command("components export")
def _components_export(args: argparse.Namespace) -> int:
    store = _store(args)
    _city(args, store)
    from . import app

    path = app.export_components(store, args.out, district=args.district)
    print(f"wrote components to {path}")
    return 0


@_command("disputes screen")
def _disputes_screen(args: argparse.Namespace) -> int:
    from .disputes import DisputeScreener
    from .grid import read_features

    store = _store(args)
    _city(args, store)
    incidents = read_features(args.file)
    screener = DisputeScreener(store.load_divisions(), level=args.level,
                               overrides=store.dispute_overrides())
    table = screener.screen_frame(incidents, crs=args.crs,
                                  accuracy_column=args.accuracy_column)
    out = args.output or sys.stdout
    table.to_csv(out, index_label="row")
    joint = int(table["joint"].sum())
    print(f"{len(table)} incidents screened at {args.level} level: {joint} cross-boundary "
          f"(joint), {int(table['outside_city'].sum())} outside the city", file=sys.stderr)
    return 0


@_command("heatmap pages")
def _heatmap_pages(args: argparse.Namespace) -> int:
    from .maps import write_heatmap_pages
    from .sample_heatmap import synthetic_ebike_positions

    city = _city(args)
    events = synthetic_ebike_positions(city.cells)
    pages = write_heatmap_pages(city.cells, events, args.out, basemap=args.basemap,
                                day=args.day, start="2018-03-15")
    for name, path in pages.items():
        print(f"{name}: {path}")
    return 0


@_command("heatmap alerts")
def _heatmap_alerts(args: argparse.Namespace) -> int:
    store = _store(args)
    _city(args, store)
    alerts = store.heat_alerts()
    for a in alerts:
        print(f"{a['start']} .. {a['end']}  cell {a['cell_code']}  count {a['count']:.0f} "
              f"vs baseline {a['baseline']:.1f}  z {a['z']:.1f}  p {a['p']:.2g}  "
              f"{a['reason_zh']}")
    print(f"{len(alerts)} alert(s)", file=sys.stderr)
    return 0


def _scan_progress(steps: int):
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="scan", unit="step", file=sys.stderr, leave=False)

    def say(step: str) -> None:
        bar.set_description(step)
        bar.update()

    return bar, say


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


@_command("heatmap scan")
def _heatmap_scan(args: argparse.Namespace) -> int:
    from .heatmap import read_events_file, scan_alerts

    if args.events is None:
        print("gridcore: error: stored events are not available yet; give --events FILE",
              file=sys.stderr)
        return EXIT_ERROR
    if args.end <= args.start:
        print(f"gridcore: error: --end {args.end} must be after --start {args.start}",
              file=sys.stderr)
        return EXIT_ERROR
    events = read_events_file(args.events)
    city = _city(args)
    bar, say = _scan_progress(4)
    with bar:
        alerts = scan_alerts(events, city.cells, start=str(args.start), end=str(args.end),
                             crs=args.crs, min_recurrence_days=args.min_recurrence_days,
                             progress=say)
    _write_json(args.output, [a.to_dict() for a in alerts])
    surges = sum(a.kind == "surge" for a in alerts)
    print(f"{surges} surge and {len(alerts) - surges} chronic alert(s) for "
          f"[{args.start}, {args.end}) written to {args.output}", file=sys.stderr)
    return 0


@_command("heatmap compare")
def _heatmap_compare(args: argparse.Namespace) -> int:
    from .codes import validate_cell_code
    from .heatmap import compare, read_events_file

    codes = [validate_cell_code(c.strip()) for c in args.cells.split(",") if c.strip()]
    events = read_events_file(args.events)
    city = _city(args)
    result = compare(events, city.cells, cell_codes=codes, change=str(args.change),
                     crs=args.crs)
    _write_json(args.output, result.to_dict())
    print(result.why, file=sys.stderr)
    return 0


@_command("serve")
def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from . import app
    from .store import default_db, is_postgres_url, redact

    _check_listen(args.host, args.port)
    db = args.db or default_db()
    if not is_postgres_url(db):
        db = os.path.abspath(db)  # every worker opens the file this process built
    # The workers are fresh processes that build the app from GRIDCORE_* variables (an
    # import string, not an app object: this module imports nothing from api/).
    os.environ["GRIDCORE_DB"] = db
    store = _store(args)
    try:
        if store.is_empty():  # build once, here, before N workers race to build it
            _city(args, store)
        app.prepare_store(store)
    finally:
        store.close()
    print(f"gridcore: serving {redact(db)} on http://{args.host}:{args.port} "
          f"({args.workers} worker{'s' if args.workers > 1 else ''})", file=sys.stderr)
    try:
        uvicorn.run("api.main:create_app", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level)
    except SystemExit as exc:  # uvicorn exits 1 or 3 when it cannot start; 3 is our "bug"
        if exc.code in (0, None):
            return 0
        print(f"gridcore: error: the server did not start on http://{args.host}:{args.port} "
              "(uvicorn's reason is above: e.g. the port is in use or needs privileges)",
              file=sys.stderr)
        return EXIT_ERROR
    return 0


def _check_listen(host: str, port: int) -> None:
    """Refuse a host name that does not resolve before the store is opened or built."""
    import socket

    from .errors import InvalidValueError

    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidValueError(f"--host {host!r} is not an address or a known host name "
                                "of this machine (e.g. 127.0.0.1, 0.0.0.0)") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: a whole number 0-65535")
    return value


def _token_store(args: argparse.Namespace, *, init: bool | None = None):
    """Open the store a token command works on; return it and its printable name.

    A token only works on the store the server reads, so a command that would otherwise
    create a new empty store (a missing SQLite file, or a store with no grid) refuses
    unless ``init`` (None: the command has no ``--init``).
    """
    import os

    from .store import default_db, is_postgres_url, open_store, redact

    db = args.db or default_db()
    where = redact(db if is_postgres_url(db) else os.path.abspath(db))
    hint = "set GRIDCORE_DB (or --db) to the store the server uses"
    if init is not None:
        hint += ", or pass --init to start a new store there"
    if not is_postgres_url(db) and not os.path.exists(db) and not init:
        raise GridcoreError(f"no store at {where}; {hint}")
    store = open_store(db)
    if not init and store.is_empty():
        store.close()
        raise GridcoreError(f"{where} holds no grid, so no server uses it; {hint}")
    return store, where


def _city_time(t, tz) -> str:
    from ._time import to_city

    return "-" if t is None else to_city(t, tz).strftime("%Y-%m-%d %H:%M")


@_command("token create")
def _token_create(args: argparse.Namespace) -> int:
    from . import app

    expires_in = app.parse_duration(args.expires) if args.expires else None
    store, where = _token_store(args, init=args.init)
    try:
        token = app.issue_token(store, role=args.role, name=args.name, subject=args.subject,
                                expires_in=expires_in)
    finally:
        store.close()
    print(f"token for {args.name} ({args.role}) in {where}; keep it secret, it is shown "
          f"once:", file=sys.stderr)
    print(token)
    return 0


@_command("token list")
def _token_list(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import app

    store, where = _token_store(args)
    try:
        tokens = app.list_tokens(store)
        tz = store.clock.tz
    finally:
        store.close()
    table = pd.DataFrame({
        "id": tokens["id"], "role": tokens["role"], "name": tokens["name"],
        "subject": tokens["subject"],
        **{label: [_city_time(t, tz) for t in tokens[col]] for label, col in (
            ("created", "created_at"), ("expires", "expires_at"),
            ("last used", "last_used_at"), ("revoked", "revoked_at"))},
    })
    if len(table):
        print(table.to_string(index=False))
    print(f"{len(table)} token(s) in {where}; times in {tz.key}", file=sys.stderr)
    return 0


@_command("token revoke")
def _token_revoke(args: argparse.Namespace) -> int:
    from . import app

    store, where = _token_store(args)
    try:
        app.revoke_token(store, args.id)
    finally:
        store.close()
    print(f"revoked token {args.id} in {where}; requests with it now answer 401")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``gridcore`` command."""
    p = argparse.ArgumentParser(prog="gridcore", description=__doc__.splitlines()[0])
    p.add_argument("--db", help="store file (default: $GRIDCORE_DB or ./gridcore.db)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build the bundled sample city into the store")
    b.add_argument("--force", action="store_true", help="rebuild even if the store has a city")

    g = sub.add_parser("grid", help="unit grid: validate, import, export, versions")
    gs = g.add_subparsers(dest="grid_command", required=True)
    v = gs.add_parser("validate", help="validate a grid file (GeoPackage, GeoJSON, Shapefile)")
    v.add_argument("file")
    v.add_argument("--layer")
    v.add_argument("--standalone", action="store_true",
                   help="check the file on its own, not against the city's divisions")
    i = gs.add_parser("import", help="validate a grid file and store it as a new version")
    i.add_argument("file")
    i.add_argument("--layer")
    i.add_argument("--valid-from", type=_parse_date, required=True)
    e = gs.add_parser("export", help="write the grid as .gpkg or .geojson (EPSG:4326)")
    e.add_argument("out")
    e.add_argument("--version", type=int, help="grid version id (default: current)")
    gs.add_parser("versions", help="list grid versions")

    d = sub.add_parser("divisions", help="administrative divisions")
    ds = d.add_subparsers(dest="divisions_command", required=True)
    de = ds.add_parser("export", help="write division polygons as .gpkg or .geojson")
    de.add_argument("out")
    de.add_argument("--level", choices=["district", "street", "community"], required=True)

    c = sub.add_parser("cell", help="print a cell by code or by coordinate (JSON)")
    c.add_argument("code", nargs="?")
    c.add_argument("--lon", type=float)
    c.add_argument("--lat", type=float)
    c.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"])
    c.add_argument("--compact", action="store_true", help="one line of JSON")
    lo = sub.add_parser("locate", help="bulk locate: add cell and division codes to a CSV")
    lo.add_argument("--input", required=True, help="CSV with lon and lat columns")
    lo.add_argument("--output", required=True, help="CSV to write (the input plus codes)")
    lo.add_argument("--crs", choices=CRS_CHOICES,
                    help="CRS of lon/lat: wgs84, gcj02 (AMap, Tencent) or bd09 (Baidu); "
                         "required")
    lo.add_argument("--encoding", help="encoding of the input, e.g. utf-8, gb18030 "
                                       "(default: detected; the output is UTF-8)")
    lo.add_argument("--invalid-rows", choices=["error", "empty"], default="error",
                    help="unusable rows (NaN, swapped, wrong number of fields...): stop "
                         "(default) or write them with empty codes")

    co = sub.add_parser("components", help="city components (部件): import and export")
    cs = co.add_subparsers(dest="components_command", required=True)
    ci = cs.add_parser("import", help="import components (.gpkg, .geojson, .csv); all or none")
    ci.add_argument("file")
    ci.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"],
                    help="CRS of a CSV's lon/lat columns")
    ce = cs.add_parser("export", help="export components (.gpkg, .geojson, .csv)")
    ce.add_argument("out")
    ce.add_argument("--district", help="only this 6-digit district")

    dp = sub.add_parser("disputes", help="cross-boundary cases (跨区吹哨)")
    dps = dp.add_subparsers(dest="disputes_command", required=True)
    dsc = dps.add_parser("screen", help="screen incident geometries (.gpkg/.geojson) for "
                                        "cross-boundary cases; CSV of parties and shares")
    dsc.add_argument("file")
    dsc.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"], required=True)
    dsc.add_argument("--level", choices=["district", "street", "community"],
                     default="district")
    dsc.add_argument("--accuracy-column", help="column with each point's accuracy (m)")
    dsc.add_argument("--output", help="CSV to write (default: standard output)")

    hm = sub.add_parser("heatmap", help="heat maps and hotspot alerts (热力图)")
    hms = hm.add_subparsers(dest="heatmap_command", required=True)
    hp = hms.add_parser("pages", help="write the sample's heat-map pages (self-contained HTML)")
    hp.add_argument("--out", required=True, help="directory to write heat.html, rhythm.html, "
                                                 "hotspots.html into")
    hp.add_argument("--basemap", choices=["osm", "gaode"], default="osm")
    hp.add_argument("--day", type=_parse_date,
                    help="day of the heat layer, YYYY-MM-DD (default: busiest)")
    hms.add_parser("alerts", help="list the stored hotspot alerts")
    hsc = hms.add_parser("scan", help="surge and chronic alerts of events on the current grid")
    hsc.add_argument("--events", help="CSV or Parquet: time (ISO 8601 with offset), lon, lat")
    hsc.add_argument("--crs", choices=CRS_CHOICES, required=True)
    hsc.add_argument("--start", type=_parse_date, required=True,
                     help="first day scanned, YYYY-MM-DD (the weeks before are history)")
    hsc.add_argument("--end", type=_parse_date, required=True, help="day after the last one")
    hsc.add_argument("--output", required=True, help="ALERTS.json to write")
    hsc.add_argument("--min-recurrence-days", type=float, default=30.0,
                     help="alert only on what chance would produce less often (default 30)")
    hco = hms.add_parser("compare", help="before/after at cells against chosen controls")
    hco.add_argument("--events", required=True,
                     help="CSV or Parquet: time (ISO 8601 with offset), lon, lat")
    hco.add_argument("--crs", choices=CRS_CHOICES, required=True)
    hco.add_argument("--cells", required=True, help="CODE[,CODE...] the treated cells")
    hco.add_argument("--change", type=_parse_date, required=True,
                     help="day the measure took effect, YYYY-MM-DD")
    hco.add_argument("--output", required=True, help="RESULT.json to write")

    sv = sub.add_parser("serve", help="serve the API and map pages (builds the city if needed)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=_port, default=8000, help="TCP port, 0-65535 (default 8000)")
    sv.add_argument("--log-level", default="info")
    sv.add_argument("--workers", type=_positive_int, default=1,
                    help="worker processes serving the one store (default 1)")

    t = sub.add_parser("token", help="bearer tokens for the API")
    ts = t.add_subparsers(dest="token_command", required=True)
    tc = ts.add_parser("create", help="create a token; prints it as the last line")
    tc.add_argument("--role", required=True, choices=[r.value for r in Role])
    tc.add_argument("--name", required=True)
    tc.add_argument("--subject", help="who the token acts for (default: the name): a chief's "
                                      "id (chief; volunteer: the chief helped), a department "
                                      "code or CODE:DIVISION (department), a 9-digit street "
                                      "code (street), a district code (a district's "
                                      "dispatcher), a division code (a supervisor's area)")
    tc.add_argument("--expires", metavar="DURATION",
                    help="expire after 30d, 12h or 90m (default: never)")
    tc.add_argument("--init", action="store_true",
                    help="create the store if it does not exist or holds no grid")
    ts.add_parser("list", help="list tokens: id, holder, times (never a token or its hash)")
    tr = ts.add_parser("revoke", help="revoke a token by the id `token list` shows")
    tr.add_argument("id")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gridcore`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    name = args.command
    for attr in ("grid_command", "divisions_command", "token_command", "components_command",
                 "disputes_command", "heatmap_command"):
        if getattr(args, attr, None):
            name = f"{name} {getattr(args, attr)}"
    try:
        return _COMMANDS[name](args)
    except GridcoreError as exc:
        print(f"gridcore: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # the machine, not the data: a file or socket we cannot use
        where = f": {exc.filename}" if exc.filename else ""
        print(f"gridcore: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: keep the traceback, it is the bug report
        import traceback

        traceback.print_exc()
        print(f"gridcore: internal error: {type(exc).__name__}: {exc} (a bug in gridcore, "
              "not in the input; please report it with the traceback above)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
