"""The C2PA manifest each code was last signed with, for provenance after metadata is stripped.

Two nullable columns on ``codes``: ``c2pa_manifest`` (the manifest store JSON, ``Text`` on
both backends) and ``c2pa_manifest_at`` (when it was recorded). Existing rows get NULL. Plain
ADD COLUMN, which SQLite supports for nullable columns, so no table rebuild is needed (and the
CHECK constraints of ``codes`` are left alone).

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("codes", sa.Column("c2pa_manifest", sa.Text(), nullable=True))
    op.add_column("codes", sa.Column("c2pa_manifest_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # DROP COLUMN is native in SQLite >= 3.35 and PostgreSQL; neither column has a constraint.
    op.drop_column("codes", "c2pa_manifest_at")
    op.drop_column("codes", "c2pa_manifest")
