"""One-shot (weight-sharing) search: the DARTS family, SPOS, BigNAS, their loop and guard rails.

One-shot methods own a training loop, so they are not ask/tell strategies;
they register in :data:`nas.core.oneshot.ONESHOT` and are selected by the same
``strategy: {name: ...}`` field of a search config. The built-ins are declared
by :mod:`nas.oneshot.catalog` (torch-free) and each lives in one module:

* ``darts`` -- DARTS, first or second order (spaces with a cell supernet);
* ``pc_darts`` -- partial channel connections and edge normalisation (cell supernets);
* ``gdas`` -- Gumbel-softmax sampling of one op per edge (cell supernets);
* ``drnas``, ``beta_darts``, ``sharpdarts``, ``dropnas``, ``robust_darts``, ``gold_nas``,
  ``sd_darts``, ``rarts``, ``amended_darts``, ``d_darts`` -- hooks on the same alpha loop
  (:mod:`nas.oneshot.differentiable`; see ``docs/oneshot.md``);
* ``dnas``, ``rc_darts`` -- latency or parameter budgets on the same loop (FBNet's latency loss,
  RC-DARTS' projection; :mod:`nas.oneshot.resource`), on cell supernets and fbnet's per-layer alpha;
* ``spos`` -- single-path training and evolution with inherited weights (every space with a supernet);
* ``smash`` -- a hypernetwork generating the weights of sampled architectures (cell supernets);
* ``bignas`` -- sandwich rule and in-place distillation of an elastic supernet (spaces with one: fbnet, hybrid);
* ``attentivenas`` -- ``bignas``' step with its random sub-networks replaced by the best or worst
  of a few candidates of one size, ranked by their batch loss.

Which spaces a method searches follows from the space's one-shot view
(:class:`nas.core.oneshot.OneShotView`), never from its name. Use
:func:`create_method` (which refuses bad input before training) and
:func:`run_oneshot` (train with per-epoch checkpoints, derive, report);
``nas search`` runs the same on Ray (:mod:`nas.runner.oneshot`).

This package's ``__init__`` imports no torch: the names below are loaded on
first use, so ``from nas.oneshot import catalog`` and ``'darts' in ONESHOT``
stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.core.oneshot import ONESHOT

#: Public name -> the module defining it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "load_checkpoint": "nas.oneshot.checkpoint",
    "save_checkpoint": "nas.oneshot.checkpoint",
    "CollapseReport": "nas.oneshot.collapse",
    "detect_collapse": "nas.oneshot.collapse",
    "MemoryEstimate": "nas.oneshot.memory",
    "check_memory": "nas.oneshot.memory",
    "estimate_memory": "nas.oneshot.memory",
    "OneShotMethod": "nas.oneshot.method",
    "RankReport": "nas.oneshot.ranking",
    "percentile": "nas.oneshot.ranking",
    "rank_correlation": "nas.oneshot.ranking",
    "OneShotResult": "nas.oneshot.loop",
    "check_options": "nas.oneshot.loop",
    "create_method": "nas.oneshot.loop",
    "finish": "nas.oneshot.loop",
    "run_oneshot": "nas.oneshot.loop",
    "OneShotSettings": "nas.oneshot.settings",
    "parse_settings": "nas.oneshot.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas.oneshot' has no attribute {name!r}")


def list_methods(pattern: str = "*") -> list[str]:
    """Names of the registered one-shot methods."""
    return ONESHOT.names(pattern)


__all__ = ["ONESHOT", "list_methods", *_LAZY]
