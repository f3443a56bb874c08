"""Chiefs, alleys, assignments and the alley/cell table; bearer tokens."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd

from ..auth import Principal, Role, TokenRecord, hash_token, verify_token
from ..chiefs import ChiefRoster
from ..crs import GEOGRAPHIC_EPSG
from ..errors import AuthenticationError, ConflictError, NotFoundError
from ._base import from_wkb, to_day, to_instant, wkb


class ChiefsMixin:
    """`gridcore.store.ChiefStore` over SQL."""

    def save_roster(self, roster: ChiefRoster) -> None:
        """Replace the stored chiefs, alleys and assignments (one transaction).

        The alley/cell table is emptied with them (rows *and* the versions marked
        computed), so the application layer computes it anew for the new alleys.
        """
        alleys = roster.alleys.to_crs(GEOGRAPHIC_EPSG)
        notes = alleys["note"] if "note" in alleys else pd.Series([""] * len(alleys))
        day = self.dialect.day
        with self._begin() as tx:
            for table in ("alley_cells", "alley_cells_done", "chief_assignments", "alleys",
                          "chiefs"):
                tx.execute(f"DELETE FROM {table}")
            tx.executemany("INSERT INTO chiefs (id, name, title) VALUES (?, ?, ?)",
                           roster.chiefs[["id", "name", "title"]].astype(str).values.tolist())
            tx.executemany(
                f"INSERT INTO alleys (name, synthetic, note, geom) "
                f"VALUES (?, ?, ?, {self.dialect.geom_in()})",
                [(n, int(bool(s)), str(note), blob) for n, s, note, blob in zip(
                    alleys["name"], alleys["synthetic"], notes, wkb(alleys.geometry.values),
                    strict=True)])
            tx.executemany(
                "INSERT INTO chief_assignments (chief_id, alley, valid_from) VALUES (?, ?, ?)",
                [(a, b, day(pd.Timestamp(d).date())) for a, b, d in roster.assignments[
                    ["chief_id", "alley", "valid_from"]].itertuples(index=False)])

    def has_chiefs(self) -> bool:
        """Return True when any chief is stored."""
        return self._scalar("SELECT COUNT(*) FROM chiefs") > 0

    def load_roster(self) -> ChiefRoster:
        """Return the stored chiefs, alleys (EPSG:4326) and assignments."""
        with self._reading() as tx:
            chiefs = tx.frame("SELECT id, name, title FROM chiefs ORDER BY id")
            raw = tx.frame(f"SELECT name, synthetic, note, {self.dialect.geom_out('geom')} "
                           "FROM alleys ORDER BY name")
            assignments = tx.frame("SELECT chief_id, alley, valid_from FROM chief_assignments "
                                   "ORDER BY alley, valid_from")
        alleys = gpd.GeoDataFrame(
            {"name": raw["name"], "synthetic": raw["synthetic"].astype(bool),
             "note": raw["note"]}, geometry=from_wkb(raw["geom"]), crs=GEOGRAPHIC_EPSG)
        assignments["valid_from"] = pd.to_datetime(
            pd.Series([to_day(v) for v in assignments["valid_from"]], dtype=object))
        return ChiefRoster(chiefs=chiefs, alleys=alleys, assignments=assignments)

    def get_chief(self, chief_id: str) -> dict:
        """Return a chief's id, name and title.

        Raises
        ------
        NotFoundError
            No chief has this id.
        """
        rows = self._rows("SELECT id, name, title FROM chiefs WHERE id = ?", (chief_id,))
        if not rows:
            raise NotFoundError(f"no chief has id {chief_id!r}")
        return rows[0]

    def chief_ids(self) -> list[str]:
        """Return every stored chief id, sorted."""
        return [r["id"] for r in self._rows("SELECT id FROM chiefs ORDER BY id")]

    def add_assignment(self, chief_id: str, alley: str, valid_from: dt.date) -> None:
        """Record that ``alley`` is ``chief_id``'s from ``valid_from`` on.

        Raises
        ------
        NotFoundError
            Unknown chief or alley.
        ConflictError
            The alley already has an assignment from that date.
        """
        with self._begin() as tx:
            if tx.one("SELECT 1 AS x FROM chiefs WHERE id = ?", (chief_id,)) is None:
                raise NotFoundError(f"no chief has id {chief_id!r}")
            if tx.one("SELECT 1 AS x FROM alleys WHERE name = ?", (alley,)) is None:
                raise NotFoundError(f"no street or alley is named {alley!r}")
            self.dialect.lock(tx, f"assignment:{alley}")
            if tx.one("SELECT 1 AS x FROM chief_assignments WHERE alley = ? AND valid_from = ?",
                      (alley, self.dialect.day(valid_from))):
                raise ConflictError(
                    f"{alley!r} already has an assignment from {valid_from}; "
                    "a handover needs another date")
            tx.execute("INSERT INTO chief_assignments (chief_id, alley, valid_from) "
                       "VALUES (?, ?, ?)", (chief_id, alley, self.dialect.day(valid_from)))

    def chiefs_of_cell(self, cell_code: str, *, on: dt.date | None = None) -> list[dict]:
        """Return the chiefs whose alleys cross a cell on a day (default: the city's today).

        For each alley through the cell, the chief of its latest assignment on or before
        ``on``: the rule of `gridcore.chiefs.chiefs_of_cells`, for one cell on a hot path.
        Reads the stored alley/cell table only (see `has_alley_cells`).
        """
        d = self.dialect.day(on or self.clock.today())
        # one round trip: the version in force that day, its alleys through the cell, and
        # each alley's latest assignment (this runs on every locate)
        return self._rows(
            "SELECT c.id, c.name, c.title, a.alley FROM alley_cells ac "
            "JOIN chief_assignments a ON a.alley = ac.alley "
            "JOIN chiefs c ON c.id = a.chief_id "
            "WHERE ac.version_id = (SELECT v.id FROM grid_versions v WHERE v.valid_from <= ? "
            "                       ORDER BY v.valid_from DESC, v.id DESC LIMIT 1) "
            "AND ac.cell_code = ? AND a.valid_from <= ? "
            "AND a.valid_from = (SELECT MAX(b.valid_from) FROM chief_assignments b "
            "                    WHERE b.alley = a.alley AND b.valid_from <= ?) "
            "ORDER BY a.alley, c.id", (d, cell_code, d, d))

    def has_alley_cells(self, version: int) -> bool:
        """Return True when the alley/cell table of a grid version has been computed."""
        return self._scalar("SELECT COUNT(*) FROM alley_cells_done WHERE version_id = ?",
                            (int(version),)) > 0

    def save_alley_cells(self, version: int, pairs: pd.DataFrame) -> None:
        """Store which cells each alley runs through in a version (``alley``, ``cell_code``)."""
        vid = int(version)
        with self._begin() as tx:
            self.dialect.lock(tx, f"alley_cells:{vid}")  # workers computing it at once
            tx.execute("DELETE FROM alley_cells WHERE version_id = ?", (vid,))
            tx.execute("DELETE FROM alley_cells_done WHERE version_id = ?", (vid,))
            self.dialect.bulk_insert(
                tx, "alley_cells", ["version_id", "alley", "cell_code"],
                [(vid, a, c) for a, c in zip(pairs["alley"], pairs["cell_code"], strict=True)])
            tx.execute("INSERT INTO alley_cells_done (version_id) VALUES (?)", (vid,))

    def alley_cells(self, version: int | None = None) -> pd.DataFrame:
        """Return the stored alley/cell pairs of a grid version (default: today's)."""
        vid = self._resolve(version, None)
        return self._frame("SELECT alley, cell_code FROM alley_cells WHERE version_id = ? "
                           "ORDER BY alley, cell_code", (vid,))


TOKEN_ID_LENGTH = 12
# A token's last use is written at most this often: a conditional UPDATE per request
# would queue every request behind the store's one writer.
LAST_USED_EVERY = dt.timedelta(minutes=1)


def token_id(token_hash: str) -> str:
    """Return a token's short public id: the first 12 hex digits of its digest.

    The digest is of 256 random bits, so its prefix reveals nothing of the token; migration
    4 of `gridcore.store._schema` gives older rows the same id in SQL.
    """
    return token_hash[:TOKEN_ID_LENGTH]


class TokensMixin:
    """`gridcore.store.TokenStore` over SQL: token hashes only, never tokens."""

    def add_token(self, record: TokenRecord, *, expires_at: dt.datetime | None = None) -> None:
        """Store a token's record (its SHA-256 hash, role, holder)."""
        ts = self.dialect.instant
        with self._begin() as tx:
            tx.execute(
                "INSERT INTO tokens (token_hash, id, role, name, subject, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.token_hash, token_id(record.token_hash), record.role.value,
                 record.name, record.subject, ts(record.created_at), ts(expires_at)))

    def principal_for_token(self, token: str) -> Principal:
        """Return who a bearer token belongs to, and note that it was used.

        The last use is recorded at most once a minute per token (`LAST_USED_EVERY`).

        Raises
        ------
        AuthenticationError
            Unknown, revoked or expired token.
        """
        token_hash = hash_token(token)
        rows = self._rows(
            "SELECT token_hash, role, name, subject, expires_at, last_used_at FROM tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,))
        if not rows or not verify_token(token, rows[0]["token_hash"]):
            raise AuthenticationError("the bearer token is unknown or revoked")
        r = rows[0]
        now = self._now()
        expires = to_instant(r["expires_at"])
        if expires is not None and expires <= now:
            raise AuthenticationError("the bearer token has expired")
        last = to_instant(r["last_used_at"])
        if last is None or last < now - LAST_USED_EVERY:
            ts = self.dialect.instant
            with self._begin() as tx:  # the condition again: another worker may have won
                tx.execute("UPDATE tokens SET last_used_at = ? WHERE token_hash = ? "
                           "AND (last_used_at IS NULL OR last_used_at < ?)",
                           (ts(now), token_hash, ts(now - LAST_USED_EVERY)))
        return Principal(name=r["name"], role=Role(r["role"]), subject=r["subject"])

    def revoke_token(self, token: str) -> None:
        """Revoke a token; later calls with it get 401."""
        self.revoke_token_hash(hash_token(token))

    def revoke_token_hash(self, token_hash: str) -> bool:
        """Revoke a token by its stored hash; return False when no live token has it."""
        return self._revoke("token_hash", token_hash)

    def revoke_token_id(self, id: str) -> bool:
        """Revoke a token by its public id; return False when no unrevoked token has it."""
        return self._revoke("id", id)

    def _revoke(self, column: str, value: str) -> bool:
        with self._begin() as tx:
            cur = tx.execute(f"UPDATE tokens SET revoked_at = ? "
                             f"WHERE {column} = ? AND revoked_at IS NULL",
                             (self.dialect.instant(self._now()), value))
            return cur.rowcount > 0

    def tokens_frame(self) -> pd.DataFrame:
        """Return every token record (id, hash, role, holder, times), never a token.

        Columns: id, token_hash, role, name, subject, created_at, revoked_at, expires_at,
        last_used_at (instants as aware UTC datetimes, None when unset).
        """
        frame = self._frame("SELECT id, token_hash, role, name, subject, created_at, "
                            "revoked_at, expires_at, last_used_at FROM tokens "
                            "ORDER BY created_at, token_hash")
        for col in ("created_at", "revoked_at", "expires_at", "last_used_at"):
            # pandas reads a missing text as NaN when a later row has one
            frame[col] = pd.Series([None if pd.isna(v) else to_instant(v) for v in frame[col]],
                                   index=frame.index, dtype=object)
        return frame
