"""Driver heartbeats: ``studies.heartbeat_at``, so a dead search reads as ``stale``.

Until 0004 a study stayed ``running`` after its driver was killed, and nobody
could tell a live search from a dead one. A driver now refreshes the study's
``heartbeat_at`` while it runs; a ``running`` study whose heartbeat is older
than the timeout is read as ``stale`` (derived, never stored). Existing
``running`` studies get their creation time as last heartbeat, so they read
as ``stale`` until a driver resumes them rather than ``running`` forever
(as 0002 did for RUNNING trials). The downgrade drops the column.

Revision ID: 0005_study_heartbeat
Revises: 0004_comparability_lease
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.schema import UTCDateTime

revision = "0005_study_heartbeat"
down_revision = "0004_comparability_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("studies", sa.Column("heartbeat_at", UTCDateTime, nullable=True))
    studies = sa.table("studies", sa.column("heartbeat_at"), sa.column("created_at"), sa.column("status"))
    op.execute(
        studies.update().where(studies.c.status == "running").values(heartbeat_at=studies.c.created_at)
    )


def downgrade() -> None:
    # A plain ALTER TABLE, also on SQLite (3.35+): a batch "move and copy" would drop the old
    # studies table, and with foreign keys on, that deletes every trial referring to it.
    op.drop_column("studies", "heartbeat_at")
