"""Command-line options several commands share, defined once so their help agrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nas.store.url import DEFAULT_URL, ENV_VAR

#: Help text: the URL forms the store accepts (``nas.store.url`` holds the rule).
_STORE_URL = "sqlite:///PATH or postgresql+psycopg://..."


def storage_option(fallback: str = "") -> Callable[[Any], Any]:
    """``--storage URL``; ``fallback`` names what the command uses before the default, if anything."""
    default = f"${ENV_VAR}, {fallback + ', ' if fallback else ''}else {DEFAULT_URL}"
    return click.option(
        "--storage", metavar="URL", default=None, help=f"Store URL ({_STORE_URL}); default {default}."
    )


__all__ = ["storage_option"]
