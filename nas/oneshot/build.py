"""Building a space's supernet through its one-shot view, with the generic checks.

The space owns its supernet (``space.oneshot_view.build``); this module only
resolves the width and depth of a cell supernet (strategy options
``channels``/``cells`` over the space's own), checks PC-DARTS' K against the
width, and refuses options that do not apply to a single-path supernet.
"""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.core.oneshot import CELL, ELASTIC, KINDS, OneShotView, oneshot_view, spaces_with
from nas.core.space import SearchSpace
from nas.supernet import Supernet


def require_view(space: SearchSpace) -> OneShotView:
    """The one-shot view of ``space``, or a ConfigError naming the spaces that have one."""
    view = oneshot_view(space)
    if view is None:
        raise ConfigError(
            f"no supernet for space {space.name!r}; one-shot search supports {', '.join(spaces_with(KINDS))}"
        )
    return view


def cell_width(space: SearchSpace, channels: int | None = None) -> int | None:
    """The supernet width of a cell space (``channels`` overrides the space's), None for other spaces."""
    view = oneshot_view(space)
    if view is None or view.kind != CELL:
        return None
    return int(channels if channels is not None else space.options[view.width_option])  # type: ignore[index]


def build_supernet(
    space: SearchSpace,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    channels: int | None = None,
    cells: int | None = None,
    partial: int = 1,
    affine: bool = True,
) -> Supernet:
    """The supernet of ``space`` (``channels``/``cells`` override a cell space's width and depth).

    ``partial`` > 1 builds PC-DARTS' partial-channel mixed ops; ``affine``
    False strips the affine parameters of the candidate ops' BatchNorms.
    """
    view = require_view(space)
    if view.kind == CELL:
        width = cell_width(space, channels)
        depth = cells if cells is not None else space.options[view.depth_option]  # type: ignore[index]
        check_partial(space.name, int(width), partial)  # type: ignore[arg-type]
        return view.build(
            space,
            num_classes=num_classes,
            input_shape=input_shape,
            channels=width,
            cells=int(depth),
            partial=partial,
            affine=affine,
        )
    refuse_cell_options(space, channels, cells, partial)
    return view.build(space, num_classes=num_classes, input_shape=input_shape, affine=affine)


def refuse_cell_options(
    space: SearchSpace, channels: int | None, cells: int | None, partial: int = 1
) -> None:
    """A layer-wise supernet takes its widths and depth from the space: refuse the cell-space options."""
    if channels is not None or cells is not None or partial != 1:
        raise ConfigError(
            f"the {space.name} supernet takes its widths and depth from the space options; "
            "channels, cells and partial_channels apply to the cell spaces "
            f"{', '.join(spaces_with((CELL,)))} only"
        )


def build_elastic(
    space: SearchSpace,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    channels: int | None = None,
    cells: int | None = None,
) -> Supernet:
    """The elastic supernet of ``space`` (BigNAS); its widths and depth come from the space's options."""
    view = require_view(space)
    if view.elastic is None:
        raise ConfigError(
            f"space {space.name!r} has no elastic supernet; elastic supernets exist for "
            f"{', '.join(spaces_with((ELASTIC,)))}"
        )
    refuse_cell_options(space, channels, cells)
    return view.elastic(space, num_classes=num_classes, input_shape=input_shape)


def check_partial(space: str, channels: int, partial: int) -> None:
    """PC-DARTS' K must split every stage's channels into slices of at least 2 channels."""
    if partial == 1:
        return
    if channels % partial or channels // partial < 2:
        raise ConfigError(
            f"partial_channels={partial} does not fit a {space} supernet of {channels} channels: "
            f"K must divide the channel count and leave at least 2 channels per slice; "
            f"allowed: {[k for k in range(1, channels // 2 + 1) if channels % k == 0]}"
        )


__all__ = ["build_elastic", "build_supernet", "cell_width", "check_partial", "require_view"]
