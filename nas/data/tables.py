"""Tabular benchmarks: a metric table over every architecture of a space, read once and cached.

A table is a CSV with an ``arch`` column (the space's string form) and
numeric metric columns (NAS-Bench-201's accuracies, device latencies). It is
data, not a plugin: the tabular evaluators, the tabular benchmark
(``nas bench``), the one-shot ranking of supernets and the predictor
benchmarks all read it, so it lives in the data layer below all of them.
Rows are looked up exactly, else by the space's canonical key, so a
functionally identical architecture finds its row.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError, UnknownNameError
from nas.core.space import SearchSpace

logger = logging.getLogger(__name__)

ARCH_COLUMN = "arch"
#: Upper bound on rows: every benchmark here is at most tens of thousands.
MAX_ROWS = 2_000_000


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


__all__ = ["ARCH_COLUMN", "MAX_ROWS", "Table"]
