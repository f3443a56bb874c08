"""Division and unit grid cell codes: parsed, formatted and validated in one place.

Layout (GB/T 2260, NBS statistical codes, Beijing DB11/T 2157-2023)::

    district   6   110102
    street     9   110102 020            (001-099 street office, 100-199 town)
    community 12   110102 020 015
    cell      15   110102 020 015 001    (3-digit sequence, west->east, north->south)

Codes are fixed-width digit strings everywhere in gridcore (never ints: leading zeros
matter in other provinces).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from .errors import InvalidCodeError


class Level(StrEnum):
    """Levels of the administrative hierarchy and the unit grid."""

    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    CELL = "cell"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """Return the level named ``value`` or raise `InvalidCodeError` listing the valid ones."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise InvalidCodeError(
                f"unknown level {value!r}: expected one of " + ", ".join(v.value for v in cls)
            ) from None


CODE_LENGTH = {Level.DISTRICT: 6, Level.STREET: 9, Level.COMMUNITY: 12, Level.CELL: 15}
_LEVEL_BY_LENGTH = {n: lvl for lvl, n in CODE_LENGTH.items()}
_DIGITS = re.compile(r"^[0-9]+$")
MAX_CELL_SEQUENCE = 999


class CellCode(NamedTuple):
    """A parsed 15-digit unit grid cell code."""

    district: str
    street: str
    community: str
    sequence: int

    def __str__(self) -> str:
        return format_cell_code(self.community, self.sequence)


def _as_code(code: object) -> str:
    if isinstance(code, bool) or not isinstance(code, (str, int)):
        raise InvalidCodeError(f"a code must be a string of digits, got {type(code).__name__}")
    s = str(code).strip()
    if not _DIGITS.match(s):
        raise InvalidCodeError(f"code {code!r} must contain digits only")
    return s


def division_level(code: str) -> Level:
    """Return the level of a division or cell code from its length.

    Raises
    ------
    InvalidCodeError
        The code is not 6, 9, 12 or 15 digits.

    Examples
    --------
    >>> division_level("110102020")
    <Level.STREET: 'street'>
    """
    s = _as_code(code)
    try:
        return _LEVEL_BY_LENGTH[len(s)]
    except KeyError:
        raise InvalidCodeError(
            f"code {s!r} has {len(s)} digits: a district code has 6, a street 9, "
            "a community 12 and a unit grid cell 15"
        ) from None


def validate_division_code(code: str, level: Level | str | None = None) -> str:
    """Return ``code`` normalised, or raise `InvalidCodeError`.

    Checks digits only, the length for ``level`` (when given), a non-zero district part
    and non-zero sub-parts (000 is never a street, community or cell).
    """
    s = _as_code(code)
    found = division_level(s)
    if level is not None:
        want = Level.parse(level)
        if found != want:
            raise InvalidCodeError(
                f"code {s!r} is a {found.value} code ({len(s)} digits); "
                f"a {want.value} code has {CODE_LENGTH[want]} digits"
            )
    if s[:2] == "00" or s[2:6] == "0000":
        raise InvalidCodeError(f"code {s!r} does not start with a valid district code")
    for start, name in ((6, "street"), (9, "community"), (12, "sequence")):
        if len(s) > start and s[start : start + 3] == "000":
            raise InvalidCodeError(f"code {s!r} has {name} part 000, which is never assigned")
    return s


def parent_code(code: str) -> str | None:
    """Return the code of the enclosing division (None for a district)."""
    s = validate_division_code(code)
    return s[:-3] if len(s) > 6 else None


def is_within(code: str, division: str) -> bool:
    """Tell whether ``code`` is ``division`` itself or lies under it in the hierarchy.

    Examples
    --------
    >>> is_within("110102020015001", "110102")
    True
    >>> is_within("110102", "110102020")
    False
    """
    c, d = validate_division_code(code), validate_division_code(division)
    return len(c) >= len(d) and c[: len(d)] == d


def ancestor_code(code: str, level: Level | str) -> str:
    """Return the code of the division at ``level`` that holds ``code``.

    Raises
    ------
    InvalidCodeError
        ``code`` is above ``level`` (a district has no street).

    Examples
    --------
    >>> ancestor_code("110102020015001", "street")
    '110102020'
    """
    s, want = validate_division_code(code), Level.parse(level)
    n = CODE_LENGTH[want]
    if len(s) < n:
        raise InvalidCodeError(f"code {s!r} is a {division_level(s).value} code; it has no "
                               f"{want.value} above it")
    return s[:n]


def parse_cell_code(code: str) -> CellCode:
    """Split a 15-digit cell code into its district, street, community and sequence.

    Raises
    ------
    InvalidCodeError
        Not 15 digits, or a zero part.

    Examples
    --------
    >>> parse_cell_code("110102020015001")
    CellCode(district='110102', street='110102020', community='110102020015', sequence=1)
    """
    s = validate_division_code(code, Level.CELL)
    return CellCode(s[:6], s[:9], s[:12], int(s[12:]))


def format_cell_code(community_code: str, sequence: int) -> str:
    """Build the 15-digit code of cell ``sequence`` (1-999) in a 12-digit community.

    Raises
    ------
    InvalidCodeError
        Bad community code, or a sequence outside 1..999.

    Examples
    --------
    >>> format_cell_code("110102020015", 7)
    '110102020015007'
    """
    community = validate_division_code(community_code, Level.COMMUNITY)
    if isinstance(sequence, bool) or not 1 <= int(sequence) <= MAX_CELL_SEQUENCE:
        raise InvalidCodeError(
            f"cell sequence {sequence!r} is outside 1..{MAX_CELL_SEQUENCE} "
            f"(community {community} is full: split it or enlarge its cells)"
        )
    return f"{community}{int(sequence):03d}"


def is_valid_cell_code(code: object) -> bool:
    """Return True when ``code`` is a well-formed 15-digit cell code."""
    try:
        parse_cell_code(code)  # type: ignore[arg-type]
    except InvalidCodeError:
        return False
    return True


def validate_cell_code(code: object) -> str:
    """Return the normalised cell code or raise `InvalidCodeError`."""
    return str(parse_cell_code(code))  # type: ignore[arg-type]
