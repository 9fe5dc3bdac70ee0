"""Opening the registry: database URL, engine, sessions, schema migrations.

The default database is a SQLite file in the user's data folder; ``--db URL`` or the
``ADVSIG_DB`` environment variable select another (``sqlite:///path``, a plain file path, or
``postgresql://user@host/db``). The schema is created and upgraded only by the Alembic
migrations shipped in the package, never by ``create_all``, so every database has a revision.

Writes that must see a consistent set of codes (allocation) run in a serialised transaction:
SQLite takes its single write lock up front (``BEGIN IMMEDIATE``), PostgreSQL locks the codes
table against other writers (readers go on). A process killed in the middle loses only its own
uncommitted transaction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from advsig.registry.errors import RegistryError

logger = logging.getLogger(__name__)

ENV_VAR = "ADVSIG_DB"
DB_FILENAME = "registry.sqlite3"
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's write lock
MIGRATION_LOCK_KEY = 0x61647673  # PostgreSQL advisory lock held while migrating ("advs")


def default_db_url() -> str:
    """``$ADVSIG_DB`` if set, else a SQLite file in :func:`advsig.utils.user_data_dir`
    (``$ADVSIG_DATA_DIR`` or ``platformdirs.user_data_dir("advsig")``)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    from advsig.utils import user_data_dir

    return f"sqlite:///{user_data_dir() / DB_FILENAME}"


def normalize_url(url: str | Path | None) -> str:
    """A SQLAlchemy URL for ``url``: a URL as is, a file path as SQLite, None as the default."""
    if url is None or str(url).strip() == "":
        return default_db_url()
    url = str(url).strip()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver advsig depends on; SQLAlchemy would look for psycopg2.
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_events(engine: Engine) -> None:
    """Foreign keys and WAL on every connection; transactions begun by us, not by pysqlite.

    Why: pysqlite begins transactions lazily and never as IMMEDIATE, so two allocators could both
    read the codes before either writes. Taking over BEGIN lets writers take the lock first.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # autocommit at the driver; BEGIN comes from _on_begin
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        write = conn.get_execution_options().get("advsig_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str | Path | None = None) -> Engine:
    """An engine for ``url`` (see :func:`normalize_url`); SQLite parent folders are created."""
    text_url = normalize_url(url)
    try:
        parsed = make_url(text_url)
    except ArgumentError as exc:
        raise RegistryError(f"database URL {text_url!r} is not valid ({exc})") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise RegistryError(f"database URL {text_url!r}: only sqlite and postgresql are supported")
    kwargs: dict = {}
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise RegistryError(f"database URL {text_url!r}: driver not available ({exc})") from None
    if backend == "sqlite":
        _sqlite_events(engine)
    return engine


def _migrations_dir() -> Path:
    return Path(str(resources.files("advsig.registry") / "migrations"))


def _alembic_config():
    """Alembic's config built in code: no alembic.ini, no URL (migrations get a connection)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations_dir()))
    return cfg


def head_revision() -> str:
    """The newest schema revision this advsig ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision, None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` with the shipped Alembic migrations.

    Runs under the database's write lock, so two processes opening a new database at once
    migrate it once: the second finds it at ``revision`` already.
    """
    from alembic import command

    cfg = _alembic_config()
    with engine.connect() as conn:
        conn.execution_options(advsig_write=True)
        with conn.begin():
            if engine.url.get_backend_name() == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)


def _describe(exc: OperationalError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


class Registry:
    """The owner database behind one engine.

    Example:
        >>> reg = open_registry("sqlite:///registry.sqlite3")
        >>> with reg.read() as session:
        ...     session.scalars(select(Owner)).all()
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in one (deferred) transaction; committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def write(self, *, lock_codes: bool = False) -> Iterator[Session]:
        """A session in a transaction that holds the write lock from its first statement.

        ``lock_codes`` (PostgreSQL) also blocks other writers of the codes table until commit,
        so a read-check-insert of a code cannot interleave with another process's.
        """
        with self.engine.connect() as conn:
            conn.execution_options(advsig_write=True)
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                if lock_codes and self.backend == "postgresql":
                    session.execute(text("LOCK TABLE codes IN SHARE ROW EXCLUSIVE MODE"))
                yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_registry(url: str | Path | None = None, *, migrate: bool = True) -> Registry:
    """Open the registry at ``url`` (default: :func:`default_db_url`).

    With ``migrate`` an empty or older database is brought to the newest schema first; without,
    a database not at the newest revision is refused.
    """
    engine = make_engine(url)
    safe_url = engine.url.render_as_string(hide_password=True)
    head = head_revision()
    try:
        rev = current_revision(engine)
        if rev != head:
            if not migrate:
                raise RegistryError(
                    f"registry {safe_url} is at schema revision {rev!r}, this advsig needs "
                    f"{head!r}; run: advsig registry init --db URL"
                )
            known = _known_revisions()
            if rev is not None and rev not in known:
                raise RegistryError(
                    f"registry {safe_url} is at schema revision {rev!r}, unknown to this advsig "
                    f"(newest known: {head!r}); upgrade advsig"
                )
            logger.info("upgrading registry %s from %s to %s", safe_url, rev, head)
            upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        raise RegistryError(f"cannot open registry {safe_url}: {_describe(exc)}") from None
    except RegistryError:
        engine.dispose()
        raise
    return Registry(engine)


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def kit_label(kit: str | Path) -> str:
    """The name codes are registered under for ``kit``.

    A shipped kit name or Hub id is used as given; a kit folder by its absolute path, so the
    same folder always maps to the same codes whichever directory the command runs from.
    """
    path = Path(kit).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return str(kit)
