"""The root ``nas`` command group: one clear line (exit 2) for platform errors, ``--debug`` for tracebacks.

It lives apart from ``nas/cli/__init__.py`` so that each command module can
attach itself to ``main`` without importing the package that imports it
(no import cycle).
"""

from __future__ import annotations

import logging
import sys

import click

from nas import __version__
from nas.core.errors import NASError, shorten


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NASError as exc:
            if ctx.params.get("debug"):
                raise
            click.secho(f"error: {shorten(str(exc))}", fg="red", err=True)
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
