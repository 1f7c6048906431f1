"""A private PostgreSQL cluster for one test, which it may stop and start at will (the
machine's shared server is never touched): initdb and pg_ctl in a temporary directory
on a free port, run as the `postgres` OS user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def missing() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres OS user to run the cluster as"
    if os.geteuid() != 0:
        return "running the cluster as the postgres user needs root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """initdb'd on construction; `start()`, `stop()` (immediate: as if the server
    crashed, no checkpoint), `close()` stops it and removes its files. With `disk`
    (a size such as "96m") its files live on a tmpfs of that size: a disk to fill."""

    def __init__(self, disk: str | None = None) -> None:
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
        # Not under pytest's tmp_path: its parents are root's, closed to postgres.
        self.root = Path(tempfile.mkdtemp(prefix="smshub-pg-"))
        self._mounted = disk is not None
        if disk is not None:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk}", "tmpfs",
                            str(self.root)], check=True, capture_output=True)
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        # fsync off: the server process dies, the machine does not, so the page cache
        # keeps what it committed, as a disk would.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"),
                          "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def close(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                        str(self.data), "-m", "immediate", "stop"], check=False,
                       capture_output=True)
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_postgres(self, tool: str, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                              check=False, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")


def started() -> Iterator[Cluster]:
    """A fixture's body: a private server started for one test, closed after it; the
    test is skipped, saying why, where none can run."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    server = Cluster()
    try:
        server.start()
        yield server
    finally:
        server.close()
