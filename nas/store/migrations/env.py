"""Alembic environment of the trial store.

Alembic is driven programmatically by :mod:`nas.store.migrate`, which passes
an open connection (already inside a transaction holding the migration lock)
in ``config.attributes["connection"]``; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from alembic import context

from nas.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached if someone runs the alembic CLI directly
    raise RuntimeError("run migrations with `nas db upgrade --storage URL`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
