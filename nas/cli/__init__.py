"""The ``nas`` command line.

Each command group lives in a module of this package named for what it
handles (``spaces``, ``store``, ``bench``, ...); this module only assembles
them. Platform errors are shown as one clear line (exit code 2), not a
traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from nas import __version__
from nas.core.errors import NASError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NASError as exc:
            if ctx.params.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nas")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
def main(debug: bool) -> None:
    """Neural architecture search: spaces, strategies, Ray-distributed trials, a SQL trial store."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    # Each module adds its commands to ``main``; imported here so that
    # ``nas --help`` lists every command.
    from nas.cli import (
        bench,  # noqa: F401
        bench_predictors,  # noqa: F401  (adds predictors/proxies to the bench group)
        dashboard,  # noqa: F401
        export,  # noqa: F401
        search,  # noqa: F401
        spaces,  # noqa: F401
        store,  # noqa: F401
    )


_register()
