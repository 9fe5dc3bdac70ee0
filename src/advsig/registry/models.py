"""The registry's tables: owners, their models, the codes assigned to them, and API keys.

The schema is created and changed only by the Alembic migrations in ``migrations/versions``;
these classes must match the latest migration (a test compares them).

A code belongs to one kit: the bits mean something only to the detector that reads them, so the
same bits may be registered under two kits, but never twice under one (UNIQUE(kit, value)).

A code belongs to an owner, and optionally to one of that owner's models (a code may identify a
model, or the customer a model was sold to). The composite foreign key (model_id, owner_id) ->
models(id, owner_id) makes the database refuse a code whose model belongs to another owner.

Every row records when it was made and by whom (``created_by`` / ``assigned_by`` / ``revoked_by``:
the OS user for the CLI, ``api-key:<name>`` for the HTTP service).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

CODE_STATUSES = ("active", "revoked")
ROLES = ("detect", "admin")
MAX_ACTOR = 200  # length of created_by / assigned_by / revoked_by
UNKNOWN_ACTOR = "unknown"  # rows written before revision 0003 recorded no one


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: registry times are UTC-aware")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Owner(Base):
    """Someone codes are issued to: a model publisher, a team, a customer."""

    __tablename__ = "owners"
    __table_args__ = (UniqueConstraint("name", name="uq_owners_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(MAX_ACTOR), server_default=UNKNOWN_ACTOR)

    models: Mapped[list[OwnerModel]] = relationship(back_populates="owner")
    codes: Mapped[list[Code]] = relationship(back_populates="owner")

    def __repr__(self) -> str:
        return f"Owner(name={self.name!r})"


class OwnerModel(Base):
    """A model of an owner (a generator, a product version...) that codes can identify."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_models_owner_id_name"),
        UniqueConstraint("id", "owner_id", name="uq_models_id_owner_id"),  # target of codes' FK
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("owners.id", ondelete="RESTRICT", name="fk_models_owner_id"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(MAX_ACTOR), server_default=UNKNOWN_ACTOR)

    owner: Mapped[Owner] = relationship(back_populates="models")
    codes: Mapped[list[Code]] = relationship(
        back_populates="model", primaryjoin="Code.model_id == OwnerModel.id",
        foreign_keys="Code.model_id",
    )  # fmt: skip

    def __repr__(self) -> str:
        return f"OwnerModel(name={self.name!r})"


class Code(Base):
    """One allocated code: ``value`` is lowercase hex, zero-padded to ceil(num_bits / 4) digits.

    Revoked codes stay in the table: images signed with them still exist, so no new owner may
    receive a code close to them, and attribution still names who held them.
    """

    __tablename__ = "codes"
    __table_args__ = (
        UniqueConstraint("kit", "value", name="uq_codes_kit_value"),
        CheckConstraint("status IN ('active', 'revoked')", name="ck_codes_status"),
        CheckConstraint("num_bits > 0", name="ck_codes_num_bits"),
        ForeignKeyConstraint(
            ["model_id", "owner_id"],
            ["models.id", "models.owner_id"],
            ondelete="RESTRICT",
            name="fk_codes_model_id_owner_id",
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("owners.id", ondelete="RESTRICT", name="fk_codes_owner_id"), index=True
    )
    model_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kit: Mapped[str] = mapped_column(String(500), index=True)
    num_bits: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(String(64))
    min_distance: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    assigned_by: Mapped[str] = mapped_column(String(MAX_ACTOR), server_default=UNKNOWN_ACTOR)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(MAX_ACTOR))
    # The C2PA manifest store (JSON, as c2pa read it back) of the last image signed with this
    # code by `advsig sign --c2pa`: provenance recoverable from the pixels once metadata is gone.
    c2pa_manifest: Mapped[str | None] = mapped_column(Text())
    c2pa_manifest_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    owner: Mapped[Owner] = relationship(back_populates="codes", foreign_keys=[owner_id])
    model: Mapped[OwnerModel | None] = relationship(
        back_populates="codes", primaryjoin="Code.model_id == OwnerModel.id",
        foreign_keys=[model_id],
    )  # fmt: skip

    def __repr__(self) -> str:
        return f"Code(kit={self.kit!r}, value={self.value!r}, status={self.status!r})"


class ApiKey(Base):
    """A key of the HTTP service. Only a salted scrypt hash of the secret is stored.

    The key handed to the client is ``advsig_<key_id>_<secret>``: ``key_id`` finds the row
    without trying every hash, the secret is checked against ``secret_hash``.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("name", name="uq_api_keys_name"),
        UniqueConstraint("key_id", name="uq_api_keys_key_id"),
        CheckConstraint("role IN ('detect', 'admin')", name="ck_api_keys_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(10))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, role={self.role!r})"
