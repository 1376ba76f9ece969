"""The hybrid space's one-shot view: a single-path supernet (SPOS) and an elastic one (BigNAS).

There are no cells, so the collapse detector does not apply, and no tabular
benchmark to rank against. No device latency table either: ``nas latency
profile`` measures this machine's table per block *context*
(:mod:`search_spaces.hybrid.latency`), for ``nas specialize --device local``.
"""

from __future__ import annotations

from typing import Any

from nas.core.oneshot import ELASTIC, OneShotView


def build(space: Any, *, num_classes: int, input_shape: tuple[int, int, int], **_: Any) -> Any:
    """Build the supernet (imports torch only here); its widths come from the space's options."""
    from search_spaces.hybrid.supernet import HybridSupernet

    return HybridSupernet(space, num_classes, input_shape)


def build_elastic(space: Any, *, num_classes: int, input_shape: tuple[int, int, int], **_: Any) -> Any:
    """Build the elastic supernet (widths by channel slicing; see :mod:`search_spaces.hybrid.elastic`)."""
    from search_spaces.hybrid.elastic import HybridElasticSupernet

    return HybridElasticSupernet(space, num_classes, input_shape)


def latency_parts(space: Any, **kwargs: Any) -> Any:
    """Every reachable block context, the stem and the heads (imports torch only here)."""
    from search_spaces.hybrid.latency import latency_parts as parts

    return parts(space, **kwargs)


def latency_keys(space: Any, arch: Any) -> Any:
    """The context of each part ``arch``'s network runs (:func:`search_spaces.hybrid.latency.latency_keys`)."""
    from search_spaces.hybrid.latency import latency_keys as keys

    return keys(space, arch)


def latency_cheapest(space: Any, cost: Any) -> Any:
    """The fastest architecture of a context table, exactly (:func:`search_spaces.hybrid.latency.latency_cheapest`)."""
    from search_spaces.hybrid.latency import latency_cheapest as fastest

    return fastest(space, cost)


VIEW = OneShotView(
    kind=ELASTIC,
    build=build,
    elastic=build_elastic,
    shrink_advice="a smaller space (e.g. a lower base_width or fewer blocks)",
    latency_parts=latency_parts,
    latency_keys=latency_keys,
    latency_cheapest=latency_cheapest,
)

__all__ = ["VIEW"]
