"""Supernet builders per search space."""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.core.space import SearchSpace
from nas.oneshot.supernet import Supernet

#: Spaces with a cell supernet (alpha on every edge) and with a single-path supernet.
CELL_SPACES: tuple[str, ...] = ("nb201", "darts")
SINGLE_PATH_SPACES: tuple[str, ...] = ("fbnet", "hybrid")


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
    if space.name in CELL_SPACES:
        width = channels if channels is not None else space.channels  # type: ignore[attr-defined]
        depth = cells if cells is not None else space.cells  # type: ignore[attr-defined]
        check_partial(space.name, width, partial)
        if space.name == "nb201":
            from nas.oneshot.supernets.nb201 import Nb201Supernet

            return Nb201Supernet(space, num_classes, input_shape, width, depth, partial, affine)  # type: ignore[arg-type]
        from nas.oneshot.supernets.darts import DartsSupernet

        return DartsSupernet(space, num_classes, input_shape, width, depth, partial, affine)  # type: ignore[arg-type]
    if space.name in SINGLE_PATH_SPACES:
        if channels is not None or cells is not None or partial != 1:
            raise ConfigError(
                f"the {space.name} supernet takes its widths and depth from the space options; "
                "channels, cells and partial_channels apply to the cell spaces "
                f"{', '.join(CELL_SPACES)} only"
            )
        from nas.oneshot.supernets.single_path import FbnetSupernet, HybridSupernet

        cls = FbnetSupernet if space.name == "fbnet" else HybridSupernet
        return cls(space, num_classes, input_shape)  # type: ignore[arg-type]
    raise ConfigError(
        f"no supernet for space {space.name!r}; one-shot search supports "
        f"{', '.join(CELL_SPACES + SINGLE_PATH_SPACES)}"
    )


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


__all__ = ["CELL_SPACES", "SINGLE_PATH_SPACES", "build_supernet", "check_partial"]
