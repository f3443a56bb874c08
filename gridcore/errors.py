"""Exceptions raised by gridcore.

Every class is also a built-in exception so callers can catch either the gridcore
class or the familiar built-in. The service maps each class to one HTTP status in
``api/errors.py``.
"""

from __future__ import annotations


class GridcoreError(Exception):
    """Base class of every error gridcore raises on purpose."""


class InvalidCodeError(GridcoreError, ValueError):
    """A division, cell, component or event code is malformed or unknown in its table."""


class CoordinateError(GridcoreError, ValueError):
    """A coordinate is NaN, out of range, outside the supported region or likely swapped."""


class CRSError(GridcoreError, ValueError):
    """A coordinate reference system is missing, unknown or not the one expected."""


class GeometryError(GridcoreError, ValueError):
    """A geometry is empty, invalid (e.g. self-intersecting) or too large."""


class NotFoundError(GridcoreError, KeyError):
    """A record asked for by its key does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CellNotFoundError(NotFoundError):
    """No unit grid cell has this code, or no cell covers this position."""


class OutsideCityError(NotFoundError):
    """A position or geometry lies outside every unit grid cell of the city."""



class InvalidValueError(GridcoreError, ValueError):
    """A value the caller gave is not allowed: an impossible date, an empty name, an option.

    The service answers it 422; a bare ValueError is a bug and answers 500.
    """


class DataFileError(GridcoreError, ValueError):
    """An input file is missing, empty, unreadable or lacks required columns."""


class TransitionError(GridcoreError, ValueError):
    """A workflow step is not allowed from the record's current state."""


class ConflictError(GridcoreError):
    """The request conflicts with the current state (duplicate key, reused idempotency key)."""


class PermissionDeniedError(GridcoreError, PermissionError):
    """The caller is authenticated but not allowed to do this."""


class AuthenticationError(GridcoreError):
    """No valid credentials were presented."""


class StoreClosedError(GridcoreError, RuntimeError):
    """The store was closed (a service shutting down); nothing was read or written."""
