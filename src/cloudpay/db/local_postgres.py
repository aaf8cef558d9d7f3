"""A throwaway PostgreSQL cluster from the machine's binaries, for tests and benchmarks.

`initdb` refuses to run as root, so as root every server command runs as the `postgres` user
(`runuser`), in a temporary directory it owns, listening on a unix socket only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

SEARCH_PATHS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
START_TIMEOUT_S = 30


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@dataclass
class LocalPostgres:
    directory: Path
    bin_dir: Path
    as_postgres_user: bool

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.directory}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.directory} user=postgres dbname={database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            clause = f" TEMPLATE {template}" if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        _run(self, ["pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.directory, ignore_errors=True)


def find_bin_dir() -> Path:
    for candidate in (os.environ.get("CLOUDPAY_PG_BIN"), *SEARCH_PATHS):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("initdb not found; install PostgreSQL server binaries")


def _run(cluster: LocalPostgres, command: list[str]) -> None:
    executable = str(cluster.bin_dir / command[0])
    argv = [executable, *command[1:]]
    if cluster.as_postgres_user:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def start_local_postgres(*, max_connections: int = 200) -> LocalPostgres:
    bin_dir = find_bin_dir()
    directory = Path(tempfile.mkdtemp(prefix="cloudpay-pg-"))
    as_postgres = os.geteuid() == 0
    if as_postgres:
        shutil.chown(directory, user="postgres", group="postgres")
    cluster = LocalPostgres(directory, bin_dir, as_postgres)
    data = directory / "data"
    _run(cluster, ["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
    options = (
        f"-k {directory} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections={max_connections} "
        "-c shared_buffers=256MB"
    )
    _run(
        cluster,
        ["pg_ctl", "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"],
    )
    _wait_ready(cluster)
    return cluster


def _wait_ready(cluster: LocalPostgres) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(cluster.dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
