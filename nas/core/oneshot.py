"""The registry of one-shot (weight-sharing) search methods and the one-shot view of a space.

One-shot methods are not ask/tell strategies: they own a training loop over a
supernet (see :mod:`nas.oneshot`). They get their own registry so that the
config can name them in the same ``strategy:`` field as the black-box
strategies without either side pretending to be the other. The registry lives
in the kernel (stdlib only) so that config validation can check a name
without importing torch: the built-ins are declared lazily by the torch-free
:mod:`nas.oneshot.catalog` and imported only when a method is fetched.

A space takes part in one-shot search by carrying a :class:`OneShotView` in
its class attribute ``oneshot_view``: what kind of supernet it has, how to
build it, and the space-specific parameters of the generic guard rails
(collapse signals, memory advice, a tabular benchmark to rank against). The
one-shot code asks the view (:func:`oneshot_view`) and never names a space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.registry import Registry
from nas.core.space import SearchSpace

#: Registered one-shot methods (``darts``, ``pc_darts``, ``gdas``, ``spos``).
ONESHOT: Registry[Any] = Registry("one-shot method", builtins="nas.oneshot.catalog")


@dataclass(frozen=True)
class SingleWorker:
    """Why a one-shot method (with ``option: value``, if given) trains its supernet on one worker only.

    Data-parallel supernet training (:mod:`nas.oneshot.parallel`) averages
    each step's gradients over the ranks' slices of the batch, which equals
    the batch's gradient only when the step is linear in the batch.
    """

    reason: str
    option: str | None = None
    value: Any = None


#: Method name -> why it cannot train its supernet data-parallel (filled by the method catalogs).
SINGLE_WORKER: dict[str, SingleWorker] = {}


def data_parallel_refusal(method: str, options: Mapping[str, Any]) -> str | None:
    """Why ``method`` with ``options`` cannot train on several workers, or None when it can."""
    if method not in ONESHOT:  # also loads the built-in catalog, which fills SINGLE_WORKER
        return None
    entry = SINGLE_WORKER.get(method)
    if entry is None or (entry.option is not None and options.get(entry.option) != entry.value):
        return None
    return entry.reason


def data_parallel_methods() -> list[str]:
    """The one-shot methods that can train on several workers (some only with some options)."""
    return [
        name
        for name in ONESHOT.names()
        if name not in SINGLE_WORKER or SINGLE_WORKER[name].option is not None
    ]


#: A supernet with an alpha matrix per cell type: differentiable methods can steer it.
CELL = "cell"
#: A supernet holding every candidate block per layer: an architecture runs one path (SPOS).
SINGLE_PATH = "single_path"
#: A single-path supernet (``build``, for SPOS) and an elastic one (``elastic``): nested weights,
#: every sub-network a slice of the largest (BigNAS; see :mod:`nas.supernet.elastic`).
ELASTIC = "elastic"
KINDS: tuple[str, ...] = (CELL, SINGLE_PATH, ELASTIC)
#: Not a kind of view but a capability a method may ask for: a view whose single-path supernet also
#: takes an alpha path (one alpha row per layer, every block of the layer mixed), as FBNet's DNAS
#: searches its layer-wise space. Such a view says ``layer_alpha=True``.
LAYER_ALPHA = "layer_alpha"

#: ``build(space, num_classes=, input_shape=, channels=, cells=, partial=, affine=)`` -> a supernet.
SupernetBuilder = Callable[..., Any]
#: ``latency_parts(space, num_classes=, input_shape=)`` -> ``[(decision, value, module, input shape), ...]``:
#: the modules whose batch-1 latencies sum to a network's, each with the input it sees. A part with
#: ``decision`` ``None`` is in every network (stem, head); one with a decision and value runs when the
#: architecture takes that value (the module ``None`` when it costs nothing, e.g. an identity skip).
LatencyParts = Callable[..., list[tuple[str | None, Any, Any, tuple[int, ...]]]]
#: ``latency_keys(space, arch)`` -> ``{part: context key}``: for a space whose parts cost what their
#: context makes them (a block's input width depends on the blocks before it), the parts an
#: architecture's network runs, as ``latency_parts`` names them (part, context key) in place of
#: (decision, value). Parts in every network (``decision`` ``None``) are not listed.
LatencyKeys = Callable[[SearchSpace, Architecture], Mapping[str, str]]
#: ``latency_cheapest(space, cost)`` -> ``(arch, total)``: the architecture whose parts' ``cost(part,
#: key)`` sum least, exactly (a context table's fastest sub-network; the space knows its structure).
LatencyCheapest = Callable[[SearchSpace, Callable[[str, str], float]], tuple[Architecture, float]]


@dataclass(frozen=True)
class OneShotView:
    """How one-shot search sees a space (see the module docstring).

    ``kind`` is :data:`CELL`, :data:`SINGLE_PATH` or :data:`ELASTIC`; an
    elastic view builds its single-path supernet with ``build`` and its
    elastic supernet with ``elastic`` (same signature). A cell view's space has
    the options ``width_option`` and ``depth_option`` (the supernet's default
    channels and cells); ``cell_ops`` lists the ops of an architecture's normal
    cell and ``normal_edges`` picks the normal cell's edges out of the
    softmaxed alphas (``{edge label: {op: probability}}``), the two signals of
    skip-connection collapse, judged at ``collapse_threshold``. ``table`` is a
    data file (relative to the data directory) of stand-alone results to rank
    supernet scores against; ``shrink_advice`` tells a user whose supernet
    does not fit in memory what to make smaller.

    Per-device specialisation (:mod:`nas.specialize`) reads two more
    entries: ``latency_table``, a data file of measured device latencies
    (one column per device, the ``arch`` column in the space's string form)
    its latency predictors are fitted on, and ``latency_parts``, which splits
    a network into parts whose latencies add up to the whole (the per-block
    lookup table ``nas latency profile`` measures on this machine; see
    :data:`LatencyParts`). Where a part's cost depends on more than its own
    decision (hybrid: a block's input width and resolution come from the
    blocks before it), the parts are listed per *context* and the view also
    has ``latency_keys`` (which contexts an architecture runs) and
    ``latency_cheapest`` (the fastest architecture of such a table).

    ``layer_alpha`` says that the single-path supernet is also a cell supernet
    with one alpha row per layer (:data:`LAYER_ALPHA`); the latency-aware
    one-shot methods (:mod:`nas.oneshot.resource`) fit their per-op lookup
    table on ``latency_table`` too.
    """

    kind: str
    build: SupernetBuilder
    shrink_advice: str
    width_option: str | None = None
    depth_option: str | None = None
    cell_ops: Callable[[Architecture], list[str]] | None = None
    normal_edges: Callable[[Mapping[str, Any]], list[Any]] | None = None
    collapse_threshold: float | None = None
    table: str | None = None
    elastic: SupernetBuilder | None = None
    latency_table: str | None = None
    latency_parts: LatencyParts | None = None
    latency_keys: LatencyKeys | None = None
    latency_cheapest: LatencyCheapest | None = None
    layer_alpha: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"one-shot view kind {self.kind!r} is not allowed; expected one of {KINDS}")
        if self.kind == CELL and (self.width_option is None or self.depth_option is None):
            raise ConfigError("a cell one-shot view names its space's width_option and depth_option")
        if (self.kind == ELASTIC) != (self.elastic is not None):
            raise ConfigError("an elastic one-shot view, and only one, has an elastic supernet builder")
        if (self.latency_keys is None) != (self.latency_cheapest is None) or (
            self.latency_keys is not None and self.latency_parts is None
        ):
            raise ConfigError(
                "a context latency table needs latency_parts, latency_keys and latency_cheapest"
            )
        if self.layer_alpha and self.kind == CELL:
            raise ConfigError("layer_alpha is for single-path views; a cell view is steered by alpha anyway")

    @classmethod
    def cell(
        cls,
        build: SupernetBuilder,
        cell_ops: Callable[[Architecture], list[str]],
        normal_edges: Callable[[Mapping[str, Any]], list[Any]],
        collapse_threshold: float,
        table: str | None = None,
        latency_table: str | None = None,
    ) -> OneShotView:
        """A cell view whose space has the options ``channels`` and ``cells`` (the usual case)."""
        return cls(
            kind=CELL,
            build=build,
            shrink_advice="fewer supernet channels or cells (strategy options channels, cells)",
            width_option="channels",
            depth_option="cells",
            cell_ops=cell_ops,
            normal_edges=normal_edges,
            collapse_threshold=collapse_threshold,
            table=table,
            latency_table=latency_table,
        )

    @property
    def differentiable(self) -> bool:
        """True where alpha-based methods (DARTS, PC-DARTS, GDAS) can search the space."""
        return self.kind == CELL

    def supports(self, kinds: Sequence[str]) -> bool:
        """Whether a method asking for one of ``kinds`` (view kinds or :data:`LAYER_ALPHA`) can search it."""
        return self.kind in kinds or (self.layer_alpha and LAYER_ALPHA in kinds)


def oneshot_view(space: SearchSpace | type[SearchSpace]) -> OneShotView | None:
    """The one-shot view of ``space`` (an instance or its class), None without one."""
    view = getattr(space, "oneshot_view", None)
    return view if isinstance(view, OneShotView) else None


def spaces_with(kinds: Sequence[str]) -> list[str]:
    """Registered spaces whose one-shot view is of one of ``kinds`` (for messages naming them)."""
    from nas.core.space import SPACES

    return [n for n in SPACES.names() if (v := oneshot_view(SPACES.get(n))) is not None and v.supports(kinds)]


__all__ = [
    "CELL",
    "ELASTIC",
    "KINDS",
    "LAYER_ALPHA",
    "ONESHOT",
    "SINGLE_PATH",
    "SINGLE_WORKER",
    "LatencyCheapest",
    "LatencyKeys",
    "LatencyParts",
    "OneShotView",
    "SingleWorker",
    "data_parallel_methods",
    "data_parallel_refusal",
    "oneshot_view",
    "spaces_with",
]
