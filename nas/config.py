"""The search config: one YAML file (or dict) validated on load.

A search is described by one document (see ``docs/config.md``)::

    name: quickstart
    space: {name: nb201, channels: 8, cells: 1}
    dataset: {name: digits}
    strategy: {name: evolution, population_size: 8, tournament_size: 3}
    evaluator: {name: train, epochs: 4, batch_size: 64, lr: 0.05}
    objectives: {val_accuracy: max}
    constraints: {params: "<= 2e6"}
    budget: {trials: 24, concurrent: 2}

Validation uses pydantic so that every problem is reported at once, each as
``field.path: message (got VALUE)`` inside one :class:`~nas.core.ConfigError`.
Plugin names (space, strategy, evaluator) are checked against the registries,
and the space and strategy are constructed once at load so that a bad option
value fails here rather than minutes later inside a Ray worker. The model
stays JSON-serialisable (``config.model_dump(mode="json")``) because the
store saves it with the study.

This module imports no torch itself; checking the space name imports the
space plugins (which do), as any search needs them anyway.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from nas.core.errors import ConfigError, UnknownNameError
from nas.core.evaluator import EVALUATORS
from nas.core.oneshot import ONESHOT
from nas.core.registry import import_plugins
from nas.core.space import SPACES, SearchSpace
from nas.core.strategy import STRATEGIES, Constraint, parse_constraints
from nas.core.trial import Direction, parse_objectives

logger = logging.getLogger(__name__)

#: Datasets built into :mod:`nas.data`; anything else must be ``"package.module:function"``.
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "cifar10", "image_folder", "synthetic")
_FUNCTION_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_STUDY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

#: Strategy options the runner sets from top-level fields; a strategy block may not set them.
_RUNNER_STRATEGY_OPTIONS: dict[str, str] = {
    "objectives": "objectives",
    "seed": "seed",
    "constraints": "constraints",
    "measure": "constraints",
}


class _Section(BaseModel):
    """A config section: unknown fields are typos and are refused; NaN/inf never make sense."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _PluginSection(BaseModel):
    """A section naming a plugin; the fields besides ``name`` are the plugin's options."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    name: str

    @property
    def options(self) -> dict[str, Any]:
        """The plugin options (every field except ``name``)."""
        return dict(self.model_extra or {})


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


def _is_oneshot(name: str) -> bool:
    """Whether ``name`` is a registered one-shot method (``nas.core.oneshot.ONESHOT``)."""
    try:
        return name in ONESHOT
    except ImportError as exc:
        logger.debug("cannot check one-shot method name %r: %s", name, exc)
        return False


def _check_option_names(kind: str, name: str, cls: type, options: Mapping[str, Any]) -> None:
    """Refuse options that the plugin's constructor does not take (unless it takes ``**kwargs``)."""
    allowed: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()  # type: ignore[misc]
        for param in params:
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name not in allowed:
                if param.name not in ("self", "space"):
                    allowed.append(param.name)
        if not any(param.kind is param.VAR_KEYWORD for param in params):
            break  # the base classes' options are not forwarded
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{kind} {name!r} has no option(s) {unknown}; allowed: {allowed}")


# -- sections ---------------------------------------------------------------------------


class SpaceConfig(_PluginSection):
    """``space: {name: nb201, channels: 8, cells: 1}``: a registered space and its options."""

    @field_validator("name")
    @classmethod
    def _known_space(cls, name: str) -> str:
        SPACES.get(name)
        return name

    @model_validator(mode="after")
    def _options_build(self) -> SpaceConfig:
        self.create()  # unknown options and bad values fail at load, with the space's own message
        return self

    def create(self) -> SearchSpace:
        """The search space this section describes."""
        from search_spaces import get_space

        return get_space(self.name, **self.options)


#: Dataset fields used only by some datasets (``None`` = unset); the rest apply to all.
_DATASET_FIELDS: dict[str, tuple[str, ...]] = {
    "path": ("cifar10", "image_folder"),
    "image_size": ("image_folder",),
    "grayscale": ("image_folder",),
    "num_samples": ("synthetic",),
    "num_test": ("synthetic",),
    "num_classes": ("synthetic",),
    "shape": ("synthetic",),
    "noise": ("synthetic",),
    "options": ("package.module:function",),
}


class DatasetConfig(_Section):
    """Which data to train on and how validation is split off the training set.

    ``name`` is one of :data:`BUILTIN_DATASETS` or ``"package.module:function"``.
    The validation split is a stratified ``val_fraction`` of the training set,
    drawn with ``seed`` (default: the config's top-level ``seed``); the test
    split is never used by a search.
    """

    name: str = "digits"
    path: str | None = Field(
        None, description="cifar10: .npz file or python-batches directory; image_folder: root"
    )
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=2, description="use at most this many training images (stratified)")
    image_size: int | tuple[int, int] | None = None
    grayscale: bool | None = None
    num_samples: int | None = Field(None, ge=2)
    num_test: int | None = Field(None, ge=0)
    num_classes: int | None = Field(None, ge=2)
    shape: (
        tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None
    ) = None
    noise: float | None = Field(None, ge=0.0)
    options: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in BUILTIN_DATASETS and not _FUNCTION_REF.match(name):
            raise ConfigError(
                f"unknown dataset {name!r}; allowed: {', '.join(BUILTIN_DATASETS)} "
                "or 'package.module:function' returning a dataset"
            )
        return name

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, size: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sides = (size,) if isinstance(size, int) else size or ()
        if any(side < 1 for side in sides):
            raise ConfigError(
                f"image_size {size!r} is not allowed; expected a positive int or [height, width]"
            )
        return size

    @property
    def kind(self) -> str:
        """The dataset name, or ``"package.module:function"`` for a user function."""
        return self.name if self.name in BUILTIN_DATASETS else "package.module:function"

    @model_validator(mode="after")
    def _fields_fit_dataset(self) -> DatasetConfig:
        for field, users in _DATASET_FIELDS.items():
            if getattr(self, field) is not None and self.kind not in users:
                raise ConfigError(
                    f"dataset field {field!r} is not used by dataset {self.name!r}; it applies to: {', '.join(users)}"
                )
        if self.name == "image_folder" and self.path is None:
            raise ConfigError(
                "dataset 'image_folder' needs 'path': a directory with one sub-folder per class"
            )
        return self


class TrainSettings(_Section):
    """Options of the ``train`` evaluator (see :class:`nas.evaluators.train.TrainEvaluator`).

    Defaults follow common small-CNN practice: SGD with Nesterov momentum and a
    per-step cosine schedule, weight decay 5e-4, gradient clipping at 5 as in
    DARTS. ``amp='auto'`` uses fp16 mixed precision on CUDA only (bf16 on CPU is
    often slower and less accurate for tiny models, so it is opt-in with ``true``).
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0.0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(5.0, gt=0.0)
    augment: bool = False
    amp: bool | Literal["auto"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    latency_repeats: int = Field(20, ge=1)
    latency_warmup: int = Field(3, ge=0)
    eval_batch_size: int = Field(512, ge=1)


class TrainEvaluatorConfig(TrainSettings):
    """``evaluator: {name: train, ...}``."""

    name: Literal["train"] = "train"

    @property
    def options(self) -> dict[str, Any]:
        """The evaluator options (every field except ``name``)."""
        return self.model_dump(exclude={"name"})


class PluginEvaluatorConfig(_PluginSection):
    """Any other registered evaluator (``nb201_table``, ...); extra fields are its options."""

    @field_validator("name")
    @classmethod
    def _known_evaluator(cls, name: str) -> str:
        _registered(EVALUATORS, name)
        return name

    @model_validator(mode="after")
    def _known_options(self) -> PluginEvaluatorConfig:
        try:
            cls = EVALUATORS.get(self.name)
        except (ImportError, ConfigError):
            return self  # unregistered or unloadable: reported by the name check or at run time
        _check_option_names("evaluator", self.name, cls, self.options)
        return self


def _evaluator_tag(value: Any) -> str:
    name = value.get("name", "train") if isinstance(value, Mapping) else getattr(value, "name", "train")
    return "train" if name == "train" else "plugin"


EvaluatorConfig = Annotated[
    Union[  # noqa: UP007  (the X | Y form cannot carry the tags)
        Annotated[TrainEvaluatorConfig, Tag("train")],
        Annotated[PluginEvaluatorConfig, Tag("plugin")],
    ],
    Discriminator(_evaluator_tag),
]
_UNION_TAGS = {"evaluator": ("train", "plugin")}


class StrategyConfig(_PluginSection):
    """``strategy: {name: evolution, population_size: 16}``: extra fields are the strategy's options."""

    name: str = "random"

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if _is_oneshot(name):  # one-shot methods are not ask/tell strategies: their own registry
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


class BudgetConfig(_Section):
    """How much searching: ``trials`` in total, ``concurrent`` at once, optional wall-clock ``time_s``."""

    trials: int = Field(20, ge=1)
    concurrent: int = Field(1, ge=1)
    time_s: float | None = Field(None, gt=0.0)


class SchedulerConfig(_Section):
    """Early stopping of trials on their learning curves (ASHA), or ``none``."""

    name: Literal["asha", "none"] = "asha"
    grace_epochs: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1.0)


class ResourcesConfig(_Section):
    """Per-trial resources as Ray understands them (fractional GPUs allowed)."""

    cpu: float = Field(1.0, gt=0.0)
    gpu: float = Field(0.0, ge=0.0)


class SearchConfig(_Section):
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
    resources: ResourcesConfig = ResourcesConfig()
    storage: str | None = None
    seed: int = Field(0, ge=0)
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
        """The train evaluator trains on digits unless told otherwise; other evaluators may need no data."""
        if isinstance(data, Mapping) and data.get("dataset") is None:
            evaluator = data.get("evaluator")
            if evaluator is None or _evaluator_tag(evaluator) == "train":
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
        evaluator = self.evaluator
        if isinstance(evaluator, TrainEvaluatorConfig):
            if evaluator.device == "cuda" and self.resources.gpu == 0:
                raise ConfigError(
                    "evaluator.device is 'cuda' but resources.gpu is 0; give each trial a GPU share"
                )
            if (
                self.scheduler
                and self.scheduler.name == "asha"
                and self.scheduler.grace_epochs > evaluator.epochs
            ):
                raise ConfigError(
                    f"scheduler.grace_epochs={self.scheduler.grace_epochs} exceeds evaluator.epochs="
                    f"{evaluator.epochs}; allowed: 1..{evaluator.epochs}"
                )
        self._check_strategy()
        return self

    def _check_strategy(self) -> None:
        """Construct the strategy once so bad option values fail at load, not in the runner."""
        if _is_oneshot(self.strategy.name):
            self._check_oneshot()
            return
        try:
            from nas.strategies import create_strategy
        except ImportError as exc:
            logger.debug("cannot check strategy options: %s", exc)
            return
        try:
            create_strategy(
                self.strategy.name,
                self.space.create(),
                objectives=dict(self.objectives),
                seed=self.seed,
                **self.strategy.options,
            )
        except ConfigError as exc:
            raise ConfigError(f"strategy: {exc}") from exc

    def _check_oneshot(self) -> None:
        """A one-shot method: its space support and options (data, memory: checked before launch)."""
        from nas.oneshot import check_options

        if self.dataset is None:
            raise ConfigError(
                f"strategy: one-shot method {self.strategy.name!r} trains a supernet and needs a dataset; "
                "add a dataset section, e.g. dataset: {name: cifar10}"
            )
        try:
            check_options(self.strategy.name, self.space.create(), self.strategy.options)
        except ConfigError as exc:
            raise ConfigError(f"strategy: {exc}") from exc

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
    def data_seed(self) -> int:
        """The seed of the train/validation split: ``dataset.seed`` or the top-level ``seed``."""
        return self.seed if self.dataset is None or self.dataset.seed is None else self.dataset.seed


# -- loading ---------------------------------------------------------------------------------


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | SearchConfig) -> SearchConfig:
    """Load and validate a search config from a YAML file, a mapping, or an existing config.

    A file's ``name`` defaults to its stem; a relative ``dataset.path`` is
    resolved against the file's directory (against the working directory for
    a mapping) so that trials running elsewhere, e.g. in a Ray worker's
    directory, find the data. Every problem raises :class:`ConfigError`.
    """
    if isinstance(source, SearchConfig):
        return source
    if isinstance(source, Mapping):
        raw, base, label = copy.deepcopy(dict(source)), Path.cwd(), "config"
    elif isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        raw, base, label = _read_yaml(path), path.resolve().parent, str(path)
        raw.setdefault("name", path.stem)
    else:
        raise ConfigError(
            f"a config must be a YAML file path, a mapping or a SearchConfig, got {type(source).__name__}"
        )
    _resolve_paths(raw, base)
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid {label}:\n" + format_validation_error(exc)) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of fields (name, space, ...), got {type(data).__name__}"
        )
    return data


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    dataset = raw.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
        path = Path(dataset["path"]).expanduser()
        dataset["path"] = str(path if path.is_absolute() else (base / path).resolve())


def format_validation_error(exc: ValidationError, root: type[BaseModel] | None = None) -> str:
    """One line per problem: ``field.path: message (got VALUE)``; ``root`` is the validated model."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        where = "".join(f"{part}: " if i == len(loc) - 1 else f"{part}." for i, part in enumerate(loc))
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            allowed = _fields_at(loc[:-1], root or SearchConfig)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            message = f"unknown field.{hint} Allowed: {', '.join(allowed)}"
        if error["type"] == "missing" or isinstance(value, dict):
            lines.append(f"  {where}{message}")
        else:
            shown = repr(value)
            lines.append(f"  {where}{message} (got {shown[:80] + '...' if len(shown) > 80 else shown})")
    return "\n".join(lines)


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the union tags pydantic inserts (``evaluator.train.epochs`` -> ``evaluator.epochs``)."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _UNION_TAGS and parts[1] in _UNION_TAGS[str(parts[0])]:
        del parts[1]
    return tuple(parts)


def _fields_at(loc: tuple[int | str, ...], model: type[BaseModel]) -> list[str]:
    """The field names of the section at ``loc`` below ``model`` (for 'did you mean' hints)."""
    for part in loc:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        found = _model_in(annotation)
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The first strict section model inside a (possibly Optional/Annotated/Union) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


__all__ = [
    "BUILTIN_DATASETS",
    "BudgetConfig",
    "DatasetConfig",
    "EvaluatorConfig",
    "PluginEvaluatorConfig",
    "ResourcesConfig",
    "SchedulerConfig",
    "SearchConfig",
    "SpaceConfig",
    "StrategyConfig",
    "TrainEvaluatorConfig",
    "TrainSettings",
    "format_validation_error",
    "load_config",
]
