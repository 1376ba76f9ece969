"""Search-space plugins: NAS-Bench-201, DARTS, FBNet and a hybrid CNN-transformer.

``get_space(name, **options)`` creates a space; ``list_spaces()`` names them.
A new space is added by subclassing :class:`search_spaces.base.TorchSpace` and
decorating it with ``@SPACES.register("name")``; the contract tests in
``tests/test_space_contract.py`` then cover it automatically. Each built-in
space is one package (``space``, ``model``, ``supernet``, ``oneshot``
modules); a space joins one-shot search by carrying a
:class:`nas.core.oneshot.OneShotView` as ``oneshot_view``. Importing this
package imports no torch: the networks are built on demand.
"""

from __future__ import annotations

from typing import Any

from nas.core import SPACES, SearchSpace
from nas.core.space import create_space

# Importing the modules registers the built-in spaces.
from search_spaces import (
    darts,  # noqa: F401,E402
    fbnet,  # noqa: F401,E402
    hybrid,  # noqa: F401,E402
    nb201,  # noqa: F401,E402
)


def list_spaces(pattern: str = "*") -> list[str]:
    """Names of the registered search spaces matching a shell-style pattern."""
    return SPACES.names(pattern)


def get_space(name: str, **options: Any) -> SearchSpace:
    """Create the space ``name`` with ``options`` (:func:`nas.core.space.create_space`)."""
    return create_space(name, **options)


__all__ = ["get_space", "list_spaces"]
