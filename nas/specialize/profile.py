"""``nas latency profile``: this machine's per-block latency table, measured with ONNX Runtime.

``--device local`` specialises for the machine that runs it. Measuring every
candidate network would cost more than scoring it; FBNet's answer is a lookup
table: each block at each layer is measured once, alone, and a network's
latency is the sum of its blocks' plus the fixed stem and head. The space
says what those parts are (its one-shot view's ``latency_parts``); here each
distinct part (same module, same input) is exported to ONNX and timed at
batch 1 with one intra-op thread, as the export measures whole models
(:mod:`nas.export.latency`). Where a block's cost depends on what precedes
it (hybrid: its input width and resolution), the space lists one part per
block *context* that some architecture reaches, and a network's latency is
the sum of the entries along its path (the view's ``latency_keys``); the
table says so (``keyed_by: context``).

Every ``session.run`` has a fixed cost that a whole network pays once, not
once per block, so that cost (the median of a graph doing nothing but an
identity) is taken off every part and added once to the constant. A few
random whole networks are then measured against the sum: what the sum
misses (per-node dispatch, memory traffic between blocks) is mostly a
constant, fitted as the median gap on the first half of them and checked on
the second half (``validation`` in the file), so a user sees how well the
table adds up on this machine.

The table is cached under ``$NAS_CACHE_DIR/latency`` (else
``~/.cache/nas/latency``) in a file keyed by the space and its options, the
input shape and classes, and the machine (CPU model, architecture, ONNX
Runtime version, thread count): another machine, or another ONNX Runtime,
gets its own table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.core.files import atomic_write, cache_dir
from nas.core.oneshot import oneshot_view
from nas.core.space import SearchSpace
from nas.specialize.model import LOCAL, LatencyModel

logger = logging.getLogger(__name__)

#: Timed runs per part (after the warm-up), and per validation network.
DEFAULT_REPEATS = 30
WARMUP = 5
#: Random whole networks measured against the table's sum.
DEFAULT_VALIDATION = 3

#: ``progress(done, total, what)``: called after each measurement of a profile.
Progress = Callable[[int, int, str], None]


def machine() -> dict[str, Any]:
    """What a latency table depends on besides the model: CPU, architecture, ONNX Runtime, threads."""
    from nas.export.latency import LATENCY_THREADS, cpu_name

    try:
        import onnxruntime

        runtime = str(onnxruntime.__version__)
    except ImportError:
        runtime = "not installed"
    return {
        "cpu": cpu_name(),
        "arch": platform.machine(),
        "onnxruntime": runtime,
        "threads": LATENCY_THREADS,
    }


def profile_path(space: SearchSpace, input_shape: tuple[int, int, int], num_classes: int) -> Path:
    """The cache file of ``space`` at ``input_shape`` with ``num_classes`` outputs on this machine."""
    key = json.dumps(
        [space.name, space.options, list(input_shape), num_classes, machine()], sort_keys=True, default=str
    )
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    shape = "x".join(map(str, input_shape))
    return cache_dir("latency") / f"{space.name}-{shape}-{num_classes}c-{digest}.json"


def load_profile(space: SearchSpace, *, input_shape: tuple[int, int, int], num_classes: int) -> LatencyModel:
    """The cached local table as a :class:`LatencyModel`; a missing one raises with the command to build it."""
    path = profile_path(space, input_shape, num_classes)
    if not path.is_file():
        raise ConfigError(
            f"device 'local' needs this machine's latency table for the {space.name} space "
            f"{space.options} at input {'x'.join(map(str, input_shape))}, which is not built yet "
            f"(looked for {path}); build it with: nas latency profile STUDY"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        table = {
            name: {value: float(ms) for value, ms in values.items()} for name, values in data["table"].items()
        }
        return LatencyModel(
            device=LOCAL,
            table=table,
            constant=float(data["constant_ms"]),
            source=str(path),
            context=data.get("keyed_by", "decision") == "context",
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the local latency table {path} cannot be read ({exc}); rebuild it with: nas latency profile STUDY --force"
        ) from exc


def build_profile(
    space: SearchSpace,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    repeats: int = DEFAULT_REPEATS,
    validation: int = DEFAULT_VALIDATION,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[LatencyModel, dict[str, Any]]:
    """Measure (or, unless ``force``, reuse) this machine's table; returns it and the file's content.

    ``progress(done, total, what)`` after each distinct part and each whole
    network measured (hundreds of parts take minutes on a busy machine).
    """
    view = oneshot_view(space)
    if view is None or view.latency_parts is None:
        from nas.core.space import SPACES

        able = [n for n in SPACES.names() if getattr(oneshot_view(SPACES.get(n)), "latency_parts", None)]
        raise ConfigError(
            f"space {space.name!r} does not split its networks into latency parts, so no per-block "
            f"table can be measured; spaces that do: {', '.join(able) or 'none'}"
        )
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats={repeats!r} is not allowed; expected an integer >= 1")
    if isinstance(validation, bool) or not isinstance(validation, int) or validation < 0:
        raise ConfigError(f"validation={validation!r} is not allowed; expected an integer >= 0")
    path = profile_path(space, input_shape, num_classes)
    if path.is_file() and not force:
        return load_profile(space, input_shape=input_shape, num_classes=num_classes), json.loads(
            path.read_text()
        )
    parts = view.latency_parts(space, num_classes=num_classes, input_shape=input_shape)
    context = view.latency_keys is not None  # parts priced per context (see nas.specialize.model)
    # same module, same input: measured once (a context recurs at every block that can reach it)
    distinct = {(repr(module), tuple(shape)) for _, _, module, shape in parts if module is not None}
    total = len(distinct) + 2 * validation
    with tempfile.TemporaryDirectory(prefix="nas-latency-") as workdir:
        timer = _Timer(Path(workdir), repeats)
        overhead = timer.overhead()
        table: dict[str, dict[str, float]] = {}
        constant = overhead
        seen: dict[tuple[str, tuple[int, ...]], float] = {}
        for decision, value, module, shape in parts:
            ms = 0.0
            if module is not None:
                key = (repr(module), tuple(shape))
                if key not in seen:
                    seen[key] = max(timer.module(module, tuple(shape)) - overhead, 0.0)
                    if progress is not None:
                        progress(
                            len(seen), total, " ".join(str(x) for x in (decision, value) if x is not None)
                        )
                ms = seen[key]
            if decision is None:
                constant += ms
            else:
                table.setdefault(str(decision), {})[str(value)] = ms
        rng = np.random.default_rng(seed)
        archs = [space.canonical(space.sample(rng)) for _ in range(2 * validation)]
        measured = []
        for arch in archs:
            measured.append(timer.network(space, arch, num_classes, input_shape))
            if progress is not None:
                progress(len(seen) + len(measured), total, f"whole network {space.format(arch)}")
        summed_by = LatencyModel(LOCAL, table, constant, str(path), context=context)
        summed = [summed_by.predict(space, arch) for arch in archs]
        # What the parts' sum misses in a whole network (per-node dispatch, memory between blocks) is
        # mostly a constant: it is the median gap on the first half of the networks, checked on the second.
        gap = (
            float(np.median([m - p for m, p in zip(measured, summed, strict=True)][:validation]))
            if validation
            else 0.0
        )
        constant += gap
        checks = [
            {
                "arch": space.format(a),
                "predicted_ms": p + gap,
                "measured_ms": m,
                "calibration": i < validation,
            }
            for i, (a, p, m) in enumerate(zip(archs, summed, measured, strict=True))
        ]
    content = {
        "space": space.name,
        "options": space.options,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "machine": machine(),
        "repeats": repeats,
        "statistic": "median",
        "run_overhead_ms": overhead,
        "whole_network_gap_ms": gap,
        "parts_measured": len(seen),
        "constant_ms": constant,
        "keyed_by": "context" if context else "decision",
        "table": table,
        "validation": checks,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(path, lambda stream: stream.write(json.dumps(content, indent=1).encode()))
    logger.info("local latency table of %s written to %s (%d parts measured)", space.name, path, len(seen))
    return LatencyModel(
        device=LOCAL, table=table, constant=constant, source=str(path), context=context
    ), content


class _Timer:
    """Batch-1 median ONNX Runtime latency (one thread) of modules exported to a scratch folder."""

    def __init__(self, folder: Path, repeats: int) -> None:
        self.folder, self.repeats, self.count = folder, repeats, 0

    def module(self, module: Any, shape: tuple[int, ...]) -> float:
        import torch

        from nas.export.formats import onnx_runner, onnx_session, write_onnx
        from nas.export.latency import LATENCY_THREADS, median_ms
        from nas.training import torch_threads

        module = module.eval()
        self.count += 1
        path = self.folder / f"part-{self.count}.onnx"
        example = torch.randn(1, *shape, generator=torch.Generator().manual_seed(self.count))
        with torch_threads(LATENCY_THREADS):
            write_onnx(module, example, path, what=f"latency part {self.count}")
            run = onnx_runner(onnx_session(path, threads=LATENCY_THREADS))
            return median_ms(run, example.numpy(), self.repeats, WARMUP)

    def overhead(self) -> float:
        """The fixed cost of one ``session.run`` (a graph that only passes its input on)."""
        import torch

        class _Pass(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x * 1.0

        return self.module(_Pass(), (1, 1, 1))

    def network(
        self, space: SearchSpace, arch: Any, num_classes: int, input_shape: tuple[int, int, int]
    ) -> float:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = space.network(arch, num_classes, input_shape)
        return self.module(net, tuple(input_shape))


def profile_study(
    study: str,
    *,
    storage: str | None = None,
    repeats: int = DEFAULT_REPEATS,
    validation: int = DEFAULT_VALIDATION,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[LatencyModel, dict[str, Any]]:
    """:func:`build_profile` for ``study``'s space at its dataset's input shape and classes."""
    from nas.data import load_dataset
    from nas.settings import load_config
    from nas.store import resolve_storage_url
    from nas.store.study import load_study

    source = load_study(study, storage=resolve_storage_url(storage))
    if not source.config or not source.config.get("dataset"):
        raise ConfigError(f"study {study!r} stores no dataset, so the input size to profile at is unknown")
    config = load_config(dict(source.config))
    dataset = load_dataset(config.dataset, seed=config.data_seed)
    return build_profile(
        source.space,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        repeats=repeats,
        validation=validation,
        force=force,
        progress=progress,
    )


__all__ = ["DEFAULT_REPEATS", "build_profile", "load_profile", "machine", "profile_path", "profile_study"]
