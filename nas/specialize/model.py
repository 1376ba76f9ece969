"""The latency model of a device: a lookup table summed along a network (see :mod:`nas.specialize.latency`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError
from nas.core.oneshot import oneshot_view
from nas.core.space import SearchSpace

#: The device name of this machine (ONNX Runtime, one thread, batch 1).
LOCAL = "local"


@dataclass(frozen=True)
class LatencyModel:
    """``constant + sum over the parts a network runs of table[part][key]`` (ms).

    Additive (``context`` False, FBNet's table): the parts are the decisions
    and the keys their values, so a decision's cost is its own. With
    ``context`` the parts and keys are the space's (its one-shot view's
    ``latency_keys``: hybrid prices a block by its input width and resolution
    too, which the blocks before it decide), so a decision's cost depends on
    the others and the fastest sub-network comes from the space's
    ``latency_cheapest``.
    """

    device: str
    table: Mapping[str, Mapping[Any, float]]
    constant: float
    #: Where the figures come from (the data file, or the profile's cache file).
    source: str
    context: bool = False

    def keys(self, space: SearchSpace, arch: Architecture) -> Mapping[str, Any]:
        """``{part: key}`` of the table entries ``arch``'s canonical form runs."""
        canonical = space.canonical(arch)
        if not self.context:
            return {name: canonical[name] for name in self.table}
        view = oneshot_view(space)
        if view is None or view.latency_keys is None:
            raise ConfigError(f"the {space.name} space does not name the contexts of its latency table parts")
        return view.latency_keys(space, canonical)

    def predict(self, space: SearchSpace, arch: Architecture) -> float:
        """Predicted batch-1 latency (ms) of ``arch``'s canonical form."""
        total = self.constant
        for part, key in self.keys(space, arch).items():
            try:
                total += float(self.table[part][key])
            except KeyError:
                raise ConfigError(
                    f"the {self.device} latency table ({self.source}) has no entry for part {part!r} in "
                    f"context {key!r} of {space.format(arch)}; rebuild it (nas latency profile STUDY --force)"
                ) from None
        return total

    def fastest(self, space: SearchSpace) -> tuple[Architecture, float]:
        """The fastest sub-network the model knows, and its predicted latency.

        The cheapest value per decision is the exact minimum of an additive
        model; its canonical form (depth-skips moved) may cost a little more
        where skips cost differently per layer, so the smaller of the two
        predictions of architectures that exist is returned. A context model
        asks the space, which knows how contexts follow from decisions.
        """
        if self.context:
            view = oneshot_view(space)
            assert view is not None and view.latency_cheapest is not None  # keys() would have refused
            arch, _ = view.latency_cheapest(space, lambda part, key: float(self.table[part][key]))
            return arch, self.predict(space, arch)
        cheapest = space.make(
            {name: min(values, key=values.__getitem__) for name, values in self.table.items()}
        )
        return min(
            ((a, self.predict(space, a)) for a in (cheapest, space.canonical(cheapest))), key=lambda p: p[1]
        )

    def cheaper(self, space: SearchSpace, arch: Architecture) -> dict[str, list[Any]]:
        """``{decision: [values]}``: the single-decision changes of ``arch`` predicted to cost less.

        Additive: the values with a lower entry. With context a change moves
        other parts' costs too, so each valid change is predicted whole.
        """
        if not self.context:
            return {
                name: cheaper
                for name, values in self.table.items()
                if (cheaper := [v for v in values if values[v] < values[arch[name]]])
            }
        now = self.predict(space, arch)
        decisions = arch.as_dict()
        moves: dict[str, list[Any]] = {}
        for name, values in space.choices().items():
            for value in values:
                if value == decisions[name]:
                    continue
                try:
                    changed = space.make({**decisions, name: value})
                except ArchitectureError:  # e.g. one down-sampling too many
                    continue
                if self.predict(space, changed) < now:
                    moves.setdefault(name, []).append(value)
        return moves


__all__ = ["LOCAL", "LatencyModel"]
