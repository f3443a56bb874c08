"""A throwaway PostgreSQL/PostGIS cluster for the tests, from the machine's own binaries.

`start_cluster` runs ``initdb`` and ``pg_ctl`` (Debian's ``postgresql`` package, with
``postgis``) in a temporary folder on a free loopback port, with trust authentication
for one user, and returns a `Cluster` that makes fresh databases and stops the server.
Set ``GRIDCORE_TEST_POSTGRES`` to a server URL to use a running server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


class NoPostgres(RuntimeError):
    """PostgreSQL's server binaries are not installed (see .ci/run)."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    if exe:
        return Path(exe).parent
    raise NoPostgres("PostgreSQL's initdb was not found: install Debian's postgresql and "
                     "postgis packages (.ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running server: ``url`` of its maintenance database; `new_database`, `stop`."""

    url: str
    root: Path | None = None
    bindir: Path | None = None
    as_user: list[str] | None = None

    def new_database(self, prefix: str = "gridcore_test") -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, url: str) -> None:
        """Drop a database made by `new_database` (closing its other sessions)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and remove its files (a server given by URL is left alone)."""
        if self.root is None:
            return
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D",
                        str(self.root / "data"), "-m", "immediate", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Start a throwaway cluster (or use ``$GRIDCORE_TEST_POSTGRES``).

    Raises
    ------
    NoPostgres
        No server binaries on this machine.
    """
    given = os.environ.get("GRIDCORE_TEST_POSTGRES")
    if given:
        return Cluster(url=given)
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="gridcore-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    port = _free_port()
    data, sock = root / "data", root / "sock"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "gridcore",
                    "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, "mkdir", "-p", str(sock)], check=True)
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c shared_buffers=128MB")
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                    "-l", str(root / "server.log"), "start"], check=True, capture_output=True)
    return Cluster(url=f"postgresql://gridcore@127.0.0.1:{port}/postgres", root=root,
                   bindir=bindir, as_user=as_user)
