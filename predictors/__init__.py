"""Performance predictors, zero-cost proxies and latency predictors.

Importing this package registers the built-in predictors into
:data:`nas.core.PREDICTORS`: ``mlp_ensemble``, ``gbt``, ``rf``, ``gp``
(accuracy-style predictors over the space's encoding plus optional injected
features), ``recipe_mlp`` (FBNetV3's proxy-pre-trained MLP over architecture and
training recipe), ``wl_gp`` (NAS-BOWL's Weisfeiler-Lehman-kernel GP on the
architecture graph), ``gcn`` (a graph convolutional network on the
computational graph) and ``latency_lut``, ``latency_learned`` (latency). The zero-cost
proxies live in :data:`predictors.zero_cost.PROXIES`; the ``zero_cost``
evaluator in :mod:`predictors.evaluators`, which the evaluator registry
imports itself.
"""

from __future__ import annotations

from predictors import gcn, gp, joint, latency, mlp, trees, wl_gp  # noqa: F401  (registration)
from predictors.combine import rank_vote
from predictors.metrics import kendall_tau, rank_metrics, spearman, top_k_precision
from predictors.zero_cost import PROXIES, list_proxies, score, score_arch

__all__ = [
    "PROXIES",
    "kendall_tau",
    "list_proxies",
    "rank_metrics",
    "rank_vote",
    "score",
    "score_arch",
    "spearman",
    "top_k_precision",
]
