"""The schema of a search: one section per concern, validated together.

A search is described by one document (see ``docs/config.md``)::

    name: quickstart
    space: {name: nb201, channels: 8, cells: 1}
    dataset: {name: digits}
    strategy: {name: evolution, population_size: 8, tournament_size: 3}
    evaluator: {name: train, epochs: 4, batch_size: 64, lr: 0.05}
    objectives: {val_accuracy: max}
    constraints: {params: "<= 2e6"}
    budget: {trials: 24, concurrent: 2}

The schema checks shapes, ranges and plugin *names* (against the registries
in :mod:`nas.core`); it never builds a plugin. Whether a space accepts its
options, or a strategy its values, is checked by building them once, above
the plugins, in :func:`nas.runner.plan.build_plan`. An evaluator that
declares a settings model (:class:`~nas.settings.train.TrainSettings`) has
its options validated here, with the other sections' problems. The model
stays JSON-serialisable (``config.model_dump(mode="json")``) because the
store saves it with the study.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from nas.core.errors import ConfigError, UnknownNameError
from nas.core.evaluator import EVALUATORS
from nas.core.oneshot import ONESHOT, data_parallel_methods, data_parallel_refusal
from nas.core.registry import import_plugins
from nas.core.scheduler import NO_SCHEDULER, SCHEDULERS
from nas.core.space import SPACES
from nas.core.strategy import STRATEGIES, Constraint, parse_constraints
from nas.core.trial import Direction, parse_objectives
from nas.settings.dataset import DatasetConfig
from nas.settings.sections import PluginSection, Section, Seed
from nas.settings.specialize import SpecializeConfig
from nas.settings.train import TrainSettings

logger = logging.getLogger(__name__)

_STUDY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
#: The evaluator of a config that names none.
DEFAULT_EVALUATOR = "train"

#: Strategy options the runner sets from top-level fields; a strategy block may not set them.
_RUNNER_STRATEGY_OPTIONS: dict[str, str] = {
    "objectives": "objectives",
    "seed": "seed",
    "constraints": "constraints",
    "measure": "constraints",
}


def _registered(registry: Any, name: str) -> None:
    """Raise UnknownNameError if ``name`` is not in ``registry``.

    A registry whose plugin package cannot be imported, or that has no entry
    at all yet, cannot be checked: the name is then accepted and the runner
    fails when it looks the plugin up.
    """
    try:
        names = registry.names()
    except ImportError as exc:
        logger.debug("cannot check %s name %r: %s", registry.kind, name, exc)
        return
    if names:
        registry.get(name)


def is_oneshot(name: str) -> bool:
    """Whether ``name`` is a registered one-shot method (``nas.core.oneshot.ONESHOT``)."""
    try:
        return name in ONESHOT
    except ImportError as exc:
        logger.debug("cannot check one-shot method name %r: %s", name, exc)
        return False


def evaluator_class(name: str) -> type | None:
    """The registered evaluator class (for its metadata), or None if unknown or not importable."""
    try:
        return EVALUATORS.get(name)
    except (ImportError, ConfigError):
        return None


# -- sections ---------------------------------------------------------------------------


class SpaceConfig(PluginSection):
    """``space: {name: nb201, channels: 8, cells: 1}``: a registered space and its options."""

    @field_validator("name")
    @classmethod
    def _known_space(cls, name: str) -> str:
        SPACES.get(name)
        return name


class TrainEvaluatorConfig(TrainSettings):
    """An evaluator whose ``settings_model`` is :class:`TrainSettings` (``evaluator: {name: train, ...}``)."""

    name: str = DEFAULT_EVALUATOR

    @property
    def options(self) -> dict[str, Any]:
        """The evaluator options (every field except ``name``)."""
        return self.model_dump(exclude={"name"})


class PluginEvaluatorConfig(PluginSection):
    """Any other registered evaluator (``nb201_table``, ...); extra fields are its options."""

    @field_validator("name")
    @classmethod
    def _known_evaluator(cls, name: str) -> str:
        _registered(EVALUATORS, name)
        return name


def _evaluator_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("name", DEFAULT_EVALUATOR))
    return str(getattr(value, "name", DEFAULT_EVALUATOR))


def _evaluator_tag(value: Any) -> str:
    """``settings`` when the evaluator validates its options with TrainSettings, else ``plugin``."""
    model = getattr(evaluator_class(_evaluator_name(value)), "settings_model", None)
    return "settings" if isinstance(model, type) and issubclass(model, TrainSettings) else "plugin"


EvaluatorConfig = Annotated[
    Union[  # noqa: UP007  (the X | Y form cannot carry the tags)
        Annotated[TrainEvaluatorConfig, Tag("settings")],
        Annotated[PluginEvaluatorConfig, Tag("plugin")],
    ],
    Discriminator(_evaluator_tag),
]
#: The tags pydantic puts into error locations of the union fields (dropped in messages).
UNION_TAGS = {"evaluator": ("settings", "plugin")}


class StrategyConfig(PluginSection):
    """``strategy: {name: evolution, population_size: 16}``: extra fields are the strategy's options."""

    name: str = "random"

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if is_oneshot(name):  # one-shot methods are not ask/tell strategies: their own registry
            return name
        try:
            _registered(STRATEGIES, name)
        except UnknownNameError:
            allowed = [*STRATEGIES.names(), *ONESHOT.names()]
            raise UnknownNameError("strategy or one-shot method", name, allowed) from None
        return name

    @model_validator(mode="after")
    def _no_runner_options(self) -> StrategyConfig:
        for option, field in _RUNNER_STRATEGY_OPTIONS.items():
            if option in self.options:
                raise ConfigError(
                    f"strategy option {option!r} is set by the top-level field {field!r}; move it there"
                )
        return self


class BudgetConfig(Section):
    """How much searching: ``trials`` in total, ``concurrent`` at once, optional wall-clock ``time_s``."""

    trials: int = Field(20, ge=1)
    concurrent: int = Field(1, ge=1)
    time_s: float | None = Field(None, gt=0.0)


class SchedulerConfig(PluginSection):
    """``scheduler: {name: asha, grace_epochs: 1}``: extra fields are the scheduler's options (or ``none``)."""

    name: str = "asha"

    @field_validator("name")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name != NO_SCHEDULER:
            try:
                _registered(SCHEDULERS, name)
            except UnknownNameError:
                raise UnknownNameError("scheduler", name, [*SCHEDULERS.names(), NO_SCHEDULER]) from None
        return name


class ResourcesConfig(Section):
    """Per-trial resources as Ray understands them (fractional GPUs allowed).

    ``workers: N`` > 1 trains one trial data-parallel on N Ray Train workers
    (:mod:`nas.runner.data_parallel`), each with ``cpu`` CPUs and
    ``gpu_per_worker`` GPUs; the trial's own Tune process then waits without
    a CPU, so a trial takes exactly N x ``cpu`` CPUs. With one worker, ``gpu``
    is the trial's GPU share (``gpu_per_worker`` may say the same).
    """

    cpu: float = Field(1.0, gt=0.0, description="CPUs per trial (per worker when workers > 1)")
    gpu: float = Field(0.0, ge=0.0, description="GPUs per single-worker trial")
    workers: int = Field(1, ge=1, description="data-parallel Ray Train workers per trial")
    gpu_per_worker: float | None = Field(None, ge=0.0, description="GPUs per worker")

    @model_validator(mode="after")
    def _one_gpu_field(self) -> ResourcesConfig:
        if self.gpu_per_worker is not None and self.gpu > 0:
            raise ConfigError(
                f"resources.gpu={self.gpu:g} and resources.gpu_per_worker={self.gpu_per_worker:g} are both set; "
                "allowed: one of them (gpu_per_worker is per worker, gpu per single-worker trial)"
            )
        if self.workers > 1 and self.gpu > 0:
            raise ConfigError(
                f"resources.gpu={self.gpu:g} with workers={self.workers}: a multi-worker trial asks GPUs per "
                f"worker; allowed: gpu_per_worker: {self.gpu:g} instead of gpu"
            )
        return self

    @property
    def gpu_each(self) -> float:
        """The GPUs of one worker (of the trial when it has one worker)."""
        return self.gpu if self.gpu_per_worker is None else self.gpu_per_worker

    @property
    def bundle(self) -> dict[str, float]:
        """What one Ray Train worker, or the single-worker trial's first bundle, asks for.

        In Ray's resource names. Not :attr:`SearchConfig.per_trial`, which sums
        all of a trial's bundles (this one plus any Ray Data CPUs). Checked
        against the cluster once Ray is up, ``workers`` times over.
        """
        return {"CPU": self.cpu, "GPU": self.gpu_each}


class SearchConfig(Section):
    """A whole search. Top-level typos are refused (``extra='forbid'``)."""

    name: str = Field(pattern=_STUDY_NAME, max_length=200)
    space: SpaceConfig
    dataset: DatasetConfig | None = None
    strategy: StrategyConfig = StrategyConfig()
    evaluator: EvaluatorConfig = TrainEvaluatorConfig()
    objectives: dict[str, Literal["max", "min"]] = {"val_accuracy": "max"}
    constraints: dict[str, str | float] = {}
    budget: BudgetConfig = BudgetConfig()
    scheduler: SchedulerConfig | None = None
    #: Device targets of ``nas specialize STUDY`` after an elastic supernet search (``nas.settings.specialize``).
    specialize: SpecializeConfig | None = None
    resources: ResourcesConfig = ResourcesConfig()
    storage: str | None = None
    seed: Seed = 0
    plugins: list[str] = Field(
        default_factory=list,
        description="modules imported (on the driver and every worker) before any plugin is looked up, "
        "so your own spaces, evaluators and strategies can register themselves",
    )

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        """Plugins register names that the other fields' checks look up, so they load first."""
        if isinstance(data, Mapping) and data.get("plugins"):
            modules = data["plugins"]
            if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
                raise ConfigError(f"plugins must be a list of module names, got {modules!r}")
            import_plugins(modules)
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_dataset(cls, data: Any) -> Any:
        """An evaluator that ``needs_data`` trains on digits unless told otherwise; others may need none."""
        if isinstance(data, Mapping) and data.get("dataset") is None:
            evaluator = evaluator_class(_evaluator_name(data.get("evaluator") or {}))
            if getattr(evaluator, "needs_data", False):
                data = {**data, "dataset": {"name": "digits"}}
        return data

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ConfigError(f"objectives must be a mapping metric -> 'max' | 'min', got {value!r}")
        return {name: direction.value for name, direction in parse_objectives(value).items()}

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: dict[str, str | float]) -> dict[str, str | float]:
        parse_constraints(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        evaluator = evaluator_class(self.evaluator.name)
        options = self.evaluator.options
        if (
            getattr(evaluator, "uses_devices", False)
            and options.get("device") == "cuda"
            and not self.resources.gpu_each
        ):
            raise ConfigError(
                "evaluator.device is 'cuda' but resources.gpu is 0; give each trial a GPU share"
            )
        if self.resources.workers > 1 and not getattr(evaluator, "data_parallel", False):
            raise ConfigError(
                f"resources.workers={self.resources.workers} needs an evaluator that trains data-parallel; "
                f"evaluator {self.evaluator.name!r} does not (allowed: workers: 1, or evaluator: train)"
            )
        fidelity = getattr(evaluator, "fidelity", None)
        budget = options.get(fidelity) if fidelity else None
        grace = self.scheduler.options.get("grace_epochs") if self.scheduler else None
        if isinstance(grace, int) and isinstance(budget, int) and grace > budget:
            raise ConfigError(
                f"scheduler.grace_epochs={grace} exceeds evaluator.{fidelity}={budget}; allowed: 1..{budget}"
            )
        if is_oneshot(self.strategy.name) and self.dataset is None:
            raise ConfigError(
                f"strategy: one-shot method {self.strategy.name!r} trains a supernet and needs a dataset; "
                "add a dataset section, e.g. dataset: {name: cifar10}"
            )
        if self.dataset is not None and self.dataset.reader == "ray" and self.resources.workers > 1:
            raise ConfigError(
                f"dataset reader: ray with resources.workers={self.resources.workers}: Ray Data reads the "
                "split of a single-worker trial; allowed: workers: 1, or reader: torch"
            )
        if (
            is_oneshot(self.strategy.name)
            and self.dataset is not None
            and (self.dataset.streaming or self.dataset.reader == "ray")
        ):
            raise ConfigError(
                f"strategy: one-shot method {self.strategy.name!r} trains its supernet on in-memory arrays; "
                "dataset.streaming: true is for the train evaluator (set streaming: false)"
            )
        if self.resources.workers > 1 and self.scheduler is not None and self.scheduler.name != NO_SCHEDULER:
            # Tune stopping a trial does not yet release the Ray Train workers of a multi-worker trial.
            raise ConfigError(
                f"scheduler {self.scheduler.name!r} with resources.workers={self.resources.workers}: early "
                "stopping of multi-worker trials is not supported yet; allowed: workers: 1, or no scheduler"
            )
        refusal = (
            data_parallel_refusal(self.strategy.name, self.strategy.options)
            if self.resources.workers > 1
            else None
        )
        if refusal is not None:
            raise ConfigError(
                f"resources.workers={self.resources.workers}: one-shot method {self.strategy.name!r} {refusal}, "
                f"so it trains its supernet on one worker; allowed: workers: 1, or one of "
                f"{', '.join(data_parallel_methods())}"
            )
        return self

    # -- derived views --------------------------------------------------------------------
    @property
    def directions(self) -> dict[str, Direction]:
        """Objectives as :class:`~nas.core.Direction` values, primary first."""
        return parse_objectives(self.objectives)

    @property
    def constraint_list(self) -> tuple[Constraint, ...]:
        """The parsed constraints."""
        return parse_constraints(self.constraints)

    @property
    def trial_bundles(self) -> list[dict[str, float]]:
        """A single-worker trial's placement-group bundles in Ray's resource names.

        The trial's own, then with ``dataset.reader: ray`` one of CPUs for its
        Ray Data tasks: without it they wait for CPUs other trials hold, for
        ever (:mod:`nas.runner.ray_data`).
        """
        data = self.dataset.ray_data_cpus if self.dataset is not None else 0.0
        return [self.resources.bundle, *([{"CPU": data}] if data else [])]

    @property
    def per_trial(self) -> dict[str, float]:
        """What a trial (a worker, when ``workers`` > 1) asks of one node: its bundles together."""
        total: dict[str, float] = {}
        for bundle in self.trial_bundles:
            for name, amount in bundle.items():
                total[name] = total.get(name, 0.0) + amount
        return total

    @property
    def data_seed(self) -> int:
        """The seed of the train/validation split: ``dataset.seed`` or the top-level ``seed``."""
        return self.seed if self.dataset is None or self.dataset.seed is None else self.dataset.seed
