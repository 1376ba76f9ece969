"""The ``nas`` command line.

Each command group lives in a module of this package named for what it
handles (``spaces``, ``store``, ``bench``, ...); this module only assembles
them. Platform errors are shown as one clear line (exit code 2), not a
traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

from nas.cli.root import main


def _register() -> None:
    # Each module adds its commands to ``main``; imported here so that
    # ``nas --help`` lists every command.
    from nas.cli import (
        audit,  # noqa: F401
        bench,  # noqa: F401
        bench_predictors,  # noqa: F401  (adds predictors/proxies to the bench group)
        dashboard,  # noqa: F401
        export,  # noqa: F401
        search,  # noqa: F401
        shards,  # noqa: F401
        similar,  # noqa: F401
        spaces,  # noqa: F401
        specialize,  # noqa: F401
        store,  # noqa: F401
    )


_register()

__all__ = ["main"]
