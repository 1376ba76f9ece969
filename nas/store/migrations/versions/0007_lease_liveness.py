"""One driver heartbeat: ``stale`` is read from the lease, ``studies.heartbeat_at`` is dropped.

Since 0005 a driver wrote two heartbeats per interval: the renewal of its
lease (``study_leases.heartbeat_at``, 0004) and the study's own
``studies.heartbeat_at``. Both said the same thing (this driver is alive), so
the study's ``stale`` status is now derived from the lease and the column
goes. A ``running`` study that had a heartbeat but no lease (its driver died
before leases existed, or 0005 gave it its creation time) gets a lease of a
dead driver (host ``""``, pid 0) with that heartbeat, so it still reads
``stale`` and the next ``nas search`` takes it over at once.

The downgrade adds the column back, filled from the lease of each
``running`` study, and removes the leases this upgrade made up.

Revision ID: 0007_lease_liveness
Revises: 0006_mask_config_passwords
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.schema import UTCDateTime

revision = "0007_lease_liveness"
down_revision = "0006_mask_config_passwords"
branch_labels = None
depends_on = None

#: The token of the leases this revision makes up for running studies without one.
MIGRATED = "migrated-from-studies-heartbeat"

_studies = sa.table("studies", sa.column("id"), sa.column("status"), sa.column("heartbeat_at", UTCDateTime))
_leases = sa.table(
    "study_leases",
    sa.column("study_id"),
    sa.column("token"),
    sa.column("host"),
    sa.column("pid"),
    sa.column("acquired_at", UTCDateTime),
    sa.column("heartbeat_at", UTCDateTime),
)


def upgrade() -> None:
    leased = sa.select(_leases.c.study_id).where(_leases.c.study_id == _studies.c.id).exists()
    orphans = sa.select(
        _studies.c.id,
        sa.literal(MIGRATED),
        sa.literal(""),
        sa.literal(0),
        _studies.c.heartbeat_at,
        _studies.c.heartbeat_at,
    ).where(_studies.c.status == "running", _studies.c.heartbeat_at.is_not(None), ~leased)
    op.execute(
        _leases.insert().from_select(
            ["study_id", "token", "host", "pid", "acquired_at", "heartbeat_at"], orphans
        )
    )
    # A plain ALTER TABLE, also on SQLite (3.35+): a batch "move and copy" would drop the old
    # studies table, and with foreign keys on, that deletes every trial referring to it.
    op.drop_column("studies", "heartbeat_at")


def downgrade() -> None:
    op.add_column("studies", sa.Column("heartbeat_at", UTCDateTime, nullable=True))
    beat = sa.select(_leases.c.heartbeat_at).where(_leases.c.study_id == _studies.c.id).scalar_subquery()
    op.execute(_studies.update().where(_studies.c.status == "running").values(heartbeat_at=beat))
    op.execute(_leases.delete().where(_leases.c.token == MIGRATED))
