"""A real PostgreSQL server for the tests, started from Debian's binaries.

``PgServer`` runs ``initdb`` and ``pg_ctl`` in a temporary directory on a free
loopback port (as the ``postgres`` user when the tests run as root, which
PostgreSQL refuses to be), and can be stopped and started again to test a
database restart. Without the binaries the tests skip, except under
``CI=true``, where ``.ci/run`` installs them and a skip would hide a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            message = "PostgreSQL binaries (initdb, pg_ctl) not found; .ci/run installs them"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.pg_ctl = pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="agentopt-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        else:
            self.user = os.environ.get("USER", "postgres")
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync"])
        self.start()

    def _run(self, cmd: list[str]) -> None:
        out = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str) -> str:
        """Create database ``name`` on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-o",
                opts,
                "-l",
                str(self.dir / "log"),
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
