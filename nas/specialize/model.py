"""The latency model of a device: an additive lookup table (see :mod:`nas.specialize.latency`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace

#: The device name of this machine (ONNX Runtime, one thread, batch 1).
LOCAL = "local"


@dataclass(frozen=True)
class LatencyModel:
    """An additive latency model: ``constant + sum over decisions of table[decision][value]`` (ms)."""

    device: str
    table: Mapping[str, Mapping[Any, float]]
    constant: float
    #: Where the figures come from (the data file, or the profile's cache file).
    source: str

    def predict(self, space: SearchSpace, arch: Architecture) -> float:
        """Predicted batch-1 latency (ms) of ``arch``'s canonical form."""
        canonical = space.canonical(arch)
        return self.constant + sum(float(self.table[name][canonical[name]]) for name in self.table)

    def fastest(self, space: SearchSpace) -> tuple[Architecture, float]:
        """The fastest sub-network the model knows, and its predicted latency.

        The cheapest value per decision is the exact minimum of an additive
        model; its canonical form (depth-skips moved) may cost a little more
        where skips cost differently per layer, so the smaller of the two
        predictions of architectures that exist is returned.
        """
        cheapest = space.make(
            {name: min(values, key=values.__getitem__) for name, values in self.table.items()}
        )
        return min(
            ((a, self.predict(space, a)) for a in (cheapest, space.canonical(cheapest))), key=lambda p: p[1]
        )


__all__ = ["LOCAL", "LatencyModel"]
