"""One-shot (weight-sharing) search: supernets, DARTS, PC-DARTS, GDAS, SPOS and their guard rails.

One-shot methods own a training loop, so they are not ask/tell strategies;
they register in :data:`nas.core.oneshot.ONESHOT` and are selected by the same
``strategy: {name: ...}`` field of a search config. Importing this package
registers the built-ins:

* ``darts`` -- DARTS, first or second order (``nb201``, ``darts``);
* ``pc_darts`` -- partial channel connections and edge normalisation (``nb201``, ``darts``);
* ``gdas`` -- Gumbel-softmax sampling of one op per edge (``nb201``, ``darts``);
* ``spos`` -- single-path training and evolution with inherited weights (every built-in space).

Use :func:`create_method` (which refuses bad input before training) and
:func:`run_oneshot` (train with per-epoch checkpoints, derive, report);
``nas search`` runs the same on Ray (:mod:`nas.runner.oneshot`).
"""

from __future__ import annotations

from nas.core.oneshot import ONESHOT
from nas.oneshot import differentiable, spos  # noqa: F401  (registration)
from nas.oneshot.checkpoint import load_checkpoint, save_checkpoint
from nas.oneshot.collapse import CollapseReport, detect_collapse
from nas.oneshot.memory import MemoryEstimate, check_memory, estimate_memory
from nas.oneshot.method import OneShotMethod
from nas.oneshot.ranking import RankReport, percentile, rank_correlation
from nas.oneshot.search import OneShotResult, check_options, create_method, finish, run_oneshot
from nas.oneshot.settings import OneShotSettings, parse_settings


def list_methods(pattern: str = "*") -> list[str]:
    """Names of the registered one-shot methods."""
    return ONESHOT.names(pattern)


__all__ = [
    "ONESHOT",
    "CollapseReport",
    "MemoryEstimate",
    "OneShotMethod",
    "OneShotResult",
    "OneShotSettings",
    "RankReport",
    "check_memory",
    "check_options",
    "create_method",
    "detect_collapse",
    "estimate_memory",
    "finish",
    "list_methods",
    "load_checkpoint",
    "parse_settings",
    "percentile",
    "rank_correlation",
    "run_oneshot",
    "save_checkpoint",
]
