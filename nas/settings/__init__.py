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
from typing import Any

#: Module -> the public names it defines.
_MODULES: dict[str, tuple[str, ...]] = {
    "dataset": ("BUILTIN_DATASETS", "DatasetConfig"),
    "errors": ("format_validation_error",),
    "loading": ("load_config",),
    "train": ("TrainSettings",),
    "specialize": ("SpecializeConfig", "TargetConfig"),
    "search": (
        "BudgetConfig",
        "EvaluatorConfig",
        "PluginEvaluatorConfig",
        "ResourcesConfig",
        "SchedulerConfig",
        "SearchConfig",
        "SpaceConfig",
        "StrategyConfig",
        "TrainEvaluatorConfig",
    ),
}
_HOMES = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nas.settings' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nas.settings.{_HOMES[name]}"), name)


__all__ = sorted(_HOMES)  # noqa: PLE0605  (resolved lazily by __getattr__)
