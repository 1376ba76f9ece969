"""Tabular benchmark evaluators: look results up instead of training.

A :class:`Table` is a CSV with an ``arch`` column holding the space's string
form and numeric metric columns (NAS-Bench-201 accuracies, device latencies).
It is parsed once per (file, space), every row checked to be a member of the
space, and indexed by exact architecture and, as a fallback for tables that
list one representative per class, by ``space.canonical_key``.

:class:`TableEvaluator` maps objective names to columns. Columns whose name
says *test* (:func:`nas.core.leakage.is_test_column`) can never be objectives,
and an evaluation returns nothing else: no test number reaches a trial while
the search runs. Test numbers are read from the :class:`Table` after the
search has ended, as ``nas bench`` does (see :mod:`nas.core.leakage`).

Registered evaluators: ``nb201_table`` (NAS-Bench-201 12-epoch accuracies,
optional device latency) and ``fbnet_latency`` (FBNet device latency).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from nas.core.errors import ConfigError, NASError, UnknownNameError
from nas.core.evaluator import EVALUATORS, EvalRequest, EvalResult, Evaluator
from nas.core.leakage import is_test_column, refuse_test_column
from nas.core.space import SearchSpace
from nas.data.paths import FBNET_LATENCY, NB201_LATENCY, NB201_TABLE, data_path
from nas.data.tables import Table

logger = logging.getLogger(__name__)


class TableEvaluator(Evaluator):
    """Objective values looked up in tables, by column.

    ``metrics`` maps objective names to columns of ``table``
    (``{"val_accuracy": "cifar10-val"}``); ``latency_table`` and ``device``
    add ``latency_ms`` from that table's ``device`` column. Nothing else is
    returned: test numbers are read from the table after the search, never
    carried by a trial. A NaN in a table is an error (the trial fails), never
    a silent value.
    """

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | Table | None = None,
        metrics: Mapping[str, str] | None = None,
        latency_table: str | os.PathLike[str] | Table | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(space)
        self.table = self._table(table) if table is not None else None
        self.metrics = dict(metrics or {})
        for objective, column in self.metrics.items():
            if self.table is None:
                raise ConfigError(f"metrics {self.metrics} need a table to read them from")
            self._check_search_column(self.table, objective, column)
        self.latency_table = self._table(latency_table) if latency_table is not None else None
        self.device = device
        if (self.latency_table is None) != (device is None):
            raise ConfigError("latency needs both latency_table and device (a column of that table)")
        if self.latency_table is not None and device is not None:
            self._check_search_column(self.latency_table, "latency_ms", device)
        if not self.metrics and self.latency_table is None:
            raise ConfigError("a table evaluator needs metrics, a latency table, or both")

    def _table(self, table: str | os.PathLike[str] | Table) -> Table:
        if isinstance(table, Table):
            if table.space.name != self.space.name:
                raise ConfigError(
                    f"table {table.path} is for space {table.space.name!r}, not {self.space.name!r}"
                )
            return table
        return Table.load(table, self.space)

    @staticmethod
    def _check_search_column(table: Table, objective: str, column: str) -> None:
        refuse_test_column(objective, "objective")
        refuse_test_column(column, f"objective {objective!r}", table.columns)
        if column not in table.columns:
            allowed = [c for c in table.columns if not is_test_column(c)]
            raise UnknownNameError(f"column of {table.path.name}", column, allowed)

    @property
    def objectives(self) -> list[str]:
        """Names of the values every evaluation returns."""
        return [*self.metrics, *(["latency_ms"] if self.latency_table is not None else [])]

    def measure(self, request: EvalRequest) -> EvalResult:
        """The table's row for the architecture (seed and budget do not apply: nothing trains)."""
        arch = request.arch
        values: dict[str, float] = {}
        if self.table is not None:
            row = self.table.row(arch)
            for objective, column in self.metrics.items():
                values[objective] = self._finite(self.table, column, row)
        if self.latency_table is not None and self.device is not None:
            values["latency_ms"] = self._finite(self.latency_table, self.device, self.latency_table.row(arch))
        return EvalResult(values=values)

    def _finite(self, table: Table, column: str, row: int) -> float:
        value = float(table.column(column)[row])
        if not math.isfinite(value):
            raise NASError(
                f"{table.path.name} has no {column!r} value for {self.space.format(table.archs[row])!r} "
                f"(row {row + 1} is {value})"
            )
        return value


@EVALUATORS.register("nb201_table")
class Nb201TableEvaluator(TableEvaluator):
    """NAS-Bench-201 12-epoch results, objective ``val_accuracy`` from the ``metric`` column.

    ``table`` defaults to ``$NAS_DATA_DIR/nb201/nb201_12epoch.csv``; any CSV
    with an ``arch`` column in the benchmark's string form works. Give
    ``device`` (e.g. ``pixel3``) to add ``latency_ms`` from ``latency_table``
    (default ``nb201/nb201_latency_ms.csv``).
    """

    @classmethod
    def reported_metrics(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The ``objective`` option (default ``val_accuracy``), and ``latency_ms`` with a ``device``."""
        objective = str(options.get("objective", "val_accuracy"))
        return (objective, "latency_ms") if options.get("device") is not None else (objective,)

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | Table | None = None,
        metric: str = "cifar10-val",
        latency_table: str | os.PathLike[str] | Table | None = None,
        device: str | None = None,
        objective: str = "val_accuracy",
    ) -> None:
        if space.name != "nb201":
            raise ConfigError(f"nb201_table evaluates the 'nb201' space, not {space.name!r}")
        if device is not None and latency_table is None:
            latency_table = data_path(NB201_LATENCY)
        super().__init__(
            space,
            table=data_path(NB201_TABLE) if table is None else table,
            metrics={objective: metric},
            latency_table=latency_table,
            device=device,
        )


@EVALUATORS.register("fbnet_latency")
class FbnetLatencyEvaluator(TableEvaluator):
    """Measured device latency (``latency_ms``) of FBNet architectures (5,000 in the table)."""

    reports: ClassVar[tuple[str, ...] | None] = ("latency_ms",)

    def __init__(
        self,
        space: SearchSpace,
        device: str = "pixel3",
        latency_table: str | os.PathLike[str] | Table | None = None,
    ) -> None:
        if space.name != "fbnet":
            raise ConfigError(f"fbnet_latency evaluates the 'fbnet' space, not {space.name!r}")
        super().__init__(
            space,
            latency_table=data_path(FBNET_LATENCY) if latency_table is None else latency_table,
            device=device,
        )
