"""Opening the registry: URLs, pragmas, migrations that match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from advsig.registry import db as dbmod
from advsig.registry.db import (
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    open_registry,
    upgrade,
)
from advsig.registry.errors import RegistryError
from advsig.registry.models import Base, Owner
from advsig.registry.owners import add_owner, list_owners


def test_new_database_is_migrated_to_head_and_matches_the_models(registry):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert current_revision(registry.engine) == head_revision()
    tables = set(inspect(registry.engine).get_table_names())
    assert {"owners", "models", "codes", "api_keys"} <= tables
    with registry.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_sqlite_has_wal_and_foreign_keys(sqlite_url: str):
    with open_registry(sqlite_url) as reg, reg.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_upgrade_from_first_revision_keeps_data(sqlite_url: str):
    engine = make_engine(sqlite_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO owners (name, created_at) VALUES ('old', '2024-01-01 00:00:00')")
        )
    assert current_revision(engine) == "0001"
    engine.dispose()
    with pytest.raises(RegistryError, match="revision '0001'"):
        open_registry(sqlite_url, migrate=False)
    with open_registry(sqlite_url) as reg:
        assert current_revision(reg.engine) == head_revision()
        assert [o.name for o in list_owners(reg)] == ["old"]


def test_upgrade_from_0002_keeps_codes_and_their_constraints(sqlite_url: str):
    """0003 rebuilds the codes table on SQLite: rows, CHECKs and UNIQUE must survive it."""
    from sqlalchemy.exc import IntegrityError

    engine = make_engine(sqlite_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO owners (id, name, created_at) VALUES (1, 'old', :t)"),
                     {"t": "2024-01-01 00:00:00"})  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO codes (owner_id, kit, num_bits, value, min_distance, strategy, "
                "status, created_at) VALUES (1, 'k', 8, '0f', 2, 'random', 'active', :t)"
            ),
            {"t": "2024-01-01 00:00:00"},
        )
    engine.dispose()
    with open_registry(sqlite_url) as reg:
        (owner,) = list_owners(reg)
        assert owner.created_by == "unknown"
        (code,) = owner.codes
        assert (code.code, code.model, code.assigned_by) == ("0f", None, "unknown")
        for bad in ("status = 'lost'", "num_bits = 0", "value = '0f', kit = 'k'"):
            with pytest.raises(IntegrityError), reg.write() as s:
                s.execute(
                    text(
                        "INSERT INTO codes (owner_id, kit, num_bits, value, min_distance, "
                        "strategy, status, created_at, assigned_by) VALUES (1, 'k', 8, '10', 2, "
                        "'random', 'active', CURRENT_TIMESTAMP, 'x')"
                    )
                )
                s.execute(text(f"UPDATE codes SET {bad} WHERE value = '10'"))


def test_a_code_cannot_name_another_owners_model(registry):
    from sqlalchemy.exc import IntegrityError

    from advsig.registry.allocation import allocate_code
    from advsig.registry.models import Code, OwnerModel

    add_owner(registry, "acme")
    add_owner(registry, "beta")
    allocate_code(registry, "acme", kit="k", num_bits=16, model="gen", seed=0)
    with pytest.raises(IntegrityError), registry.write() as s:
        model = s.scalar(select(OwnerModel).where(OwnerModel.name == "gen"))
        beta = s.scalar(select(Owner).where(Owner.name == "beta"))
        s.add(Code(owner_id=beta.id, model_id=model.id, kit="k", num_bits=16, value="ffff",
                   min_distance=1, strategy="random", status="active", assigned_by="x"))  # fmt: skip
        s.flush()


def test_unknown_revision_is_refused(sqlite_url: str):
    with open_registry(sqlite_url) as reg, reg.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RegistryError, match="'9999', unknown"):
        open_registry(sqlite_url)


def test_default_url_comes_from_env_or_user_data(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(dbmod.ENV_VAR, f"sqlite:///{tmp_path / 'env.db'}")
    assert normalize_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv(dbmod.ENV_VAR)
    monkeypatch.setenv("ADVSIG_DATA_DIR", str(tmp_path / "data"))
    assert normalize_url(None) == f"sqlite:///{tmp_path / 'data' / dbmod.DB_FILENAME}"
    monkeypatch.delenv("ADVSIG_DATA_DIR")
    import platformdirs

    expected = Path(platformdirs.user_data_dir("advsig")) / dbmod.DB_FILENAME
    assert normalize_url(None) == f"sqlite:///{expected}"
    assert normalize_url(tmp_path / "x.db") == f"sqlite:///{(tmp_path / 'x.db').resolve()}"
    assert normalize_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"


@pytest.mark.parametrize(
    "url, match",
    [("mysql://u@h/d", "only sqlite and postgresql"), ("sqlite+nodriver:///x", "driver")],
)
def test_bad_urls_are_named(url: str, match: str):
    with pytest.raises(RegistryError, match=match) as info:
        open_registry(url)
    assert url.split("://")[0] in str(info.value)


def test_unreachable_postgres_is_one_clear_error():
    with pytest.raises(RegistryError, match="cannot open registry postgresql"):
        open_registry("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_foreign_keys_are_enforced(registry):
    from sqlalchemy.exc import IntegrityError

    add_owner(registry, "acme")
    with pytest.raises(IntegrityError), registry.write() as s:
        s.execute(
            text(
                "INSERT INTO codes (owner_id, kit, num_bits, value, min_distance, strategy, "
                "status, created_at) VALUES (999, 'k', 8, '01', 1, 'random', 'active', "
                "CURRENT_TIMESTAMP)"
            )
        )
