"""Progressive search (PNAS, Liu et al. 2018), for spaces of ordered decisions such as cells.

PNAS grows cells one block at a time: it trains every cell of one block,
then at each level expands the ``K`` best cells of the previous level by one
more block, lets a surrogate model rank all the expansions, and trains only
the ``K`` it ranks highest. The surrogate is refitted on every cell trained
so far, whatever its size, so what was learned on small cells steers the
choice of large ones.

The analogue here, for any space of categorical decisions (on ``nb201`` the
edge-by-edge version the issue asks for; on ``darts`` each decision is one
input or op of a block):

* a *level-b cell* fixes the first ``b`` decisions in the space's order
  (``space.choices()``); the others hold the ``filler`` (default
  ``skip_connect``, or a decision's first choice where the filler is not
  allowed; see :func:`_fillers` for spaces that refuse that), so a partial
  cell is a real, trainable architecture: on
  NAS-Bench-201 the undecided edges are identities and the cell computes
  what its decided operations make of the input;
* level 1: every choice of the first decision is trained;
* level b+1: the ``beam`` best level-b cells (by their results) are expanded
  by every choice of decision b+1, the surrogate ranks the expansions, and
  the top ``beam`` not yet trained are trained; an expansion equal to a cell
  already trained (the filler chosen) keeps its result for free;
* after the last level (every decision fixed) the search keeps refining: the
  single-decision neighbours of the ``beam`` best full cells, ranked by the
  surrogate, best first.

The surrogate is ridge regression (numpy, closed form) on one indicator per
(decision, choice) for the decided decisions, one "undecided" indicator per
open decision, and the count of each value (operation) over the decided
decisions, fitted to the standardised results. PNAS's own predictor is an
ensemble of LSTMs or MLPs on the block tokens with one embedding per
operation shared by all blocks; the shared counts play that part (what level
1 learned about an operation ranks it at the next decisions), and a linear
model keeps the strategy pure numpy with nothing to tune.

Asynchronous asks (a cluster asks again before the level's results are
back) take the next-ranked expansion of the current level instead of
waiting. The level plan is advanced by ``tell`` only, from the told results
in order, so a warm start replays it exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.architecture import Architecture, Scalar
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Observation, Strategy
from nas.core.trial import Trial
from nas.strategies.decisions import DecisionTable, standardised
from nas.strategies.options import float_option, int_option

Prefix = tuple[int, ...]


@STRATEGIES.register("pnas")
class ProgressiveSearch(Strategy):
    """PNAS: grow cells one decision per level, a ridge surrogate ranking the expansions (see the module)."""

    phase_name = "progressive"
    #: The phase after the last level, when every decision is fixed and the best cells are refined.
    refine_phase = "refine"

    def __init__(
        self,
        space: SearchSpace,
        beam: int = 10,
        filler: Scalar = "skip_connect",
        ridge: float = 1.0,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.beam = int_option("beam", beam)
        self.ridge = float_option("ridge", ridge, 1e-9)
        self.table = DecisionTable(space)
        self.filler = filler
        self._fills = _fillers(self.table.values, filler)
        self._offsets = np.concatenate([[0], np.cumsum(np.asarray(self.table.sizes) + 1)])
        self._values = {
            key: i
            for i, key in enumerate(
                dict.fromkeys(_value_key(v) for values in self.table.values for v in values)
            )
        }
        self._prefix: dict[Architecture, Prefix] = {}  # the decided prefix each planned cell stands for
        self._results: dict[Architecture, float] = {}  # utilities of the told cells
        self._told: set[Architecture] = set()
        self.level = 1
        self._ranked: list[Architecture] = []  # the current level's expansions, best first
        self._plan: list[Architecture] = []  # those of them to train (the untrained top ``beam``)
        self._start_level([(c,) for c in range(self.table.sizes[0])], train_all=True)

    # -- cells -------------------------------------------------------------------------------------
    def cell(self, prefix: Prefix) -> Architecture | None:
        """The architecture of ``prefix`` (the rest filled), or ``None`` if the space refuses it."""
        for fill in self._fills:
            arch = self.table.make([*prefix, *fill[len(prefix) :]])
            if arch is not None:
                return arch
        return None

    def features(self, prefix: Prefix) -> np.ndarray:
        """Indicators of each decided choice and of each open decision, then counts of each value.

        The counts are shared by all positions, as PNAS's predictor shares
        one embedding per operation across blocks: what level 1 taught about
        an operation ranks it at the decisions not decided yet.
        """
        x = np.zeros(int(self._offsets[-1]) + len(self._values))
        for d in range(len(self.table)):
            x[self._offsets[d] + (prefix[d] if d < len(prefix) else self.table.sizes[d])] = 1.0
        for d, choice in enumerate(prefix):
            x[int(self._offsets[-1]) + self._values[_value_key(self.table.values[d][choice])]] += 1.0
        return x

    # -- the surrogate -----------------------------------------------------------------------------
    def predict(self, prefixes: list[Prefix]) -> np.ndarray:
        """Ridge regression on the told cells' standardised results (zeros before any result)."""
        known = [(self._prefix_of(a), u) for a, u in self._results.items()]
        if len(known) < 2:
            return np.zeros(len(prefixes))
        x = np.stack([self.features(p) for p, _ in known])
        y = standardised([u for _, u in known])
        weights = np.linalg.solve(x.T @ x + self.ridge * np.eye(x.shape[1]), x.T @ y)
        return np.stack([self.features(p) for p in prefixes]) @ weights

    def _prefix_of(self, arch: Architecture) -> Prefix:
        """A planned cell's prefix; any other told cell counts as fully decided."""
        return self._prefix.get(arch) or tuple(self.table.indices(arch))

    # -- levels --------------------------------------------------------------------------------------
    def _start_level(self, prefixes: list[Prefix], train_all: bool = False) -> None:
        # Ties (all of level 1, equal predictions) in an order drawn from the seed.
        order = self.rng_for("level", self.level).permutation(len(prefixes))
        prefixes = [prefixes[int(i)] for i in order]
        scores = np.zeros(len(prefixes)) if train_all or not prefixes else self.predict(prefixes)
        ranked: list[Architecture] = []
        for index in np.argsort(-scores, kind="stable"):
            prefix = prefixes[int(index)]
            arch = self.cell(prefix)
            if arch is not None and arch not in ranked:
                self._prefix.setdefault(arch, prefix)
                ranked.append(arch)
        self._ranked = ranked
        # Only cells that can still be trained (not told, no canonical twin told or pending, feasible).
        untrained = [a for a in ranked if a not in self._told and self.admissible(a)]
        self._plan = untrained if train_all else untrained[: self.beam]

    def _advance(self) -> None:
        """Start the next level from the ``beam`` best cells of this one (or the refinement after the last)."""
        scored = sorted((a for a in self._ranked if a in self._results), key=lambda a: -self._results[a])[
            : self.beam
        ]
        self.level += 1
        if self.level <= len(self.table):
            d = self.level - 1
            parents = [tuple(self.table.indices(a)[:d]) for a in scored]
            self._start_level([(*p, c) for p in parents for c in range(self.table.sizes[d])])
        else:
            self._ranked, self._plan = [], []

    def _observe(self, trial: Trial, observation: Observation | None) -> None:
        self._told.add(trial.arch)
        if observation is not None:
            self._results[trial.arch] = self.utility(observation)
        if self.level <= len(self.table):
            if trial.arch not in self._plan:  # an extra cell an asynchronous ask took from the ranking
                self._plan.append(trial.arch)
            while self.level <= len(self.table) and all(self._settled(a) for a in self._plan):
                self._advance()

    def _settled(self, arch: Architecture) -> bool:
        """Told, or never to be: a canonical twin was told or it became infeasible (none pending)."""
        if arch in self._told:
            return True
        return self._dedupe_key(arch) not in self._pending and not self.admissible(arch)

    # -- proposals -------------------------------------------------------------------------------------
    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if self.level <= len(self.table):
            for arch in [*self._plan, *(a for a in self._ranked if a not in self._plan)]:
                if self.admissible(arch):
                    if arch not in self._plan:
                        self._plan.append(arch)
                    return arch
        self.last_phase = self.refine_phase
        return self._refine(rng)

    def _refine(self, rng: np.random.Generator) -> Architecture | None:
        """The surrogate's favourite single-decision neighbour of the best full cells (else random)."""
        best = sorted(self._results, key=lambda a: -self._results[a])[: self.beam]
        prefixes: list[Prefix] = []
        for arch in best:
            current = list(self.table.indices(arch))
            for d, size in enumerate(self.table.sizes):
                prefixes += [
                    tuple(current[:d] + [c] + current[d + 1 :]) for c in range(size) if c != current[d]
                ]
        if prefixes:
            for index in np.argsort(-self.predict(prefixes), kind="stable"):
                arch = self.table.make(prefixes[int(index)])
                if arch is not None and self.admissible(arch):
                    return arch
        return self.random_admissible(rng)


def _value_key(value: Scalar) -> tuple[str, str]:
    """A choice as a dictionary key that keeps ``1``, ``1.0`` and ``True`` apart."""
    return type(value).__name__, repr(value)


def _fillers(values: list[tuple[Scalar, ...]], filler: Scalar) -> list[list[int]]:
    """The choices undecided decisions hold: ``filler`` where allowed, else the first choice.

    A second completion serves spaces whose rules refuse the first: where
    the filler is not allowed, decisions with the same choices take their
    choices in turn (DARTS' two inputs of a node must differ: 0 and 1).
    """
    plain = [options.index(filler) if filler in options else 0 for options in values]
    turns: dict[tuple[Scalar, ...], int] = {}
    distinct = []
    for options, first in zip(values, plain, strict=True):
        if filler in options:
            distinct.append(first)
            continue
        turn = turns.get(options, 0)
        turns[options] = turn + 1
        distinct.append(turn % len(options))
    return [plain, distinct] if distinct != plain else [plain]
