"""Owners and their codes.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_owners_name"),
    )
    op.create_table(
        "codes",
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
    op.create_index("ix_codes_owner_id", "codes", ["owner_id"])
    op.create_index("ix_codes_kit", "codes", ["kit"])


def downgrade() -> None:
    op.drop_index("ix_codes_kit", table_name="codes")
    op.drop_index("ix_codes_owner_id", table_name="codes")
    op.drop_table("codes")
    op.drop_table("owners")
