"""What export reads from a study's stored search config, without running any code it names.

A stored config is data from the store, which may be shared or come from
elsewhere, and it can name code: ``plugins:`` modules to import and a
``package.module:function`` dataset to call. Validating it with
:func:`nas.settings.load_config` would run both, so export never does.
It reads the raw dict instead and takes only:

* the dataset section, when it names a built-in dataset (``digits``,
  ``cifar10``, ``image_folder``, ``synthetic``), parsed with
  :class:`~nas.settings.dataset.DatasetConfig` (which imports nothing); a user
  function is not called, so its test accuracy is unavailable and its
  trials cannot be retrained here;
* the train evaluator's settings, parsed with :class:`~nas.settings.train.TrainSettings`;
* the ``resources`` section, parsed with :class:`~nas.settings.search.ResourcesConfig`:
  retraining runs on the study's ``workers`` (each with its ``cpu`` and
  ``gpu_per_worker``) unless ``--workers`` says otherwise;
* the evaluator's name and the data seed; the name is looked up only among
  the evaluators already registered (the built-ins), for its metadata
  (``settings_model``, ``needs_data``).

The model itself is built from the study's space name and options and the
trial's architecture, so a plugin named in the config (a module, a custom
evaluator) that is no longer importable does not stop an export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from nas.core.errors import ConfigError
from nas.core.seeds import check_seed
from nas.settings.dataset import BUILTIN_DATASETS, DatasetConfig
from nas.settings.search import DEFAULT_EVALUATOR, ResourcesConfig, evaluator_class
from nas.settings.train import TrainSettings
from nas.store.study import Study

#: Why a user-function dataset is not loaded (shown as the missing test accuracy's reason).
NO_STORED_CODE = "export does not run code named in a stored config"


@dataclass(frozen=True)
class StoredConfig:
    """The parts of a stored search config that export uses."""

    #: The evaluator's name as stored (``"unknown"`` for a study without a config).
    evaluator: str = "unknown"
    #: The dataset, when it is a built-in one.
    dataset: DatasetConfig | None = None
    #: Why there is no dataset (``None`` when there is one).
    dataset_note: str | None = "the study's search config names no dataset"
    #: Seed of the train/validation split: ``dataset.seed``, else the config's ``seed``.
    data_seed: int = 0
    #: The train evaluator's settings (defaults for other evaluators).
    train: TrainSettings = field(default_factory=TrainSettings)
    #: The search's per-trial resources: its ``workers`` are retraining's default.
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def train_settings(self, epochs: int | None, recipe: Mapping[str, Any] | None = None) -> TrainSettings:
        """The train settings with the trial's training ``recipe`` applied (``system_attrs["recipe"]``,
        what the trial trained with) and ``epochs`` overridden (``None``: the study's or the recipe's)."""
        if epochs is None and not recipe:
            return self.train
        overrides = {**(recipe or {}), **({"epochs": epochs} if epochs is not None else {})}
        return TrainSettings.model_validate({**self.train.model_dump(), **overrides})


def read_stored_config(study: Study) -> StoredConfig:
    """Read what export needs from ``study``'s stored config; imports and calls nothing it names."""
    raw = study.config
    if not raw:
        return StoredConfig()
    where = f"study {study.name!r} has a stored search config whose"
    evaluator = raw.get("evaluator")
    if evaluator is None:
        evaluator = {"name": DEFAULT_EVALUATOR}
    if not isinstance(evaluator, Mapping) or not isinstance(evaluator.get("name", DEFAULT_EVALUATOR), str):
        raise ConfigError(f"{where} evaluator section is not a mapping with a name: {evaluator!r}")
    name = str(evaluator.get("name", DEFAULT_EVALUATOR))
    # The evaluator's metadata, from the registry of evaluators already registered (the built-ins);
    # a plugin module the config names is never imported, so its evaluator is unknown here.
    metadata = evaluator_class(name)
    settings_model = getattr(metadata, "settings_model", None)
    train = TrainSettings()
    if isinstance(settings_model, type) and issubclass(settings_model, TrainSettings):
        options = {k: v for k, v in evaluator.items() if k != "name"}
        train = _parse(TrainSettings, options, f"{where} train evaluator settings")
    try:
        seed = check_seed(raw.get("seed", 0))
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from exc

    resources = raw.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise ConfigError(f"{where} resources section is not a mapping: {resources!r}")
    stored = _parse(ResourcesConfig, resources, f"{where} resources section")
    section = raw.get("dataset")
    if section is None and getattr(metadata, "needs_data", False):
        section = {"name": "digits"}  # what the config schema defaults to for an evaluator that trains
    if section is None:
        return StoredConfig(evaluator=name, data_seed=seed, train=train, resources=stored)
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} dataset section is not a mapping: {section!r}")
    dataset_name = section.get("name", "digits")
    if dataset_name not in BUILTIN_DATASETS:
        note = f"the study's dataset {dataset_name!r} is not built in, and {NO_STORED_CODE}"
        return StoredConfig(evaluator=name, dataset_note=note, data_seed=seed, train=train, resources=stored)
    dataset = _parse(DatasetConfig, dict(section), f"{where} dataset section")
    data_seed = seed if dataset.seed is None else dataset.seed
    return StoredConfig(
        evaluator=name, dataset=dataset, dataset_note=None, data_seed=data_seed, train=train, resources=stored
    )


def _parse(model: type[Any], data: Mapping[str, Any], what: str) -> Any:
    try:
        return model.model_validate(dict(data))
    except (ValidationError, ConfigError) as exc:
        raise ConfigError(f"{what} is invalid: {exc}") from exc


__all__ = ["NO_STORED_CODE", "StoredConfig", "read_stored_config"]
