import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore.components import (
    COMPONENT_COLUMNS,
    CodeLayout,
    Component,
    ComponentCode,
    ComponentStatus,
    assign_component_codes,
    component_code_to_short,
    edit_component,
    empty_components,
    format_component_code,
    gbt47678_class_table,
    is_valid_component_code,
    legacy_class_table,
    load_class_table,
    move_component,
    new_components,
    parse_component_code,
    retire_component,
    short_code_to_component_code,
    validate_component_code,
    validate_components,
)
from gridcore.errors import ConflictError, DataFileError, InvalidCodeError, NotFoundError

# ---- golden values -------------------------------------------------------------------


def test_golden_suzhou_legacy_code():
    # CJ/T 214 example from the domain brief: a 上水井盖 in Suzhou's 姑苏区 (320508)
    c = parse_component_code("3205080101000001")
    assert c == ComponentCode("320508", "01", "01", 1)
    assert c.layout is CodeLayout.LEGACY16
    assert c.class_code == "0101"
    assert legacy_class_table().class_name(c.class_code) == "上水井盖"


def test_golden_17_digit_code():
    c = parse_component_code("11010101001000123", table=gbt47678_class_table())
    assert (c.district, c.major, c.minor, c.serial) == ("110101", "01", "001", 123)
    assert c.layout is CodeLayout.GBT17
    assert gbt47678_class_table().class_name("01001") == "上水井盖"


def test_golden_short_code():
    assert component_code_to_short("1101010213000042") == "02130042"
    full = short_code_to_component_code("02130042", district="110101")
    assert full.code == "1101010213000042"
    assert parse_component_code("02130042", district="110101").code == "1101010213000042"
    # with the 17-digit table the minor widens (our reading)
    wide = short_code_to_component_code("02130042", district="110101",
                                        table=gbt47678_class_table())
    assert wide.code == "11010102013000042"
    assert component_code_to_short(wide) == "02130042"


def test_format_golden():
    assert format_component_code("320508", "0101", 1) == "3205080101000001"
    assert format_component_code("110106", "04002", 999999) == "11010604002999999"


@pytest.mark.parametrize("code", ["1101010101000001", "11010601001000777", "1101020602999999"])
def test_round_trip(code):
    c = parse_component_code(code)
    assert format_component_code(c.district, c.class_code, c.serial) == code
    assert c.code == code


def test_every_legacy_class_maps_to_a_17_digit_class():
    legacy, new = legacy_class_table(), gbt47678_class_table()
    assert len(legacy) == len(new)
    for code17, row in new.classes.iterrows():
        assert row["legacy_class_code"] in legacy
        assert code17 == row["legacy_class_code"][:2] + "0" + row["legacy_class_code"][2:]
        assert row["name"] == legacy.class_name(row["legacy_class_code"])
    # the domain brief's majors are all present
    assert set(legacy.classes["major"]) == {"01", "02", "03", "04", "05", "06"}


# ---- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["110101010100001", "110101010100000001", "123", ""])
def test_wrong_length(code):
    with pytest.raises(InvalidCodeError, match="digits"):
        parse_component_code(code)


def test_non_digits_and_non_string():
    with pytest.raises(InvalidCodeError, match="only the digits"):
        parse_component_code("11010101010000a1")
    with pytest.raises(InvalidCodeError, match="string"):
        parse_component_code(1101010101000001)


def test_unknown_class():
    with pytest.raises(InvalidCodeError, match="not in the CJ/T 214"):
        parse_component_code("1101019999000001", table=legacy_class_table())
    with pytest.raises(InvalidCodeError, match="not in the CJ/T 214"):
        format_component_code("110101", "0108", 5, table=legacy_class_table())


def test_layout_table_mismatch():
    with pytest.raises(InvalidCodeError, match="17-digit"):
        parse_component_code("11010101001000001", table=legacy_class_table())


def test_bad_district_and_serial():
    with pytest.raises(InvalidCodeError, match="GB/T 2260"):
        parse_component_code("1100000101000001")
    with pytest.raises(InvalidCodeError, match="1..999999"):
        parse_component_code("1101010101000000")
    with pytest.raises(InvalidCodeError, match="1..999999"):
        format_component_code("110101", "0101", 1_000_000)


def test_prefix_disagrees_with_cell_district():
    validate_component_code("1101010101000001", cell_code="110101001001001")
    with pytest.raises(InvalidCodeError, match="district prefix 110101.*110102"):
        validate_component_code("1101010101000001", cell_code="110102001001001")


def test_short_code_serial_overflow():
    assert component_code_to_short("1101010101009999") == "01019999"
    with pytest.raises(InvalidCodeError, match="no longer fits the 4-digit serial"):
        component_code_to_short("1101010101010000")


def test_short_code_needs_district():
    with pytest.raises(InvalidCodeError, match="district="):
        parse_component_code("01010042")
    with pytest.raises(InvalidCodeError, match="not the requested district"):
        parse_component_code("1101010101000001", district="110102")


def test_short_code_of_wide_minor_refused():
    with pytest.raises(InvalidCodeError, match="no 2-digit form"):
        component_code_to_short("11010101101000001")


def test_is_valid():
    assert is_valid_component_code("1101010101000001")
    assert is_valid_component_code("1101010101000001", table=legacy_class_table())
    assert not is_valid_component_code("01010001")  # short codes are not IDs
    assert not is_valid_component_code("1101019999000001", table=legacy_class_table())
    assert not is_valid_component_code(None)


# ---- city tables ----------------------------------------------------------------------


def test_city_table_from_csv(tmp_path):
    p = tmp_path / "city.csv"
    p.write_text(
        "class_code,major,minor,major_name,name,dept_code\n"
        "0101,01,01,公用设施,上水井盖,D01\n0199,01,99,公用设施,智能井盖,D01\n",
        encoding="utf-8",
    )
    t = load_class_table(p)
    assert t.layout is CodeLayout.LEGACY16 and t.name == "city"
    assert parse_component_code("1101010199000001", table=t).class_code == "0199"
    with pytest.raises(InvalidCodeError):
        parse_component_code("1101010199000001", table=legacy_class_table())


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("class_code,major,name\n0101,01,x\n", "lacks columns"),
        ("class_code,major,minor,major_name,name,dept_code\n", "no rows"),
        ("class_code,major,minor,major_name,name,dept_code\n0102,01,01,a,b,D\n", "must be"),
        ("class_code,major,minor,major_name,name,dept_code\n0101,01,01,a,b,D\n"
         "0101,01,01,a,c,D\n", "twice"),
    ],
)
def test_bad_city_table(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=match):
        load_class_table(p)


def test_missing_city_table(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_class_table(tmp_path / "nope.csv")


# ---- code assignment and records ------------------------------------------------------


def test_assign_codes_continues_after_highest_ever_issued():
    codes = assign_component_codes(
        ["110101", "110101", "110102", "110101"],
        ["0101", "0101", "0101", "0305"],
        existing_codes=["1101010101000007", "1101010101000003", "1101020305000002"],
    )
    assert list(codes) == [
        "1101010101000008",
        "1101010101000009",
        "1101020101000001",
        "1101010305000001",
    ]


def test_assign_codes_unknown_class_and_overflow():
    with pytest.raises(InvalidCodeError, match="not in the"):
        assign_component_codes(["110101"], ["0108"])
    with pytest.raises(InvalidCodeError, match="run out"):
        assign_component_codes(["110101"], ["0101"], existing_codes=["1101010101999999"])


def _records(xy, classes):
    return gpd.GeoDataFrame(
        {"class_code": classes}, geometry=shapely.points(np.asarray(xy)), crs="EPSG:4326"
    )


@pytest.fixture()
def registry():
    recs = _records([(116.40, 39.91), (116.41, 39.92), (116.30, 39.85)], ["0101", "0101", "0213"])
    return new_components(
        recs,
        cell_codes=["110101001001001", "110101001001002", "110106002003004"],
        date=dt.date(2024, 5, 1),
    )


def test_new_components_schema_and_codes(registry):
    assert list(registry.columns) == [*COMPONENT_COLUMNS, "geometry"]
    assert list(registry["code"]) == ["1101010101000001", "1101010101000002", "1101060213000001"]
    assert list(registry["name"]) == ["上水井盖", "上水井盖", "路名牌"]
    assert list(registry["dept_name"]) == ["自来水集团", "自来水集团", "区民政局(地名办)"]
    assert (registry["status"] == "完好").all()
    assert registry["first_survey_date"].iloc[0] == pd.Timestamp("2024-05-01")
    for code, cell in zip(registry["code"], registry["cell_code"], strict=True):
        validate_component_code(code, cell_code=cell, table=legacy_class_table())
    c = Component.from_row(registry.iloc[2])
    assert c.status is ComponentStatus.INTACT and c.lon == 116.30
    assert validate_components(registry).equals(registry)
    assert len(empty_components()) == 0


def test_new_components_outside_city_refused(registry):
    with pytest.raises(InvalidCodeError, match="outside every unit grid cell"):
        new_components(_records([(0, 0)], ["0101"]), cell_codes=[""],
                       existing_codes=registry["code"])


def test_codes_stable_through_edit_move_retire(registry):
    before = list(registry["code"])
    edited = edit_component(registry, "1101010101000001", owner="某物业", status="破损",
                            date=dt.date(2025, 1, 2))
    assert list(edited["code"]) == before
    assert edited["owner"].iloc[0] == "某物业" and edited["status"].iloc[0] == "破损"
    assert edited["change_date"].iloc[0] == pd.Timestamp("2025-01-02")
    assert registry["owner"].iloc[0] == ""  # input untouched
    moved = move_component(edited, "1101010101000002", 116.42, 39.93,
                           cell_code="110101002001001")
    assert list(moved["code"]) == before
    assert moved.geometry.iloc[1].x == 116.42 and moved["cell_code"].iloc[1] == "110101002001001"
    retired = retire_component(moved, "1101010101000002")
    assert retired["status"].iloc[1] == "移除"
    # a retired code is never reissued
    more = new_components(_records([(116.4, 39.9)], ["0101"]), cell_codes=["110101001001001"],
                          existing_codes=retired["code"])
    assert list(more["code"]) == ["1101010101000003"]


def test_edit_refusals(registry):
    with pytest.raises(ConflictError, match="codes are stable"):
        edit_component(registry, "1101010101000001", class_code="0102")
    with pytest.raises(InvalidCodeError, match="valid values"):
        edit_component(registry, "1101010101000001", status="坏了")
    with pytest.raises(InvalidCodeError, match="unknown component attributes"):
        edit_component(registry, "1101010101000001", colour="red")
    with pytest.raises(NotFoundError):
        edit_component(registry, "1101010101000099", owner="x")
    with pytest.raises(ConflictError, match="district 110102"):
        move_component(registry, "1101010101000001", 116.3, 39.9, cell_code="110102001001001")


def test_validate_components_rejects_bad_rows(registry):
    bad = registry.copy()
    bad.loc[1, "cell_code"] = "110102001001001"
    with pytest.raises(InvalidCodeError, match="row 1: .*district prefix"):
        validate_components(bad)
    bad = registry.copy()
    bad.loc[2, "code"] = bad.loc[0, "code"]
    with pytest.raises(InvalidCodeError, match="row 2: .*more than once"):
        validate_components(bad)
    bad = registry.copy()
    bad.loc[0, "status"] = "ok"
    with pytest.raises(InvalidCodeError, match="row 0: status 'ok'"):
        validate_components(bad)
    with pytest.raises(DataFileError, match="EPSG:4326"):
        validate_components(registry.to_crs(4548))
