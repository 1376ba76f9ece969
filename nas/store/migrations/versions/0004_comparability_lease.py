"""Comparable reuse and one driver per study: ``studies.comparability(_key)`` and ``study_leases``.

Until 0003 a stored result was reused by any later study of the same space
for the same canonical architecture and budget, whatever data, evaluator
settings or space options produced it. This revision adds to each study the
description of what changes a result (JSON) and its hash, indexed, under
which results are reused; existing studies get NULL (no description: they
share results only with other studies without one, and the first ``nas
search`` that reopens one records its config's description).

It also adds ``study_leases``: at most one row per study naming the driver
(host, pid, token) that runs it, with the time it took the lease and its
last heartbeat. No existing study has a lease.

Revision ID: 0004_comparability_lease
Revises: 0003_system_attrs
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.schema import UTCDateTime

revision = "0004_comparability_lease"
down_revision = "0003_system_attrs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (also on SQLite): a batch "move and copy" of studies would cascade-delete trials.
    op.add_column("studies", sa.Column("comparability", sa.Text, nullable=True))
    op.add_column("studies", sa.Column("comparability_key", sa.String(64), nullable=True))
    op.create_index("ix_studies_comparability_key", "studies", ["comparability_key"])
    op.create_table(
        "study_leases",
        sa.Column("study_id", sa.Integer, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("study_id", name="pk_study_leases"),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name="fk_study_leases_study_id_studies", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("study_leases")
    op.drop_index("ix_studies_comparability_key", table_name="studies")
    op.drop_column("studies", "comparability_key")
    op.drop_column("studies", "comparability")
