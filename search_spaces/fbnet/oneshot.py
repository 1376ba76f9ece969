"""FBNet's one-shot view: a single-path supernet (SPOS, and DNAS with a row of alpha per layer) and an elastic one (BigNAS).

There are no cells, so the collapse detector does not apply, and no tabular
benchmark to rank against. HELP's latency table (27 devices) is what
latency-aware methods fit their per-block lookup table on.
"""

from __future__ import annotations

from typing import Any

from nas.core.oneshot import ELASTIC, OneShotView
from nas.data.paths import FBNET_LATENCY


def build(space: Any, *, num_classes: int, input_shape: tuple[int, int, int], **_: Any) -> Any:
    """Build the single-path supernet (imports torch only here); its widths come from the space's options."""
    from search_spaces.fbnet.supernet import FbnetSupernet

    return FbnetSupernet(space, num_classes, input_shape)


def build_elastic(space: Any, *, num_classes: int, input_shape: tuple[int, int, int], **_: Any) -> Any:
    """Build the elastic supernet (nested kernels, sliced expansions, depth by trailing skips)."""
    from search_spaces.fbnet.elastic import FbnetElasticSupernet

    return FbnetElasticSupernet(space, num_classes, input_shape)


def latency_parts(space: Any, **kwargs: Any) -> Any:
    """The per-block latency parts (imports torch only here; see :mod:`search_spaces.fbnet.latency`)."""
    from search_spaces.fbnet.latency import latency_parts as parts

    return parts(space, **kwargs)


VIEW = OneShotView(
    kind=ELASTIC,
    build=build,
    elastic=build_elastic,
    shrink_advice="a smaller space (e.g. a lower width_mult)",
    latency_table=str(FBNET_LATENCY),
    latency_parts=latency_parts,
    layer_alpha=True,
)

__all__ = ["VIEW"]
