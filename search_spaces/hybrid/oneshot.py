"""The hybrid space's one-shot view: a single-path supernet (SPOS) and an elastic one (BigNAS).

There are no cells, so the collapse detector does not apply, and no tabular
benchmark to rank against.
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


VIEW = OneShotView(
    kind=ELASTIC,
    build=build,
    elastic=build_elastic,
    shrink_advice="a smaller space (e.g. a lower base_width or fewer blocks)",
)

__all__ = ["VIEW"]
