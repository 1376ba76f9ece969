"""The evaluator interface: turn an architecture into objective values.

Evaluators are plugins: a tabular benchmark looks results up, a zero-cost
proxy scores a fresh network, the train evaluator trains one. The runner
calls ``evaluate`` inside a Ray trial; ``report`` streams per-epoch metrics
(learning curves, for early stopping and the store).

An evaluator says what it needs and what it reports as class metadata
(``needs_data``, ``produces_weights``, ``uses_devices``, ``data_parallel``, ``settings_model``,
``fidelity``, ``reports``, ``inherits``, ``recipe_fields``), so
that the config, the driver and export ask the evaluator instead of
recognising particular evaluators by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nas.core.architecture import Architecture
from nas.core.registry import Registry
from nas.core.space import SearchSpace

#: ``report(step, {"val_accuracy": 81.2, ...})``; may raise to stop a trial early.
Reporter = Callable[[int, Mapping[str, float]], None]
#: ``checkpoint(step, state)``: the evaluator's whole state after ``step`` as opaque bytes, handed
#: over just before ``report(step, ...)`` so that the runner ships both together (pause and resume).
Checkpointer = Callable[[int, bytes], None]


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation produced.

    ``values`` holds every measured metric (objectives are looked up in it by
    name); ``user_attrs`` holds things kept for reporting only, such as a test
    accuracy that a search must never optimise; ``artifacts`` maps an artifact
    kind (e.g. ``"weights"``) to a local file path.
    """

    values: Mapping[str, float]
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inheritance:
    """A parent's trained weights for a child that is one morphism away (:mod:`nas.core.morphism`).

    The runner builds it for a trial whose ``system_attrs`` name a ``parent`` and a
    ``morphism`` when the evaluator inherits (``inherit: parent``); the evaluator maps
    ``weights`` (the parent's stored ``weights`` artifact, a torch state dict) through
    the morphism onto the child's network instead of initialising it at random.
    """

    #: The parent's architecture and trial number.
    arch: Architecture
    trial: int
    #: The edit's record (:meth:`nas.core.morphism.Morphism.to_dict`).
    morphism: Mapping[str, Any]
    #: The parent's weights file, as stored.
    weights: bytes = field(repr=False)


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation asked of an evaluator: what :meth:`Evaluator.evaluate` was called with.

    One record instead of four parameters, so that each evaluator states the
    evaluation contract once (in :meth:`Evaluator.measure`) and the call
    signature lives in the base class alone.
    """

    arch: Architecture
    #: The trial's seed (initialisation, shuffling); evaluators that do not train may ignore it.
    seed: int = 0
    #: A fidelity such as epochs (``None``: the evaluator's default).
    budget: float | None = None
    #: Streams per-step metrics (learning curves); may raise to stop the trial early.
    report: Reporter | None = None
    #: A state this evaluator handed to ``checkpoint`` earlier: continue after its step instead of
    #: starting over (only for evaluators whose ``checkpoints`` is true).
    resume: bytes | None = None
    #: Receives the state after each step (``None``: take no checkpoints).
    checkpoint: Checkpointer | None = None
    #: The parent whose weights the child starts from (only for evaluators whose ``inherits`` is true).
    parent: Inheritance | None = None
    #: The trial's training recipe, setting -> value (e.g. ``{"lr": 0.1, "mixup": 0.2}``): a strategy
    #: that searches recipes with the architectures (``fbnetv3``) proposes it, the runner stores it as
    #: the trial's ``system_attrs["recipe"]`` and hands it here; only names in ``recipe_fields``.
    recipe: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class EvalContext:
    """What the runner offers an evaluator besides its options (used only by those that need it)."""

    #: The search's dataset (``None`` unless the evaluator ``needs_data``).
    dataset: Any = None
    #: The seed of the train/validation split (the same for every trial of a study).
    data_seed: int = 0
    #: Where artifact files (weights) go.
    workdir: Path | None = None
    #: The trial's CPU share.
    num_threads: int | None = None


class Evaluator:
    """Base class of every evaluator plugin: implement :meth:`measure` (or override ``evaluate``)."""

    #: Whether evaluating trains on the search's dataset: the driver then loads it (the config
    #: defaults it to ``digits``) and hands it to :meth:`create`.
    needs_data: ClassVar[bool] = False
    #: Whether a result carries a ``weights`` artifact (export then needs no retraining).
    produces_weights: ClassVar[bool] = False
    #: Whether models run on a device chosen by a ``device`` option (``cuda`` needs ``resources.gpu``).
    uses_devices: ClassVar[bool] = False
    #: Whether one evaluation can train data-parallel on several Ray Train workers
    #: (``resources.workers`` > 1): its training runs the same code on every worker and
    #: synchronises through ``torch.distributed`` (the ``train`` evaluator, via ``nas.training.fit``).
    data_parallel: ClassVar[bool] = False
    #: The pydantic model of the options, validated at load; ``None``: the constructor's keywords.
    settings_model: ClassVar[type | None] = None
    #: The option that is the trial budget (fidelity), e.g. ``"epochs"``; ``None``: no fidelity.
    fidelity: ClassVar[str | None] = None
    #: The metrics every evaluation reports (objectives must name one of them); ``None``: not
    #: declared, so objectives are not checked before the search (a plugin written before this).
    reports: ClassVar[tuple[str, ...] | None] = None
    #: The metrics reported after every epoch (the curves schedulers compare trials on during
    #: training); ``None``: not declared, so a scheduler does not check its objectives against them.
    epoch_metrics: ClassVar[tuple[str, ...] | None] = None
    #: Whether the evaluator can hand its state to ``EvalRequest.checkpoint`` after each step and
    #: continue from such a state (``EvalRequest.resume``): what a scheduler that pauses trials
    #: (``hyperband``) needs, since a paused trial's worker is gone when it is promoted.
    checkpoints: ClassVar[bool] = False
    #: Whether the evaluator can start a morphism's child from its parent's weights
    #: (``EvalRequest.parent``); whether it does depends on its options (:meth:`inherited_budget`).
    inherits: ClassVar[bool] = False
    #: The settings a trial's training recipe may set (``EvalRequest.recipe``), e.g. ``("lr", ...)``;
    #: empty: every trial runs with the evaluator's options, and a recipe-searching strategy is refused.
    recipe_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def inherited_budget(cls, options: Mapping[str, Any]) -> float | None:
        """The budget of a child that inherits its parent's weights under ``options``, or None when
        these options do not inherit (then children train from scratch like any trial)."""
        return None

    @classmethod
    def check_space(cls, space: SearchSpace, options: Mapping[str, Any]) -> None:  # noqa: B027
        """Raise ConfigError if the evaluator with ``options`` cannot evaluate ``space``'s architectures."""

    @classmethod
    def reported_metrics(cls, options: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The metrics an evaluator with these ``options`` reports (``reports`` unless options decide)."""
        return cls.reports

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    @classmethod
    def create(cls, space: SearchSpace, options: Mapping[str, Any], context: EvalContext) -> Evaluator:
        """The evaluator of one trial, from the config's options and what the runner offers."""
        return cls(space, **options)

    def evaluate(
        self,
        arch: Architecture,
        seed: int = 0,
        budget: float | None = None,
        report: Reporter | None = None,
        *,
        resume: bytes | None = None,
        checkpoint: Checkpointer | None = None,
        parent: Inheritance | None = None,
        recipe: Mapping[str, Any] | None = None,
    ) -> EvalResult:
        """Evaluate ``arch``; ``budget`` is a fidelity such as epochs (None: the default).

        ``resume`` and ``checkpoint`` are given only to evaluators whose ``checkpoints`` is true,
        ``parent`` only to those whose ``inherits`` is true, ``recipe`` only to those with
        ``recipe_fields``.
        """
        return self.measure(EvalRequest(arch, seed, budget, report, resume, checkpoint, parent, recipe))

    def measure(self, request: EvalRequest) -> EvalResult:
        """The evaluation itself; every evaluator implements this (or overrides :meth:`evaluate`)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither measure() nor evaluate()")


#: Registered evaluators: training and tabular ones in ``nas.evaluators``,
#: zero-cost proxy scorers in ``predictors``.
EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", builtins=("nas.evaluators",))
# Declared lazily: importing ``predictors`` loads scikit-learn and scipy (about 2 s), which every
# Ray worker of a ``train`` trial would otherwise pay before its first epoch.
EVALUATORS.register_lazy("zero_cost", "predictors.evaluators:ZeroCostEvaluator")
