"""Passwords out of stored configs: mask every URL password in ``studies.config``.

The store now masks passwords when it writes a study's config row (the
YAML's ``storage: postgresql+psycopg://user:secret@host/db`` is kept as
``user:***@host``), but rows written by older versions still hold the plain
password, readable by anyone who can read the store (dashboard, exports,
``nas studies --json``). This revision rewrites those rows with the write
path's own rule, :func:`nas.store.url.mask_secrets`.

Why the live function and not a frozen copy (as 0003 froze its key list):
0003 encodes what the code of its time *wrote*, which is history and must
not move. Masking is a policy on data at rest: old rows must end up masked
exactly as new rows are, so one rule serves both, and a later, stricter rule
is what a database upgraded later should get. Masking is idempotent (a
masked URL stays as it is), so rows written masked are left untouched. Should
``mask_secrets`` ever be removed or change its meaning, this file must then
get a frozen copy of the rule as it was.

The downgrade does nothing: the passwords are gone and cannot be restored
(a masked config still reads as the same JSON document, so older code works).

Revision ID: 0006_mask_config_passwords
Revises: 0005_study_heartbeat
Create Date: 2026-12-03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from nas.store.url import mask_secrets

revision = "0006_mask_config_passwords"
down_revision = "0005_study_heartbeat"
branch_labels = None
depends_on = None

_studies = sa.table("studies", sa.column("id"), sa.column("config"))


def upgrade() -> None:
    connection = op.get_bind()
    # A URL with a password has "://" and "@" in it; only such rows are parsed (a cheap filter).
    query = sa.select(_studies.c.id, _studies.c.config).where(
        _studies.c.config.contains("://", autoescape=True), _studies.c.config.contains("@", autoescape=True)
    )
    changed = []
    for study_id, text in connection.execute(query).all():
        config = json.loads(text)
        masked = mask_secrets(config)
        if masked != config:
            changed.append({"sid": study_id, "config": _dumps(masked)})
    statement = (
        _studies.update().where(_studies.c.id == sa.bindparam("sid")).values(config=sa.bindparam("config"))
    )
    if changed:
        connection.execute(statement, changed)


def downgrade() -> None:
    """Nothing to undo: a masked password cannot be restored, and older code reads masked configs."""


def _dumps(value: object) -> str:
    # The store's own encoding (nas.store.validate.dumps at the time of writing): strict, compact JSON.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
