"""Architecture -> feature vector, the input of every encoding-based predictor.

Predictors see architectures only through their space: the BANANAS path
encoding where the space has one (it ranks cells far better than one-hot on
NAS-Bench-201), else the one-hot ``encode``. Extra per-architecture features,
typically zero-cost proxy scores, are injected as a mapping or a callable so
the predictor never computes them itself (NAS-Bench-Suite-Zero shows that
adding them to an encoding is the cheapest large gain at small training sizes).

``graph_features=True`` appends GENNAPE-style statistics of the computational
graph (:mod:`predictors.graph`: operation counts after dead operations are
pruned, path depth, degrees). Unlike an encoding of the genotype they describe
what the network computes, and they mean the same thing in every space, so
every predictor can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np

from nas.core import Architecture, ConfigError, SearchSpace
from predictors.graph import GraphFeaturizer

Encoding = Literal["auto", "path", "onehot", "both", "none"]
ENCODINGS: tuple[str, ...] = ("auto", "path", "onehot", "both", "none")

#: Extra features per architecture: a mapping or a function returning a vector.
ExtraFeatures = Mapping[Architecture, Sequence[float]] | Callable[[Architecture], Sequence[float]]


class Featurizer:
    """Turns architectures of one space into a float64 matrix (one row each)."""

    def __init__(
        self,
        space: SearchSpace,
        encoding: str = "auto",
        extra_features: ExtraFeatures | None = None,
        graph_features: bool = False,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ConfigError(f"encoding={encoding!r} is not allowed; allowed: {', '.join(ENCODINGS)}")
        if encoding in ("path", "both") and not space.has_path_encoding:
            raise ConfigError(
                f"encoding={encoding!r} needs a path encoding, which space {space.name!r} lacks; "
                "use 'onehot' or 'auto'"
            )
        if not isinstance(graph_features, bool):
            raise ConfigError(f"graph_features={graph_features!r} is not allowed; expected true or false")
        if encoding == "none" and extra_features is None and not graph_features:
            raise ConfigError(
                "encoding='none' leaves no features; pass extra_features or graph_features=True as well"
            )
        if extra_features is not None and not (
            isinstance(extra_features, Mapping) or callable(extra_features)
        ):
            raise ConfigError(
                f"extra_features must be a mapping Architecture -> vector or a callable, "
                f"got {type(extra_features).__name__}"
            )
        if encoding == "auto":
            encoding = "path" if space.has_path_encoding else "onehot"
        self.space = space
        self.encoding = encoding
        self.extra_features = extra_features
        self.graph = GraphFeaturizer(space) if graph_features else None

    def _extra(self, arch: Architecture) -> np.ndarray:
        source = self.extra_features
        if isinstance(source, Mapping):
            if arch not in source:
                raise ConfigError(
                    f"extra_features has no entry for {arch!r}; the mapping must cover every "
                    "architecture that is fitted or predicted"
                )
            row = source[arch]
        else:
            row = source(arch)  # type: ignore[misc,operator]
        vector = np.asarray(row, dtype=np.float64).ravel()
        if not np.isfinite(vector).all():
            raise ConfigError(f"extra_features for {arch!r} contain NaN or infinity: {vector.tolist()}")
        return vector

    def row(self, arch: Architecture) -> np.ndarray:
        parts: list[np.ndarray] = []
        if self.encoding in ("path", "both"):
            parts.append(self.space.path_encode(arch))
        if self.encoding in ("onehot", "both"):
            parts.append(self.space.encode(arch))
        if self.graph is not None:
            parts.append(self.graph(arch))
        if self.extra_features is not None:
            parts.append(self._extra(arch))
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence):
            raise ConfigError(f"expected a sequence of architectures, got {type(archs).__name__}")
        if not archs:
            raise ConfigError("no architectures given")
        rows = [self.row(a) for a in archs]
        widths = {r.size for r in rows}
        if len(widths) != 1:
            raise ConfigError(
                f"feature vectors have different lengths {sorted(widths)}; extra_features must be fixed-length"
            )
        return np.stack(rows)
