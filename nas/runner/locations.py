"""Which store a search writes to: the storage-URL rule (artifacts: :func:`nas.store.url.artifacts_root`).

One rule for every kind of search (black-box or one-shot): ``--storage``,
then the environment variable :data:`nas.store.url.ENV_VAR`, then the
config's ``storage:``, then the store's default.
"""

from __future__ import annotations

import os

from nas.store.url import ENV_VAR, resolve_storage_url


def storage_url(flag: str | None, configured: str | None) -> str:
    """The store URL of a search: ``flag`` (``--storage``), ``$NAS_STORAGE``, ``configured``, default."""
    return resolve_storage_url(flag or os.environ.get(ENV_VAR) or configured)


__all__ = ["storage_url"]
