"""A search plan: the config's plugins built once, before anything is written or Ray starts.

The schema (:mod:`nas.settings`) checks names and shapes; whether the space
accepts its options, the strategy its values, or the one-shot method this
space, only the plugins can say. :func:`build_plan` builds each once and the
driver then runs with those very objects: the space, the strategy (with its
constraints and cost model) or the one-shot method's checked settings, and
the evaluator class whose metadata (``needs_data``, ``fidelity``, ...) tells
the driver what a trial needs. Bad plugin options therefore fail here, with
the plugin's own message, before any store write or Ray start.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, UnknownNameError, shorten
from nas.core.evaluator import EVALUATORS, Evaluator
from nas.core.options import check_option_names
from nas.core.space import MAX_CLASSES, SearchSpace, check_input_shape, create_space
from nas.core.strategy import Strategy
from nas.runner.schedulers import make_scheduler
from nas.settings.dataset import READING_FIELDS, DatasetConfig
from nas.settings.errors import format_validation_error
from nas.settings.loading import load_config
from nas.settings.search import SearchConfig, is_oneshot

#: The input the cost model assumes until the dataset is known (CIFAR-sized RGB, 10 classes).
DEFAULT_INPUT: tuple[tuple[int, int, int], int] = ((3, 32, 32), 10)


@dataclass
class DataShape:
    """The input shape and number of classes the strategy's cost model measures networks for.

    Filled in by the driver once it has loaded the dataset; the strategy only
    measures when asked, which is after that.
    """

    input_shape: tuple[int, int, int] = DEFAULT_INPUT[0]
    num_classes: int = DEFAULT_INPUT[1]
    #: The validation split's record (size, hash of its positions: ``info["split"]``), once loaded.
    split: dict[str, Any] | None = None

    def update(self, dataset: Any) -> None:
        """Take the loaded dataset's shape, refusing one no network could be built for."""
        if dataset is not None:
            shape = check_input_shape(tuple(dataset.input_shape), "the dataset's input shape")
            classes = int(dataset.num_classes)
            if not 1 <= classes <= MAX_CLASSES:
                raise ConfigError(f"the dataset has {classes} classes; allowed: 1..{MAX_CLASSES}")
            self.input_shape, self.num_classes = shape, classes
            split = getattr(dataset, "info", {}).get("split")
            self.split = dict(split) if isinstance(split, Mapping) else None


@dataclass(frozen=True)
class SearchPlan:
    """What a validated config builds: the objects the driver runs with."""

    config: SearchConfig
    space: SearchSpace
    #: The registered evaluator class (its metadata; trials build instances in the workers).
    evaluator: type[Evaluator]
    #: The black-box strategy (``None`` for a one-shot search).
    strategy: Strategy | None
    #: The one-shot method's checked settings (``None`` for a black-box search).
    oneshot: Any = None
    data_shape: DataShape = field(default_factory=DataShape)
    #: The checked trial scheduler (:mod:`nas.runner.schedulers`), or ``None`` when trials run to the end.
    scheduler: Any = None

    @property
    def is_oneshot(self) -> bool:
        return self.oneshot is not None

    @property
    def needs_data(self) -> bool:
        """Whether the driver loads the dataset: a supernet trains on it, or the evaluator does."""
        return self.is_oneshot or self.evaluator.needs_data

    @property
    def fidelity(self) -> float | None:
        """How long every trial trains: the evaluator's fidelity option (e.g. ``epochs``), else ``None``.

        Not the search's ``budget`` (trials); the store keeps it in a trial's
        ``budget`` column, the key under which results are reused.
        """
        fidelity = self.evaluator.fidelity
        value = self.config.evaluator.options.get(fidelity) if fidelity else None
        return None if value is None else float(value)

    @property
    def inherited_budget(self) -> float | None:
        """The budget of a trial that inherits its parent's weights (None: the evaluator does not inherit)."""
        if not self.evaluator.inherits:
            return None
        return self.evaluator.inherited_budget(self.config.evaluator.options)

    @property
    def comparability(self) -> dict[str, Any]:
        """What changes a trial's result, field -> value: the study's comparability (reuse key).

        The space and its options (defaults included), the data and its
        split (only if something trains on it), the evaluator and its
        options (the fidelity among them) and the seed. Not the strategy,
        constraints, scheduler or resources: they choose or stop trials but do
        not change a finished trial's result. See :mod:`nas.core.comparability`.
        """
        config = self.config
        description: dict[str, Any] = {"space.name": self.space.name, "seed": config.seed}
        description.update({f"space.{k}": v for k, v in self.space.options.items()})
        if self.needs_data and config.dataset is not None:
            description.update({f"dataset.{k}": v for k, v in _data_identity(config.dataset).items()})
            description["dataset.seed"] = config.data_seed
            if self.data_shape.split is not None:
                description["dataset.split"] = self.data_shape.split
        description["evaluator.name"] = config.evaluator.name
        options = json.loads(json.dumps(config.evaluator.options, default=str))
        description.update({f"evaluator.{k}": v for k, v in options.items()})
        return description

    @property
    def comparability_defaults(self) -> dict[str, Any]:
        """Each described option's default (space constructor, evaluator settings model), same field names.

        With them a study described before an option existed still reopens
        when the option is left at its default (see
        :func:`nas.core.comparability.differences`).
        """
        defaults: dict[str, Any] = {}
        for name, param in inspect.signature(type(self.space).__init__).parameters.items():
            if param.default is not inspect.Parameter.empty and name != "self":
                defaults[f"space.{name}"] = param.default
        if self.data_shape.split is not None:
            # Studies described before the split was recorded split with the same rule and seed
            # (nas.data.dataset.split_indices is unchanged), so this split is what they had.
            defaults["dataset.split"] = self.data_shape.split
        model = getattr(self.evaluator, "settings_model", None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, info in model.model_fields.items():
                if not info.is_required():
                    defaults[f"evaluator.{name}"] = info.get_default(call_default_factory=True)
        return json.loads(json.dumps(defaults, default=str))

    @property
    def seeds(self) -> list[int]:
        """The supernet seeds of a one-shot search (none for a black-box one)."""
        return self.oneshot.seed_list(self.config.seed) if self.is_oneshot else []


def build_plan(
    source: SearchConfig | Mapping[str, Any] | str | os.PathLike[str], *, name: str | None = None
) -> SearchPlan:
    """Load ``source`` (unless it is a config already) and build its plugins once.

    ``name`` overrides the study name. Every problem raises ConfigError naming
    the section (``space:``, ``strategy:``, ``evaluator:``) and the bad value.
    """
    config = load_config(source)
    if name:  # validated like the config's own name: it becomes a folder of the artifacts
        config = load_config({**config.model_dump(mode="json"), "name": name})
    label = str(source) if isinstance(source, str | os.PathLike) else "config"
    space = _section(label, "space", lambda: _space(config))
    evaluator = _section(label, "evaluator", lambda: _evaluator(config))
    _section(label, "evaluator", lambda: evaluator.check_space(space, config.evaluator.options))
    _section(label, "objectives", lambda: _check_objectives(config, evaluator))
    shape = DataShape()
    if is_oneshot(config.strategy.name):
        settings = _section(label, "strategy", lambda: _oneshot_settings(config, space))
        return SearchPlan(config, space, evaluator, None, settings, shape)
    strategy = _section(label, "strategy", lambda: _strategy(config, space, shape))
    _section(label, "strategy", lambda: _check_recipe(config, strategy, evaluator))
    plan = SearchPlan(config, space, evaluator, strategy, None, shape)
    return replace(plan, scheduler=_section(label, "scheduler", lambda: make_scheduler(plan)))


def _data_identity(dataset: DatasetConfig) -> dict[str, Any]:
    """The dataset's fields, its path replaced by a cheap identity of what is there (if anything is).

    A file: its size and the hash of its first MiB; a directory: its entries'
    names. Cheap on a 200 MB archive or a folder of a million images, and it
    tells two datasets apart without tying a study to where its data lives.
    """
    fields = dataset.model_dump(mode="json", exclude_none=True, exclude={"seed", *READING_FIELDS})
    path = Path(dataset.path).expanduser() if dataset.path else None
    if path is None or not path.exists():
        return fields
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as stream:
            digest.update(stream.read(1 << 20))
        content = f"file of {path.stat().st_size} bytes, sha256 of the first MiB {digest.hexdigest()[:16]}"
    else:
        names = sorted(os.listdir(path))
        digest.update("\0".join(names).encode())
        content = f"directory of {len(names)} entries, sha256 of their names {digest.hexdigest()[:16]}"
    del fields["path"]
    return {**fields, "content": content}


def _section(label: str, section: str, build: Callable[[], Any]) -> Any:
    """Build one plugin; its ConfigError is reported like a schema error of that section."""
    try:
        return build()
    except ConfigError as exc:
        raise ConfigError(f"invalid {label}:\n  {section}: {exc}") from exc
    except Exception as exc:  # a plugin's own code failed on these options: still the user's input
        raise ConfigError(
            f"invalid {label}:\n  {section}: building it failed with {type(exc).__name__}: {shorten(str(exc), 500)}"
        ) from exc


def _space(config: SearchConfig) -> SearchSpace:
    """The space, its option names checked against its constructor (values by the space itself)."""
    return create_space(config.space.name, **config.space.options)


def _evaluator(config: SearchConfig) -> type[Evaluator]:
    """The evaluator class, with its options checked against its settings model or constructor."""
    cls = EVALUATORS.get(config.evaluator.name)
    model = cls.settings_model
    options = config.evaluator.options
    if isinstance(model, type) and issubclass(model, BaseModel):
        if not isinstance(config.evaluator, model):  # TrainSettings sections are validated at load
            try:
                model.model_validate(options)
            except ValidationError as exc:
                raise ConfigError(
                    f"invalid options of evaluator {config.evaluator.name!r}:\n"
                    + format_validation_error(exc, model)
                ) from exc
    else:
        check_option_names("evaluator", config.evaluator.name, cls, options)
    return cls


def _check_objectives(config: SearchConfig, cls: type[Evaluator]) -> None:
    """Every objective must be a metric the evaluator reports, or every trial would fail."""
    reported = cls.reported_metrics(options=config.evaluator.options)
    if reported is None:  # an evaluator that does not declare its metrics is not checked
        return
    for objective in config.objectives:
        if objective not in reported:
            raise UnknownNameError(
                f"objective (a metric evaluator {config.evaluator.name!r} reports)", objective, reported
            )


def _oneshot_settings(config: SearchConfig, space: SearchSpace) -> Any:
    from nas.oneshot import check_options

    return check_options(config.strategy.name, space, config.strategy.options)


def _strategy(config: SearchConfig, space: SearchSpace, shape: DataShape) -> Strategy:
    from nas.strategies import create_strategy

    for metric in config.constraints:  # the cost model measures these before training, nothing else
        if metric not in COST_METRICS:
            raise UnknownNameError("constraint metric (measured before training)", metric, COST_METRICS)
    return create_strategy(
        config.strategy.name,
        space,
        objectives=dict(config.objectives),
        seed=config.seed,
        constraints=dict(config.constraints) or None,
        measure=cost_model(space, shape) if config.constraints else None,
        **config.strategy.options,
    )


def _check_recipe(config: SearchConfig, strategy: Strategy, evaluator: type[Evaluator]) -> None:
    """A strategy that decides training settings per trial needs an evaluator that takes them."""
    fields = strategy.recipe_fields
    unknown = [name for name in fields if name not in evaluator.recipe_fields]
    if not unknown:
        return
    if not evaluator.recipe_fields:
        raise ConfigError(
            f"strategy {config.strategy.name!r} searches training recipes ({list(fields)}), but evaluator "
            f"{config.evaluator.name!r} takes no per-trial recipe; use an evaluator that trains, e.g. 'train'"
        )
    raise UnknownNameError(
        f"recipe setting (one evaluator {config.evaluator.name!r} takes per trial)",
        unknown[0],
        evaluator.recipe_fields,
    )


#: What the cost model measures, so what a constraint may limit.
COST_METRICS = ("params", "flops")


def cost_model(space: SearchSpace, shape: DataShape) -> Callable[[Architecture], dict[str, float]]:
    """The strategies' cheap cost model: params and FLOPs before training (for constraints)."""

    def measure(arch: Architecture) -> dict[str, float]:
        stats = space.stats(arch, input_shape=shape.input_shape, num_classes=shape.num_classes)  # type: ignore[attr-defined]
        return {"params": float(stats.params), "flops": float(stats.flops)}

    return measure


__all__ = ["COST_METRICS", "DataShape", "SearchPlan", "build_plan", "cost_model"]
