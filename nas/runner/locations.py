"""Where a search keeps things: the store URL rule and the artifact directory.

One rule for every kind of search (black-box or one-shot): ``--storage``,
then the environment variable :data:`nas.store.url.ENV_VAR`, then the
config's ``storage:``, then the store's default.
"""

from __future__ import annotations

import os
from pathlib import Path

from nas.store.url import ENV_VAR, resolve_storage_url


def storage_url(flag: str | None, configured: str | None) -> str:
    """The store URL of a search: ``flag`` (``--storage``), ``$NAS_STORAGE``, ``configured``, default."""
    return resolve_storage_url(flag or os.environ.get(ENV_VAR) or configured)


def artifacts_root(storage_url: str) -> Path:
    """Where trial artifacts go: ``$NAS_ARTIFACTS``, else beside a SQLite file, else ``./nas_artifacts``."""
    if os.environ.get("NAS_ARTIFACTS"):
        return Path(os.environ["NAS_ARTIFACTS"]).expanduser().resolve()
    prefix = "sqlite:///"
    if storage_url.startswith(prefix) and storage_url[len(prefix) :] not in ("", ":memory:"):
        db = Path(storage_url[len(prefix) :]).expanduser().resolve()
        return db.with_name(f"{db.stem}_artifacts")
    return Path("nas_artifacts").resolve()


__all__ = ["artifacts_root", "storage_url"]
