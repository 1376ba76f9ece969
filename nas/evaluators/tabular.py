"""Tabular benchmark evaluators: look results up instead of training.

A :class:`Table` is a CSV with an ``arch`` column holding the space's string
form and numeric metric columns (NAS-Bench-201 accuracies, device latencies).
It is parsed once per (file, space), every row checked to be a member of the
space, and indexed by exact architecture and, as a fallback for tables that
list one representative per class, by ``space.canonical_key``.

:class:`TableEvaluator` maps objective names to columns. Columns whose name
says *test* can never be objectives: the search sees validation numbers only.
Test numbers go to ``user_attrs`` (``report``) or are read after the search
with :meth:`TableEvaluator.reported`, which is how ``nas bench`` shows them.

Registered evaluators: ``nb201_table`` (NAS-Bench-201 12-epoch accuracies,
optional device latency) and ``fbnet_latency`` (FBNet device latency).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError, NASError, UnknownNameError
from nas.core.evaluator import EVALUATORS, EvalRequest, EvalResult, Evaluator
from nas.core.space import SearchSpace
from nas.data_paths import FBNET_LATENCY, NB201_LATENCY, NB201_TABLE, data_path

logger = logging.getLogger(__name__)

ARCH_COLUMN = "arch"
_TEST_COLUMN = re.compile(r"(^|[-_.])test($|[-_.])", re.IGNORECASE)
#: Upper bound on rows: every benchmark here is at most tens of thousands.
MAX_ROWS = 2_000_000


def is_test_column(name: str) -> bool:
    """Whether a column holds test results (``cifar10-test``, ``test_acc``, ...)."""
    return bool(_TEST_COLUMN.search(name))


class Table:
    """A read-only metric table over the architectures of one space."""

    def __init__(
        self,
        path: Path,
        space: SearchSpace,
        archs: Sequence[Architecture],
        columns: Mapping[str, np.ndarray],
    ) -> None:
        self.path = path
        self.space = space
        self.archs = tuple(archs)
        self._columns = dict(columns)
        for values in self._columns.values():
            values.setflags(write=False)
        self._exact: dict[Architecture, int] = {}
        for row, arch in enumerate(self.archs):
            if arch in self._exact:
                raise ArchitectureError(
                    f"{path}: rows {self._exact[arch] + 1} and {row + 1} both hold {space.format(arch)!r}; "
                    "each architecture may appear once"
                )
            self._exact[arch] = row
        self._canonical: dict[str, int] | None = None

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], space: SearchSpace) -> Table:
        """The table at ``path`` for ``space``, parsed once and cached (keyed by file version)."""
        resolved = Path(path).expanduser().resolve()
        try:
            stat = resolved.stat()
        except OSError as exc:
            raise ConfigError(
                f"benchmark table {resolved} cannot be read ({exc.strerror}); set NAS_DATA_DIR to the "
                "directory holding the benchmark data or pass the table path"
            ) from exc
        key = (str(resolved), stat.st_mtime_ns, stat.st_size, _space_key(space))
        with _CACHE_LOCK:
            table = _CACHE.get(key)
            if table is None:
                table = cls._read(resolved, space)
                _CACHE[key] = table
        return table

    @classmethod
    def _read(cls, path: Path, space: SearchSpace) -> Table:
        # Tables of one benchmark list the same strings (accuracy and latency
        # tables), so parsed architectures are shared between them.
        parsed = _PARSED.setdefault(_space_key(space), {})
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise ConfigError(f"benchmark table {path} is empty; expected a header with an 'arch' column")
            header = [h.strip() for h in header]
            if ARCH_COLUMN not in header:
                raise ConfigError(
                    f"benchmark table {path} has no {ARCH_COLUMN!r} column; columns are {header}"
                )
            if len(set(header)) != len(header):
                raise ConfigError(f"benchmark table {path} repeats a column name: {header}")
            arch_at = header.index(ARCH_COLUMN)
            archs: list[Architecture] = []
            cells: list[list[str]] = []
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise ConfigError(
                        f"{path}, line {line}: {len(row)} fields but the header has {len(header)}"
                    )
                if len(archs) >= MAX_ROWS:
                    raise ConfigError(f"benchmark table {path} has more than {MAX_ROWS} rows")
                try:
                    arch = parsed.get(row[arch_at])
                    if arch is None:
                        arch = parsed[row[arch_at]] = space.parse(row[arch_at])
                    archs.append(arch)
                except ArchitectureError as exc:
                    raise ArchitectureError(
                        f"{path}, line {line}: arch {row[arch_at]!r} is not a {space.name} architecture: {exc}"
                    ) from exc
                cells.append(row)
        if not archs:
            raise ConfigError(f"benchmark table {path} has a header but no rows")
        columns: dict[str, np.ndarray] = {}
        for at, name in enumerate(header):
            if at == arch_at:
                continue
            values = _numeric([row[at] for row in cells])
            if values is not None:
                columns[name] = values
        logger.info("loaded %s: %d architectures, columns %s", path, len(archs), list(columns))
        return cls(path, space, archs, columns)

    # -- access ------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The numeric metric columns."""
        return list(self._columns)

    def column(self, name: str) -> np.ndarray:
        """All values of one metric column (row order), read-only."""
        try:
            values = self._columns[name]
        except KeyError:
            raise UnknownNameError(f"column of {self.path.name}", name, self._columns) from None
        return values

    def row(self, arch: Architecture) -> int:
        """The row of ``arch``: its exact entry, else the first row of its canonical class."""
        row = self._exact.get(arch)
        if row is not None:
            return row
        self.space.validate(arch)
        if self._canonical is None:
            canonical: dict[str, int] = {}
            for index, member in enumerate(self.archs):
                canonical.setdefault(self.space.canonical_key(member), index)
            self._canonical = canonical
        row = self._canonical.get(self.space.canonical_key(arch))
        if row is None:
            raise ArchitectureError(
                f"{self.space.format(arch)!r} is not in benchmark table {self.path} "
                "(neither exactly nor as a functionally identical architecture)"
            )
        return row

    def value(self, arch: Architecture, column: str) -> float:
        return float(self.column(column)[self.row(arch)])

    def __len__(self) -> int:
        return len(self.archs)


_CACHE: dict[tuple[str, int, int, str], Table] = {}
_PARSED: dict[str, dict[str, Architecture]] = {}
_CACHE_LOCK = threading.Lock()


def _space_key(space: SearchSpace) -> str:
    return f"{space.name}:{json.dumps(space.options, sort_keys=True)}"


def _numeric(texts: Sequence[str]) -> np.ndarray | None:
    """The column as float64, or None if some cell is not a number (a text column)."""
    try:
        return np.array([float(t) if t.strip() else math.nan for t in texts], dtype=float)
    except ValueError:
        return None


class TableEvaluator(Evaluator):
    """Objective values looked up in tables, by column.

    ``metrics`` maps objective names to columns of ``table``
    (``{"val_accuracy": "cifar10-val"}``); ``latency_table`` and ``device``
    add ``latency_ms`` from that table's ``device`` column. ``report`` names
    columns copied into ``user_attrs`` for reporting only; when one of them is
    the test twin of the accuracy column (``cifar10-val`` -> ``cifar10-test``)
    it is also copied as ``test_accuracy``. A NaN in a table is an error
    (the trial fails), never a silent value.
    """

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | Table | None = None,
        metrics: Mapping[str, str] | None = None,
        report: Sequence[str] = (),
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
        self.report = tuple([report] if isinstance(report, str) else report)
        for column in self.report:
            if self.table is None:
                raise ConfigError(f"report columns {list(self.report)} need a table to read them from")
            self.table.column(column)  # fail fast on an unknown column
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
        allowed = [c for c in table.columns if not is_test_column(c)]
        if is_test_column(column):
            raise ConfigError(
                f"objective {objective!r} may not use test column {column!r}: a search only sees "
                f"validation numbers (test columns are reported, never searched on); allowed: {allowed}"
            )
        if column not in table.columns:
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
        return EvalResult(values=values, user_attrs=self.reported(arch) if self.report else {})

    def reported(self, arch: Architecture, columns: Sequence[str] | None = None) -> dict[str, float]:
        """Report-only numbers (test accuracies) for ``arch``: for after the search, never during."""
        if self.table is None:
            return {}
        row = self.table.row(arch)
        names = self.report if columns is None else tuple(columns)
        result = {name: float(self.table.column(name)[row]) for name in names}
        for column in self.metrics.values():
            twin = _test_twin(column)
            if twin in result:
                result["test_accuracy"] = result[twin]
        return result

    def _finite(self, table: Table, column: str, row: int) -> float:
        value = float(table.column(column)[row])
        if not math.isfinite(value):
            raise NASError(
                f"{table.path.name} has no {column!r} value for {self.space.format(table.archs[row])!r} "
                f"(row {row + 1} is {value})"
            )
        return value


def _test_twin(column: str) -> str:
    return re.sub(r"(^|[-_.])val(id|idation)?($|[-_.])", r"\1test\3", column, flags=re.IGNORECASE)


@EVALUATORS.register("nb201_table")
class Nb201TableEvaluator(TableEvaluator):
    """NAS-Bench-201 12-epoch results, objective ``val_accuracy`` from the ``metric`` column.

    ``table`` defaults to ``$NAS_DATA_DIR/nb201/nb201_12epoch.csv``; any CSV
    with an ``arch`` column in the benchmark's string form works. Give
    ``device`` (e.g. ``pixel3``) to add ``latency_ms`` from ``latency_table``
    (default ``nb201/nb201_latency_ms.csv``).
    """

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | Table | None = None,
        metric: str = "cifar10-val",
        report: Sequence[str] = ("cifar10-test",),
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
            report=report,
            latency_table=latency_table,
            device=device,
        )


@EVALUATORS.register("fbnet_latency")
class FbnetLatencyEvaluator(TableEvaluator):
    """Measured device latency (``latency_ms``) of FBNet architectures (5,000 in the table)."""

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
