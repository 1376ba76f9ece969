"""System attributes: ``trials.system_attrs`` for the platform's own bookkeeping.

Until 0002 the platform kept its bookkeeping as magic keys in the users'
``user_attrs``: ``retry_of`` (a re-queued copy names the trial it retries),
``kind``, ``method`` and ``derived_from`` (one-shot supernets and the cells
derived from them), ``reused_from`` (a result copied from an earlier trial)
and ``workers`` (the worker processes that ran a trial). A user attribute
of the same name would have been mistaken for them. This revision adds a
JSON column ``system_attrs`` (``{}`` for every existing trial) and moves
those keys, where a trial has them, out of ``user_attrs`` into it; every
other user attribute stays where it is. The downgrade moves every system
attribute back into ``user_attrs`` (on a name clash the system value wins,
as it did before) and drops the column.

Revision ID: 0003_system_attrs
Revises: 0002_heartbeats
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0003_system_attrs"
down_revision = "0002_heartbeats"
branch_labels = None
depends_on = None

#: The keys the platform wrote into ``user_attrs`` up to revision 0002 (frozen: this is history).
SYSTEM_KEYS = ("retry_of", "kind", "method", "derived_from", "reused_from", "workers")
#: Rows per UPDATE batch.
_BATCH = 1_000

_trials = sa.table("trials", sa.column("id"), sa.column("user_attrs"), sa.column("system_attrs"))


def upgrade() -> None:
    op.add_column("trials", sa.Column("system_attrs", sa.Text, nullable=False, server_default="{}"))
    # Only rows whose text mentions one of the keys can have it (a cheap filter before parsing).
    mentions = sa.or_(
        *(_trials.c.user_attrs.contains(json.dumps(key), autoescape=True) for key in SYSTEM_KEYS)
    )
    _rewrite(mentions, _split)


def downgrade() -> None:
    _rewrite(_trials.c.system_attrs != "{}", _join)
    # A plain ALTER TABLE, also on SQLite (3.35+): a batch "move and copy" would drop the old
    # trials table, and with foreign keys on, that deletes every row referring to it.
    op.drop_column("trials", "system_attrs")


def _split(user: dict[str, object], system: dict[str, object]) -> None:
    for key in SYSTEM_KEYS:
        if key in user:
            system[key] = user.pop(key)


def _join(user: dict[str, object], system: dict[str, object]) -> None:
    user.update(system)
    system.clear()


def _rewrite(
    where: sa.ColumnElement[bool], move: Callable[[dict[str, object], dict[str, object]], None]
) -> None:
    """Apply ``move(user_attrs, system_attrs)`` to the matching rows, in batches of updates."""
    connection = op.get_bind()
    query = sa.select(_trials.c.id, _trials.c.user_attrs, _trials.c.system_attrs).where(where)
    changed = []
    for trial_id, user_text, system_text in connection.execute(query).all():
        user, system = json.loads(user_text), json.loads(system_text)
        before = (dict(user), dict(system))
        move(user, system)
        if (user, system) != before:
            changed.append({"tid": trial_id, "user": _dumps(user), "system": _dumps(system)})
    statement = (
        _trials.update()
        .where(_trials.c.id == sa.bindparam("tid"))
        .values(user_attrs=sa.bindparam("user"), system_attrs=sa.bindparam("system"))
    )
    for start in range(0, len(changed), _BATCH):
        connection.execute(statement, changed[start : start + _BATCH])


def _dumps(value: object) -> str:
    # The store's own encoding (nas.store.validate.dumps at the time of writing): strict, compact JSON.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
