"""Settings: the pydantic schema of a search, YAML loading and validation-error messages.

This layer sits above the kernel (:mod:`nas.core`) and the store and below
every plugin: it imports only ``nas.core``, pydantic and yaml, so plugins can
import :class:`DatasetConfig` (``nas.settings.dataset``) and
:class:`TrainSettings` (``nas.settings.train``) without a cycle. The package
resolves its names lazily, so importing one of those small modules does not
load the whole search schema. Checks that need a plugin *built* live above
the plugins, in :mod:`nas.runner.plan`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.settings.dataset import BUILTIN_DATASETS, DatasetConfig
    from nas.settings.errors import format_validation_error
    from nas.settings.loading import load_config
    from nas.settings.search import (
        BudgetConfig,
        EvaluatorConfig,
        PluginEvaluatorConfig,
        ResourcesConfig,
        SchedulerConfig,
        SearchConfig,
        SpaceConfig,
        StrategyConfig,
        TrainEvaluatorConfig,
    )
    from nas.settings.train import TrainSettings

#: Public name -> the module defining it.
_HOMES: dict[str, str] = {
    "BUILTIN_DATASETS": "dataset",
    "DatasetConfig": "dataset",
    "format_validation_error": "errors",
    "load_config": "loading",
    "TrainSettings": "train",
    **{
        name: "search"
        for name in (
            "BudgetConfig",
            "EvaluatorConfig",
            "PluginEvaluatorConfig",
            "ResourcesConfig",
            "SchedulerConfig",
            "SearchConfig",
            "SpaceConfig",
            "StrategyConfig",
            "TrainEvaluatorConfig",
        )
    },
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nas.settings' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nas.settings.{_HOMES[name]}"), name)


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
