"""A space's decisions as integer choices, for strategies that learn one distribution per decision.

The policy-based strategies (``reinforce``, ``cmab``, ``manas``) see an
architecture the way the space describes it: an ordered list of categorical
decisions (``space.choices()``), each with its own number of choices. They
learn over choice *indices*; this module translates between those indices
and architectures, draws batches of choices and picks the first valid, new
architecture among them (``space.check`` respected by rejection), and turns results
into scale-free rewards, so every space works without the strategy knowing
what its decisions mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nas.core.architecture import Architecture, Scalar
from nas.core.errors import ArchitectureError
from nas.core.space import SearchSpace

#: Samples a policy draws per proposal attempt (see :meth:`DecisionTable.first_admissible`).
BATCH = 256
#: Most memoised choice combinations (a bound for huge spaces; NAS-Bench-201 has 15,625).
_MEMO_LIMIT = 200_000


class DecisionTable:
    """Decision names, their allowed values and index <-> architecture translation."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        choices = space.choices()
        self.names: list[str] = list(choices)
        self.values: list[tuple[Scalar, ...]] = [tuple(v) for v in choices.values()]
        self.sizes: list[int] = [len(v) for v in self.values]
        if not self.names or min(self.sizes) < 1:
            raise ArchitectureError(f"space {space.name!r} has no decisions with choices to learn over")
        self._made: dict[tuple[int, ...], Architecture | None] = {}

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, arch: Architecture) -> list[int]:
        """The choice index of every decision of ``arch`` (exact value and type, as validation)."""
        result = []
        for name, allowed in zip(self.names, self.values, strict=True):
            value = arch[name]
            result.append(next(i for i, a in enumerate(allowed) if a == value and type(a) is type(value)))
        return result

    def make(self, indices: Sequence[int]) -> Architecture | None:
        """The architecture with these choices, or ``None`` if the space's rules refuse it (memoised)."""
        key = tuple(int(i) for i in indices)
        if key in self._made:
            return self._made[key]
        decisions = tuple(
            (name, allowed[i]) for name, allowed, i in zip(self.names, self.values, key, strict=True)
        )
        arch = Architecture(self.space.name, decisions)
        result = arch if self.space.is_valid(arch) else None
        if len(self._made) >= _MEMO_LIMIT:
            self._made.clear()
        self._made[key] = result
        return result

    def first_admissible(
        self, rows: np.ndarray, admissible: Callable[[Architecture], bool], rng: np.random.Generator
    ) -> Architecture:
        """The first row (choice indices) that is valid and admissible.

        Policies propose a batch of samples per attempt because a policy that
        has learned something keeps drawing architectures already told, which
        the base class rejects one by one; checking a batch here is sampling
        the policy conditioned on "not told yet" at a fraction of the cost. If
        no row is admissible, the first valid one is returned (the base class
        rejects it and asks again); if none is valid, a uniform sample, so a
        policy that prefers combinations the space refuses cannot stall.
        """
        # A converged policy repeats itself: check each distinct row once, in order of first
        # appearance (the same answer as checking every row, at a fraction of the cost).
        _, first_seen = np.unique(rows, axis=0, return_index=True)
        first_valid = None
        for row in rows[np.sort(first_seen)]:
            arch = self.make(row)
            if arch is None:
                continue
            if admissible(arch):
                return arch
            first_valid = first_valid or arch
        return first_valid or self.space.sample(rng)


def draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One choice index per row of ``probabilities`` (rows sum to 1), by inverse CDF."""
    cumulative = np.cumsum(probabilities, axis=1)
    picks = (cumulative < rng.random((len(probabilities), 1)) * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(picks, probabilities.shape[1] - 1)


def draw_independent(policies: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of choice indices, each decision drawn from its own distribution."""
    return np.stack([draw(np.broadcast_to(p, (n, len(p))), rng) for p in policies], axis=1)


def standardised(utilities: Sequence[float]) -> np.ndarray:
    """Utilities as z-scores over the results so far (0 if they are all equal).

    Why: accuracies in percent, errors in [0, 1] and negated latencies must give
    the same learning dynamics, so rewards are measured in standard deviations
    of what the search has seen.
    """
    values = np.asarray(utilities, dtype=float)
    if values.size == 0:
        return values
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def quantile(value: float, utilities: Sequence[float]) -> float:
    """Share of ``utilities`` below ``value`` (ties count half): a reward in [0, 1] immune to outliers."""
    values = np.asarray(utilities, dtype=float)
    if values.size == 0:
        return 0.5
    return float((np.sum(values < value) + 0.5 * np.sum(values == value)) / values.size)
