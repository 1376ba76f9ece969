"""Running a one-shot search without Ray: create, check, train with checkpoints, derive, report.

:func:`create_method` is where bad input is refused before any training:
an unknown method or an unsupported space, bad options, a dataset too small
to split, a supernet step that will not fit the device, a rank correlation
without a table. :func:`run_oneshot` trains (resuming from a checkpoint
directory if it holds one), then derives the architecture and writes the
guard-rail reports into a :class:`OneShotResult`, which is what the Ray
runner ships back to the driver and stores.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.oneshot import ONESHOT
from nas.core.space import SearchSpace
from nas.data import Dataset
from nas.oneshot.checkpoint import load_checkpoint, save_checkpoint
from nas.oneshot.collapse import detect_collapse
from nas.oneshot.memory import check_memory
from nas.oneshot.method import EpochCallback, OneShotMethod
from nas.oneshot.ranking import load_table, rank_correlation, table_of, tabular_spaces
from nas.oneshot.settings import OneShotSettings, parse_settings

logger = logging.getLogger(__name__)

#: Per-epoch supernet metrics stored as ``supernet/<name>`` curves.
SUPERNET_METRICS: tuple[str, ...] = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "tau",
    "hessian_eigenvalue",
    "skip_share",
    "collapsed",
    "weight_distance",
    "epoch_time_s",
)


@dataclass
class OneShotResult:
    """Everything a finished supernet run produced (JSON-serialisable via :meth:`to_json`)."""

    method: str
    space: str
    seed: int
    arch: Architecture
    arch_string: str
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    alpha_history: list[dict[str, dict[str, float]]] = field(default_factory=list)
    stop_reason: str | None = None
    collapse: dict[str, Any] | None = None
    rank: dict[str, Any] | None = None
    evolution: dict[str, Any] | None = None
    #: Perturbation selection's measurements (``selection: perturbation``), else None.
    selection: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    seconds: float = 0.0
    #: The epoch a resumed run continued from (None: trained from the start in one go).
    resumed_from: int | None = None

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """``supernet/<metric>`` and ``alpha/<edge>/<op>`` curves by epoch (the store's metric form)."""
        result: dict[str, list[tuple[int, float]]] = {}
        for row in self.history:
            epoch = int(row["epoch"])
            for name in SUPERNET_METRICS:
                if name in row and math.isfinite(row[name]):
                    result.setdefault(f"supernet/{name}", []).append((epoch, float(row[name])))
        for epoch, alphas in enumerate(self.alpha_history, start=1):
            for edge, ops in alphas.items():
                for op, probability in ops.items():
                    result.setdefault(f"alpha/{edge}/{op}", []).append((epoch, float(probability)))
        return result

    def user_attrs(self) -> dict[str, Any]:
        """The supernet trial's attributes (the curves go to the metrics table instead)."""
        last = self.history[-1] if self.history else {}
        return {
            "derived_arch": self.arch_string,
            "epochs_completed": self.epochs,
            "stop_reason": self.stop_reason,
            "final_alphas": self.alpha_history[-1] if self.alpha_history else {},
            "supernet_val_accuracy": last.get("val_accuracy"),
            "supernet_train_accuracy": last.get("train_accuracy"),
            "collapse": self.collapse,
            "rank_correlation": self.rank,
            "evolution": self.evolution,
            "selection": self.selection,
            "memory_estimate": self.memory,
            "train_time_s": self.seconds,
            "resumed_from_epoch": self.resumed_from,
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["arch"] = self.arch.to_dict()
        return json.dumps(data, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> OneShotResult:
        data = json.loads(text)
        data["arch"] = Architecture.from_dict(data["arch"])
        return cls(**data)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def check_options(
    name: str, space: SearchSpace, options: Mapping[str, Any] | OneShotSettings | None
) -> OneShotSettings:
    """Validate a method name, its support of ``space`` and its options (no data, no torch models)."""
    from nas.oneshot.method import check_support

    cls = ONESHOT.get(name)
    check_support(name, cls.kinds, space)
    settings = parse_settings(name, options)
    cls.check_settings(space, settings)
    if settings.rank_correlation and settings.rank_table is None and table_of(space) is None:
        raise ConfigError(
            f"rank_correlation needs stand-alone results: space {space.name!r} has no tabular benchmark "
            f"(available for {', '.join(tabular_spaces())}); set rank_table to a CSV of this space or "
            "rank_correlation: 0"
        )
    if settings.partial_channels is not None or name == "pc_darts":
        from nas.oneshot.build import cell_width, check_partial

        width = cell_width(space, settings.channels)
        if width is not None:
            check_partial(space.name, width, int(settings.option("partial_channels")))
    return settings


def create_method(
    name: str,
    space: SearchSpace,
    dataset: Dataset,
    options: Mapping[str, Any] | OneShotSettings | None = None,
    *,
    seed: int = 0,
    data_seed: int = 0,
) -> OneShotMethod:
    """The method ``name`` on ``space`` and ``dataset``, with every check done before training."""
    settings = check_options(name, space, options)
    method: OneShotMethod = ONESHOT.get(name)(space, dataset, settings, seed=seed, data_seed=data_seed)
    if settings.rank_correlation:
        load_table(space, settings.rank_table).column(settings.rank_metric)
    if settings.check_memory:
        method.memory_estimate = check_memory(method)
    return method


def finish(method: OneShotMethod, seconds: float = 0.0, resumed_from: int | None = None) -> OneShotResult:
    """Derive the architecture and run the reports of a trained method."""
    arch = method.derive()
    collapse = detect_collapse(method.space, arch, method.alpha_history, method.settings.collapse_threshold)
    if collapse is not None and collapse.collapsed:
        logger.warning("%s seed %d: %s", method.name, method.seed, collapse.message)
    rank = None
    if method.settings.rank_correlation:
        report = rank_correlation(
            method, method.settings.rank_correlation, method.settings.rank_table, method.settings.rank_metric
        )
        logger.info(
            "%s seed %d: supernet vs %s over %d cells: Kendall tau %.3f, Spearman %.3f",
            method.name,
            method.seed,
            report.metric,
            report.samples,
            report.kendall_tau,
            report.spearman,
        )
        rank = report.to_dict()
    evolution = getattr(method, "evolution", None)
    selection = method.selection_report()
    memory = method.memory_estimate
    return OneShotResult(
        method=method.name,
        space=method.space.name,
        seed=method.seed,
        arch=arch,
        arch_string=method.space.format(arch),
        epochs=method.epoch,
        history=list(method.history),
        alpha_history=list(method.alpha_history),
        stop_reason=method.stop_reason,
        collapse=None if collapse is None else collapse.to_dict(),
        rank=rank,
        evolution=None if evolution is None else evolution.to_dict(method.space),
        selection=selection,
        memory=None if memory is None else memory.to_dict(),
        seconds=seconds,
        resumed_from=resumed_from,
    )


def run_oneshot(
    method: OneShotMethod,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    callback: EpochCallback | None = None,
) -> OneShotResult:
    """Train ``method`` (resuming from ``checkpoint_dir``), checkpoint every epoch, derive and report."""
    started = time.perf_counter()
    resumed = None
    if checkpoint_dir is not None and load_checkpoint(method, checkpoint_dir):
        resumed = method.epoch
        logger.info(
            "%s seed %d: resumed from %s at epoch %d", method.name, method.seed, checkpoint_dir, method.epoch
        )

    def on_epoch(trained: OneShotMethod, metrics: Mapping[str, float]) -> None:
        if checkpoint_dir is not None:
            save_checkpoint(trained, checkpoint_dir)
        if callback is not None:
            callback(trained, metrics)

    method.fit(on_epoch)
    return finish(method, time.perf_counter() - started, resumed_from=resumed)


__all__ = ["OneShotResult", "check_options", "create_method", "finish", "run_oneshot"]
