"""The registry of one-shot (weight-sharing) search methods.

One-shot methods are not ask/tell strategies: they own a training loop over a
supernet (see :mod:`nas.oneshot`). They get their own registry so that the
config can name them in the same ``strategy:`` field as the black-box
strategies without either side pretending to be the other. The registry lives
in the kernel (stdlib only) so that config validation can check a name
without importing torch; the built-in methods register when ``nas.oneshot``
is imported.
"""

from __future__ import annotations

from typing import Any

from nas.core.registry import Registry

#: Registered one-shot methods (``darts``, ``pc_darts``, ``gdas``, ``spos``).
ONESHOT: Registry[Any] = Registry("one-shot method", builtins="nas.oneshot")

__all__ = ["ONESHOT"]
