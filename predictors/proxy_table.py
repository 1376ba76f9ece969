"""Zero-cost proxy scores for many architectures, computed once and resumable.

Using proxies as predictor features means scoring every architecture a
predictor will ever see (all 15,625 NAS-Bench-201 cells for a benchmark):
minutes to hours of CPU. :func:`proxy_table` computes them with one seeded
network per architecture and, given a ``cache`` file, stores what it has
every 250 new scores or two minutes, so an interrupted run resumes and a
second run is free. The cache is an ``.npz`` that records everything the
scores depend on (space and options, proxies, seed, batch checksum); a cache
made under other settings is refused rather than silently reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from nas.core import Architecture, ConfigError, SearchSpace
from predictors.zero_cost import PROXIES, dataset_batch, score_arch

log = logging.getLogger(__name__)

#: Write the cache after this many newly scored architectures, or this many seconds.
SAVE_EVERY = 250
SAVE_SECONDS = 120.0


def _fingerprint(
    space: SearchSpace, proxies: Sequence[str], batch_x: torch.Tensor, batch_y: torch.Tensor | None, seed: int
) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(batch_x.detach().cpu().contiguous().numpy().tobytes())
    if batch_y is not None:
        digest.update(batch_y.detach().cpu().contiguous().numpy().tobytes())
    return json.dumps(
        {
            "space": space.name,
            "options": space.options,
            "proxies": list(proxies),
            "seed": seed,
            "batch_shape": list(batch_x.shape),
            "batch": digest.hexdigest(),
        },
        sort_keys=True,
    )


def _load(cache: Path, fingerprint: str) -> dict[str, np.ndarray]:
    if not cache.exists():
        return {}
    with np.load(cache, allow_pickle=False) as data:
        stored = str(data["fingerprint"])
        if stored != fingerprint:
            raise ConfigError(
                f"proxy cache {cache} was computed under other settings ({stored}); "
                "delete it or pass another cache path"
            )
        return dict(zip(data["keys"].tolist(), data["values"], strict=True))


def _save(cache: Path, fingerprint: str, done: dict[str, np.ndarray]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename, so an interrupted run never leaves a truncated cache.
    handle, temporary = tempfile.mkstemp(dir=cache.parent, suffix=".npz")
    os.close(handle)
    try:
        np.savez(
            temporary,
            fingerprint=np.asarray(fingerprint),
            keys=np.asarray(list(done)),
            values=np.stack(list(done.values())) if done else np.zeros((0, 0)),
        )
        os.replace(temporary, cache)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def proxy_table(
    space: SearchSpace,
    archs: Sequence[Architecture],
    proxies: Sequence[str],
    batch_x: torch.Tensor,
    batch_y: torch.Tensor | None,
    *,
    seed: int = 0,
    num_classes: int = 10,
    fallback: float | None = None,
    cache: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Scores of every proxy (columns) for every architecture (rows), one seeded network each.

    ``fallback`` replaces non-finite scores (see :func:`predictors.zero_cost.score`);
    ``progress(done, total)`` is called after each architecture.
    """
    proxies = list(proxies)
    if not proxies:
        raise ConfigError("proxy_table needs at least one proxy")
    for name in proxies:
        PROXIES.get(name)  # fail on a typo before loading or scoring anything
    fingerprint = _fingerprint(space, proxies, batch_x, batch_y, seed)
    path = Path(cache).expanduser() if cache is not None else None
    done = _load(path, fingerprint) if path is not None else {}
    fresh = 0
    saved_at = time.monotonic()
    rows = []
    for index, arch in enumerate(archs):
        key = arch.key
        if key not in done:
            scores = score_arch(
                space, arch, proxies, batch_x, batch_y, seed=seed, num_classes=num_classes, fallback=fallback
            )
            done[key] = np.asarray([scores[name] for name in proxies], dtype=np.float64)
            fresh += 1
            if path is not None and (fresh % SAVE_EVERY == 0 or time.monotonic() - saved_at > SAVE_SECONDS):
                _save(path, fingerprint, done)
                saved_at = time.monotonic()
        rows.append(done[key])
        if progress is not None:
            progress(index + 1, len(archs))
    if path is not None and fresh:
        _save(path, fingerprint, done)
    log.info("proxy table: %d architectures, %d newly scored", len(rows), fresh)
    return np.stack(rows) if rows else np.zeros((0, len(proxies)))


#: Proxies whose scores span orders of magnitude: used as features on a log10 scale.
LOG_SCALE_PROXIES = frozenset({"params", "flops"})


def as_features(scores: np.ndarray, proxies: Sequence[str]) -> np.ndarray:
    """Proxy scores made usable as predictor features.

    ``params`` and ``flops`` go to log10. A non-finite score (the proxy is
    undefined on that network, e.g. synflow of a cell whose output is cut off
    from its input) is placed just below the column's finite minimum: such
    networks are the worst by that proxy, and one huge sentinel such as
    -1e8 would squash every real value together after feature scaling.
    """
    values = np.array(scores, dtype=np.float64, copy=True)
    if values.ndim != 2 or values.shape[1] != len(proxies):
        raise ConfigError(f"scores of shape {values.shape} do not match {len(proxies)} proxies")
    for at, name in enumerate(proxies):
        column = values[:, at]
        if name in LOG_SCALE_PROXIES:
            with np.errstate(divide="ignore", invalid="ignore"):
                column[:] = np.log10(column)
        finite = np.isfinite(column)
        if not finite.any():
            raise ConfigError(f"proxy {name!r} is undefined on every architecture; it cannot be a feature")
        low, high = column[finite].min(), column[finite].max()
        column[~finite] = low - 0.1 * (high - low if high > low else 1.0)
    return values


def seed_cache_path(cache: str | os.PathLike[str], seed: int) -> Path:
    """The cache file of one init seed: ``scores.npz`` -> ``scores.seed3.npz``."""
    path = Path(cache).expanduser()
    return path.with_name(f"{path.stem}.seed{seed}{path.suffix or '.npz'}")


def proxy_features(
    space: SearchSpace,
    archs: Sequence[Architecture],
    proxies: Sequence[str],
    batch_x: torch.Tensor,
    batch_y: torch.Tensor | None,
    *,
    seeds: Sequence[int] = (0,),
    num_classes: int = 10,
    cache: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Architecture, np.ndarray]:
    """``{arch: feature vector}`` of ``proxies`` for a predictor's ``extra_features``.

    ``space`` builds the scored networks: pass a reduced version of the
    searched space (e.g. ``get_space("nb201", channels=8, cells=1)``) to make
    scoring ~30x cheaper; the architectures must belong to it by name. Each
    score is the mean over networks initialised with ``seeds``: a reduced
    network's proxy is noisier, and averaging three inits buys back most of
    the full network's rank quality at a tenth of its cost. Cells are scored
    in a seeded random order, so an interrupted run's cache (one file per
    seed, see :func:`seed_cache_path`) is a uniform sample; undefined scores
    are handled by :func:`as_features`.
    """
    if not seeds:
        raise ConfigError("proxy_features needs at least one init seed")
    order = np.random.default_rng(12345).permutation(len(archs))
    shuffled = [archs[i] for i in order]
    per_seed = [
        proxy_table(
            space,
            shuffled,
            proxies,
            batch_x,
            batch_y,
            seed=seed,
            num_classes=num_classes,
            fallback=math.nan,
            cache=None if cache is None else seed_cache_path(cache, seed),
            progress=progress,
        )
        for seed in seeds
    ]
    scores = np.empty_like(per_seed[0])
    # A proxy undefined under one init is undefined under all (it is structural), so NaN propagates.
    scores[order] = np.mean(per_seed, axis=0)
    return dict(zip(archs, as_features(scores, proxies), strict=True))


def dataset_proxy_features(
    space: SearchSpace,
    archs: Sequence[Architecture],
    proxies: Sequence[str],
    *,
    dataset: str = "cifar10",
    batch_size: int = 32,
    seeds: Sequence[int] = (0,),
    cache: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Architecture, np.ndarray]:
    """:func:`proxy_features` on one mini-batch of ``dataset`` (drawn with seed 0).

    The one batch every CLI command and benchmark scores with, so their caches
    (which record the batch's checksum) are interchangeable.
    """
    x, y, classes = dataset_batch(dataset, batch_size, seed=0)
    return proxy_features(
        space, archs, proxies, x, y, seeds=seeds, num_classes=classes, cache=cache, progress=progress
    )
