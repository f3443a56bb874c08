import pytest

from gridcore import codes
from gridcore.errors import InvalidCodeError


def test_golden_cell_code():
    c = codes.parse_cell_code("110102020015001")
    assert c == codes.CellCode("110102", "110102020", "110102020015", 1)
    assert str(c) == "110102020015001"
    assert codes.format_cell_code("110102020015", 1) == "110102020015001"
    assert codes.format_cell_code("110106002001", 999) == "110106002001999"


@pytest.mark.parametrize("seq", [1, 7, 42, 999])
def test_round_trip(seq):
    code = codes.format_cell_code("110101001002", seq)
    assert len(code) == 15
    assert codes.parse_cell_code(code).sequence == seq


@pytest.mark.parametrize(
    "bad,match",
    [
        ("11010202001500", "14 digits"),
        ("1101020200150011", "16 digits"),
        ("11010202001500a", "digits only"),
        ("110102020015000", "sequence part 000"),
        ("110102000015001", "street part 000"),
        ("000000020015001", "valid district"),
        (110102020015001.0, "string of digits"),
        (None, "string of digits"),
    ],
)
def test_bad_cell_codes(bad, match):
    with pytest.raises(InvalidCodeError, match=match):
        codes.parse_cell_code(bad)
    assert not codes.is_valid_cell_code(bad)


def test_sequence_bounds():
    with pytest.raises(InvalidCodeError, match="1..999"):
        codes.format_cell_code("110102020015", 1000)
    with pytest.raises(InvalidCodeError, match="1..999"):
        codes.format_cell_code("110102020015", 0)


def test_levels_and_parents():
    assert codes.division_level("110102") is codes.Level.DISTRICT
    assert codes.division_level("110102020") is codes.Level.STREET
    assert codes.division_level("110102020015") is codes.Level.COMMUNITY
    assert codes.division_level("110102020015001") is codes.Level.CELL
    assert codes.parent_code("110102020015") == "110102020"
    assert codes.parent_code("110102") is None
    with pytest.raises(InvalidCodeError, match="street code has 9"):
        codes.validate_division_code("110102", "street")
    with pytest.raises(InvalidCodeError, match="expected one of district"):
        codes.Level.parse("province")
