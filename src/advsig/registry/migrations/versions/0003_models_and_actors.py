"""Models of owners, codes assigned to a model, and who created, assigned or revoked each row.

Rows written before this revision get ``created_by`` / ``assigned_by`` = 'unknown'.

SQLite cannot add a foreign key to a table, so ``codes`` is rebuilt (Alembic's batch mode) from
the explicit 0002 definition below rather than from reflection, which would drop its CHECK
constraints. ``owners`` is only extended with ADD COLUMN: rebuilding it would drop a table that
``codes`` references, which SQLite refuses while foreign keys are enforced.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNKNOWN = "unknown"


def _codes_at_0002() -> sa.Table:
    """The codes table exactly as revision 0001 created it (0002 did not touch it)."""
    meta = sa.MetaData()
    sa.Table("owners", meta, sa.Column("id", sa.Integer(), primary_key=True))
    codes = sa.Table(
        "codes",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("owners.id", ondelete="RESTRICT", name="fk_codes_owner_id"),
            nullable=False,
        ),
        sa.Column("kit", sa.String(500), nullable=False),
        sa.Column("num_bits", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("min_distance", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("kit", "value", name="uq_codes_kit_value"),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="ck_codes_status"),
        sa.CheckConstraint("num_bits > 0", name="ck_codes_num_bits"),
    )
    sa.Index("ix_codes_owner_id", codes.c.owner_id)
    sa.Index("ix_codes_kit", codes.c.kit)
    return codes


def upgrade() -> None:
    op.add_column(
        "owners",
        sa.Column("created_by", sa.String(200), nullable=False, server_default=UNKNOWN),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("owners.id", ondelete="RESTRICT", name="fk_models_owner_id"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=UNKNOWN),
        sa.UniqueConstraint("owner_id", "name", name="uq_models_owner_id_name"),
        sa.UniqueConstraint("id", "owner_id", name="uq_models_id_owner_id"),
    )
    op.create_index("ix_models_owner_id", "models", ["owner_id"])
    with op.batch_alter_table("codes", copy_from=_codes_at_0002()) as batch:
        batch.add_column(sa.Column("model_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("assigned_by", sa.String(200), nullable=False, server_default=UNKNOWN)
        )
        batch.add_column(sa.Column("revoked_by", sa.String(200), nullable=True))
        batch.create_foreign_key(
            "fk_codes_model_id_owner_id", "models", ["model_id", "owner_id"],
            ["id", "owner_id"], ondelete="RESTRICT",
        )  # fmt: skip
        batch.create_index("ix_codes_model_id", ["model_id"])


def downgrade() -> None:
    with op.batch_alter_table("codes") as batch:
        batch.drop_index("ix_codes_model_id")
        batch.drop_constraint("fk_codes_model_id_owner_id", type_="foreignkey")
        batch.drop_column("revoked_by")
        batch.drop_column("assigned_by")
        batch.drop_column("model_id")
    op.drop_index("ix_models_owner_id", table_name="models")
    op.drop_table("models")
    op.drop_column("owners", "created_by")
