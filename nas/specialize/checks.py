"""What ``nas specialize`` refuses before any work: the study, its method and space, the targets.

Every check here runs before a weight is loaded or a study is written, and
raises the platform's own error types with the bad value and the allowed
ones (see :mod:`nas.specialize.run`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nas.core.errors import ConfigError
from nas.core.oneshot import ELASTIC, ONESHOT, oneshot_view, spaces_with
from nas.core.trial import Trial, TrialState
from nas.settings.specialize import SpecializeConfig
from nas.specialize.model import LatencyModel
from nas.store.study import Study


def open_study(study: str | Study, storage: str | None) -> Study:
    if isinstance(study, Study):
        return study
    from nas.store import resolve_storage_url
    from nas.store.study import load_study

    return load_study(study, storage=resolve_storage_url(storage))


def search_config(source: Study) -> Any:
    from nas.settings import load_config

    if not source.config:
        raise ConfigError(
            f"study {source.name!r} has no stored search config, so its supernet cannot be rebuilt; "
            "specialisation needs a study run by nas search with an elastic supernet method (bignas)"
        )
    return load_config(dict(source.config))


def elastic_methods() -> list[str]:
    """The one-shot methods that train an elastic supernet (whose sub-networks need no retraining)."""
    return [n for n in ONESHOT.names() if getattr(ONESHOT.get(n), "specializable", False)]


def check_elastic(source: Study, config: Any, space: Any) -> str:
    """The study's method name, if it trained an elastic supernet of a space that has one."""
    view = oneshot_view(space)
    if view is None or view.elastic is None:
        raise ConfigError(
            f"space {space.name!r} of study {source.name!r} has no elastic supernet, so its sub-networks "
            f"cannot inherit weights; spaces with one: {', '.join(spaces_with([ELASTIC])) or 'none'}"
        )
    name = config.strategy.name
    methods = elastic_methods()
    if name not in methods:
        kind = "one-shot method" if name in ONESHOT else "black-box strategy"
        raise ConfigError(
            f"study {source.name!r} was searched with the {kind} {name!r}, which trains no elastic supernet; "
            f"specialisation needs a study of an elastic method: {', '.join(methods)} "
            f"(e.g. strategy: {{name: {methods[0]}}} in the search config)"
        )
    return name


def check_latency_model(source: Study, space: Any) -> None:
    """Refuse a space no latency model prices: without one no sub-network can be held to a budget.

    A model needs the space's device table (``latency_table``) or its split
    into latency parts (``latency_parts``, per decision or per block context,
    what ``nas latency profile`` measures); an elastic space may have neither
    (none registered today: fbnet has both, hybrid the parts per context).
    """
    view = oneshot_view(space)
    if view is not None and (view.latency_table is not None or view.latency_parts is not None):
        return
    from nas.core.space import SPACES

    able = [
        n
        for n in spaces_with([ELASTIC])
        if (v := oneshot_view(SPACES.get(n))) is not None and (v.latency_table or v.latency_parts)
    ]
    raise ConfigError(
        f"space {space.name!r} of study {source.name!r} has an elastic supernet but no latency model "
        "(no device latency table, no per-block latency parts), so no sub-network can be held to a "
        f"latency budget; spaces with one: {', '.join(able) or 'none'}"
    )


def check_settings(
    source: Study,
    config: Any,
    settings: SpecializeConfig | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> SpecializeConfig:
    if settings is None:
        if config.specialize is None:
            raise ConfigError(
                f"no targets to specialise study {source.name!r} for: pass --device NAME --max-latency-ms X, "
                "or --config FILE with a specialize: section (targets: [{device: ..., max_latency_ms: ...}]), "
                "or put that section in the search config"
            )
        settings = config.specialize
    raw = settings.model_dump() if isinstance(settings, SpecializeConfig) else dict(settings)
    if isinstance(settings, SpecializeConfig) and not overrides:
        return settings
    from pydantic import ValidationError

    merged = {**raw, **overrides}
    if "candidates" in overrides and "population_size" not in overrides:  # fewer candidates than a population
        merged["population_size"] = min(int(raw.get("population_size", 16)), int(overrides["candidates"]))
    try:
        return SpecializeConfig.model_validate(merged)
    except ValidationError as exc:
        from nas.settings.errors import format_validation_error

        raise ConfigError(f"specialize settings are invalid:\n{format_validation_error(exc)}") from exc


def supernet_trial(source: Study, method: str, number: int | None) -> Trial:
    supernets = [
        t
        for t in source.trials(states=TrialState.PRUNED)
        if t.system_attrs.get("kind") == "supernet" and t.system_attrs.get("method") == method
    ]
    if not supernets:
        raise ConfigError(
            f"study {source.name!r} has no finished {method} supernet yet; run (or resume) its search "
            "with nas search CONFIG first"
        )
    if number is None:
        return supernets[0]
    for trial in supernets:
        if trial.number == number:
            return trial
    raise ConfigError(
        f"trial {number} of study {source.name!r} is not a finished {method} supernet; "
        f"supernet trials: {', '.join(str(t.number) for t in supernets)}"
    )


def check_budget(space: Any, model: LatencyModel, budget: float) -> None:
    """Refuse a budget below the fastest sub-network the device's model predicts (naming that one)."""
    if not (
        isinstance(budget, int | float)
        and not isinstance(budget, bool)
        and math.isfinite(budget)
        and budget > 0
    ):
        raise ConfigError(f"max latency {budget!r} ms is not allowed; expected a positive number")
    arch, fastest = model.fastest(space)
    if fastest > budget:
        raise ConfigError(
            f"no sub-network of the {space.name} space meets {budget:g} ms on {model.device}: the fastest "
            f"achievable is {fastest:.4g} ms ({space.format(arch)}); raise --max-latency-ms to at least that"
        )


__all__ = [
    "check_budget",
    "check_elastic",
    "check_latency_model",
    "check_settings",
    "elastic_methods",
    "open_study",
    "search_config",
    "supernet_trial",
]
