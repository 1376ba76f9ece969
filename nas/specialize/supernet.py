"""The trained supernet a specialisation starts from: where its weights are, loading it, storing one.

``nas search`` records each supernet trial's last checkpoint
(``system_attrs.checkpoint``); :func:`load_supernet` rebuilds the method
with those weights, ready for ``score`` and ``supernet.extract``;
:func:`record_supernet` stores a supernet trained in-process the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nas.core.errors import StorageError
from nas.core.trial import Trial, TrialState
from nas.store.study import Study

logger = logging.getLogger(__name__)


def record_supernet(study: Study, result: Any, checkpoint_dir: str | Path) -> Trial:
    """Store a supernet trained in-process (:func:`nas.oneshot.run_oneshot`) as ``nas search`` stores one.

    A PRUNED trial of kind ``supernet`` with its curves and the file of its
    last checkpoint, so notebooks, tests and benchmarks can specialise a
    supernet trained without Ray.
    """
    from nas.oneshot.checkpoint import checkpoint_file

    trial = Trial(
        number=0,
        arch=study.space.validate(result.arch),
        state=TrialState.PRUNED,
        seed=result.seed,
        user_attrs=result.user_attrs(),
        system_attrs={
            "kind": "supernet",
            "method": result.method,
            "checkpoint": str(checkpoint_file(checkpoint_dir)),
        },
    )
    (stored,) = study.add_trials([trial], metrics=[result.curves()])
    return stored


def checkpoint_path(source: Study, supernet: Trial, method: str) -> Path:
    """The file holding the supernet trial's trained weights (its last epoch's checkpoint).

    The runner records it with the trial (``system_attrs.checkpoint``); for a
    study stored before that, the per-seed checkpoint folder of the study's
    supernet experiments is searched (the newest one wins).
    """
    from nas.oneshot.checkpoint import FILENAME
    from nas.store.url import artifact_dir, artifacts_root

    recorded = supernet.system_attrs.get("checkpoint")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    root = artifact_dir(artifacts_root(source.storage.url), source.name, "oneshot")
    found = sorted(
        root.glob(f"supernets-{method}-*-checkpoints/seed-{supernet.seed}/{FILENAME}"),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise StorageError(
            f"the trained weights of supernet trial {supernet.number} of study {source.name!r} are gone "
            f"(looked for {recorded or root / f'supernets-{method}-*-checkpoints/seed-{supernet.seed}'}); "
            "rerun its search with nas search CONFIG"
        )
    return found[-1]


def load_supernet(source: Study, config: Any, supernet: Trial, dataset: Any, method_name: str) -> Any:
    """The supernet's method with its last checkpoint loaded (``score`` and ``supernet.extract`` ready)."""
    from nas.oneshot import create_method, load_checkpoint

    path = checkpoint_path(source, supernet, method_name)
    options = {**config.strategy.options, "check_memory": False}  # nothing trains here
    method = create_method(
        method_name, source.space, dataset, options, seed=supernet.seed, data_seed=config.data_seed
    )
    load_checkpoint(method, path.parent)
    method.supernet.eval()
    logger.info(
        "supernet trial %d of %s loaded from %s (epoch %d)", supernet.number, source.name, path, method.epoch
    )
    return method


__all__ = ["checkpoint_path", "load_supernet", "record_supernet"]
