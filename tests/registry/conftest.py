"""Registry fixtures: a fresh SQLite file, and a real PostgreSQL server when one can start.

PostgreSQL comes from pytest-postgresql's ``postgresql_proc``. Its ``pg_ctl`` is found with
``pg_config --bindir``, PATH or /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root
(as CI runs tests), so under root ``pg_ctl`` is wrapped to run as the ``postgres`` user via
``setpriv``, keeping only the capability to reach pytest's root-only temporary folders. When no
server can start, the PostgreSQL tests skip with the reason; they never pass silently.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from advsig.registry.db import Registry, open_registry


def _find_pg_ctl() -> str | None:
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        if (Path(bindir) / "pg_ctl").is_file():
            return str(Path(bindir) / "pg_ctl")
    except (OSError, subprocess.SubprocessError):
        pass
    found = shutil.which("pg_ctl") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if isinstance(found, list):
        return found[-1] if found else None
    return os.path.realpath(found)


def _pg_executable() -> tuple[str | None, str]:
    """(pg_ctl to give pytest-postgresql, why not when None)."""
    pg_ctl = _find_pg_ctl()
    if pg_ctl is None:
        return None, "pg_ctl not found (pg_config --bindir, PATH, /usr/lib/postgresql/*/bin)"
    if os.geteuid() != 0:
        return pg_ctl, ""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None, "running as root and there is no 'postgres' user to run PostgreSQL as"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None, "running as root and setpriv (util-linux) is missing"
    caps = "+dac_override,+dac_read_search"
    folder = tempfile.mkdtemp(prefix="advsig-pg-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    wrapper = Path(folder) / "pg_ctl"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {setpriv} --reuid=postgres --regid=postgres --init-groups "
        f'--inh-caps={caps} --ambient-caps={caps} {pg_ctl} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), ""


PG_CTL, PG_SKIP_REASON = _pg_executable()

try:
    from pytest_postgresql import factories

    postgresql_proc = factories.postgresql_proc(
        executable=PG_CTL or "pg_ctl", port=None, unixsocketdir=tempfile.gettempdir()
    )
except ImportError as exc:  # pragma: no cover - pytest-postgresql is in the test extra
    PG_SKIP_REASON = f"pytest-postgresql is not installed ({exc})"


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest):
    """The running PostgreSQL executor, or a skip that says why there is none."""
    if PG_CTL is None or PG_SKIP_REASON:
        pytest.skip(f"PostgreSQL unavailable: {PG_SKIP_REASON}")
    try:
        return request.getfixturevalue("postgresql_proc")
    except Exception as exc:  # noqa: BLE001 - any start failure becomes a visible skip
        pytest.skip(f"PostgreSQL could not start: {type(exc).__name__}: {exc}")


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    """URL of a fresh, empty database on the test server, dropped afterwards."""
    from pytest_postgresql.janitor import DatabaseJanitor

    dbname = f"advsig_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=dbname,
        password=pg_server.password,
    )  # fmt: skip
    with janitor:
        yield f"postgresql://{pg_server.user}@{pg_server.host}:{pg_server.port}/{dbname}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once per backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with open_registry(db_url) as reg:
        yield reg
