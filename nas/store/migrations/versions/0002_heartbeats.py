"""Worker heartbeats: ``trials.heartbeat_at`` and the index that finds stale trials.

A driver that starts after a crash marks RUNNING trials whose worker stopped
beating as FAIL; the index ``(study_id, state, heartbeat_at)`` makes that a
range scan. Existing RUNNING trials get their start time as last heartbeat,
so they become stale (and are re-queued) rather than living forever.

Revision ID: 0002_heartbeats
Revises: 0001_base
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.schema import UTCDateTime

revision = "0002_heartbeats"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime, nullable=True))
    trials = sa.table("trials", sa.column("heartbeat_at"), sa.column("started_at"), sa.column("state"))
    op.execute(trials.update().where(trials.c.state == "RUNNING").values(heartbeat_at=trials.c.started_at))
    op.create_index("ix_trials_study_id_state_heartbeat_at", "trials", ["study_id", "state", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_trials_study_id_state_heartbeat_at", table_name="trials")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("heartbeat_at")
