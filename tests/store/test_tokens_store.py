"""The token section of the store: expiry, last use, revocation by id, a listing without
secrets. Every test runs on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from gridcore import app
from gridcore._time import FixedClock
from gridcore.auth import hash_token
from gridcore.errors import AuthenticationError, InvalidValueError, NotFoundError
from gridcore.store import TokenStore

T0 = dt.datetime(2026, 7, 1, 9, 0)  # city time


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def db(new_store, clock):
    return new_store(clock=clock)


def test_the_store_keeps_the_token_protocol(db):
    assert isinstance(db, TokenStore)


def test_a_token_expires_on_the_stores_clock(db, clock):
    token = app.issue_token(db, role="supervisor", name="王五", expires_in=dt.timedelta(hours=12))
    frame = app.list_tokens(db)
    assert frame["expires_at"].iloc[0] == clock.now_utc() + dt.timedelta(hours=12)
    clock.advance(dt.timedelta(hours=12) - dt.timedelta(seconds=1))
    assert db.principal_for_token(token).name == "王五"
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(AuthenticationError, match="expired"):
        db.principal_for_token(token)
    forever = app.issue_token(db, role="admin", name="管理员")
    clock.advance(dt.timedelta(days=3650))
    assert db.principal_for_token(forever).name == "管理员"
    with pytest.raises(InvalidValueError, match="not both"):
        app.issue_token(db, role="admin", name="x", expires_at=clock.now_utc(),
                        expires_in=dt.timedelta(days=1))


def test_last_use_is_recorded_at_most_once_a_minute(db, clock):
    token = app.issue_token(db, role="dispatcher", name="调度")
    assert app.list_tokens(db)["last_used_at"].iloc[0] is None
    db.principal_for_token(token)
    first = clock.now_utc()
    assert app.list_tokens(db)["last_used_at"].iloc[0] == first
    clock.advance(dt.timedelta(seconds=59))
    db.principal_for_token(token)
    assert app.list_tokens(db)["last_used_at"].iloc[0] == first  # no write within the minute
    clock.advance(dt.timedelta(seconds=2))
    db.principal_for_token(token)
    assert app.list_tokens(db)["last_used_at"].iloc[0] == clock.now_utc()
    with pytest.raises(AuthenticationError):
        db.principal_for_token(token + "x")  # a failed try is no use


def test_revoke_by_id(db):
    keep = app.issue_token(db, role="admin", name="甲")
    gone = app.issue_token(db, role="supervisor", name="乙")
    frame = app.list_tokens(db)
    ids = dict(zip(frame["name"], frame["id"], strict=True))
    assert ids["乙"] == hash_token(gone)[:12] and len(set(frame["id"])) == 2
    app.revoke_token(db, ids["乙"])
    with pytest.raises(AuthenticationError, match="revoked"):
        db.principal_for_token(gone)
    assert db.principal_for_token(keep).name == "甲"
    frame = app.list_tokens(db).set_index("name")
    assert frame.loc["乙", "revoked_at"] is not None and frame.loc["甲", "revoked_at"] is None
    with pytest.raises(NotFoundError, match="revoked already"):
        app.revoke_token(db, ids["乙"])
    with pytest.raises(NotFoundError, match="names no token"):
        app.revoke_token(db, "0123456789ab")
    assert db.revoke_token_id("0123456789ab") is False


def test_the_listing_shows_no_secret(db):
    tokens = [app.issue_token(db, role="admin", name=f"n{i}") for i in range(3)]
    frame = app.list_tokens(db)
    assert list(frame.columns) == ["id", "role", "name", "subject", "created_at",
                                   "expires_at", "last_used_at", "revoked_at"]
    shown = " ".join(str(v) for v in frame.to_numpy().ravel())
    for t in tokens:
        assert t not in shown and hash_token(t) not in shown
        assert t[len("gc_"):][:12] not in shown


@pytest.mark.parametrize("text,length", [("30d", dt.timedelta(days=30)),
                                         ("12h", dt.timedelta(hours=12)),
                                         ("90m", dt.timedelta(minutes=90))])
def test_durations(text, length):
    assert app.parse_duration(text) == length


@pytest.mark.parametrize("text", ["", "30", "0d", "-1d", "1.5d", "30s", "1w", "d", "36600d"])
def test_bad_durations_say_what_is_right(text):
    with pytest.raises(InvalidValueError, match="30d|ten years"):
        app.parse_duration(text)


def test_a_first_release_token_gets_its_id_on_upgrade(tmp_path):
    import shutil
    from pathlib import Path

    from gridcore.store import SQLiteStore

    path = tmp_path / "v1.db"
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "store_v1.db", path)
    store = SQLiteStore(path)
    try:
        frame = store.tokens_frame()
        assert len(frame) == 1
        assert frame["id"].iloc[0] == frame["token_hash"].iloc[0][:12]
        assert frame["last_used_at"].iloc[0] is None
        assert store.revoke_token_id(frame["id"].iloc[0])
    finally:
        store.close()
