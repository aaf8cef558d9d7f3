"""Shared fixtures: every database test runs on SQLite and on a throwaway PostgreSQL.

`--backends` (or CLOUDPAY_TEST_BACKENDS) picks the databases; `--pg-isolation` (or
CLOUDPAY_TEST_PG_ISOLATION) runs the PostgreSQL side at another isolation level, which is how
CI proves the write paths under SERIALIZABLE. Each test gets its own database, cloned from a
migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.types import ASGIApp

from cloudpay.config import Settings
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import LocalPostgres, PostgresUnavailable, start_local_postgres
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.migrations import upgrade

OPERATOR_TOKEN = "test-operator-token"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("CLOUDPAY_TEST_BACKENDS", "sqlite,postgres"),
        help="comma-separated databases to run database tests on",
    )
    parser.addoption(
        "--pg-isolation",
        default=os.environ.get("CLOUDPAY_TEST_PG_ISOLATION", "READ COMMITTED"),
        help="PostgreSQL isolation level for the engine under test",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = [b.strip() for b in metafunc.config.getoption("--backends").split(",") if b]
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = [b for b in backends if b == "postgres"]
        metafunc.parametrize("backend", backends, scope="session")


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    try:
        cluster = start_local_postgres()
    except PostgresUnavailable as missing:
        if os.environ.get("CI"):
            raise  # CI must run the PostgreSQL half, not skip it silently
        pytest.skip(f"PostgreSQL not available: {missing}")
    template_url = cluster.create_database("cloudpay_template")
    template_engine = make_engine(template_url)
    upgrade(template_engine)
    template_engine.dispose()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "cloudpay.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: LocalPostgres = request.getfixturevalue("postgres_cluster")
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield cluster.create_database(name, template="cloudpay_template")
    cluster.drop_database(name)


@pytest.fixture
def pg_isolation(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--pg-isolation"))


@pytest.fixture
def engine(database_url: str, pg_isolation: str) -> Iterator[Engine]:
    the_engine = make_engine(database_url, isolation_level=pg_isolation, pool_size=20)
    yield the_engine
    the_engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def settings(database_url: str, pg_isolation: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        database_isolation=pg_isolation,  # type: ignore[arg-type]
        operator_token=OPERATOR_TOKEN,  # type: ignore[arg-type]
    )


class _ServerThread(threading.Thread):
    def __init__(self, server: uvicorn.Server) -> None:
        super().__init__(daemon=True)
        self.server = server

    def run(self) -> None:
        self.server.run()


@contextmanager
def serving(app: ASGIApp) -> Iterator[httpx.Client]:
    """`app` served by uvicorn on a free loopback port, and a client talking HTTP to it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = _ServerThread(server)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_api(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[httpx.Client]:
    """The real app served by uvicorn on a loopback port; tests talk HTTP to it."""
    with serving(create_app(settings, engine=engine, clock=clock)) as client:
        yield client
