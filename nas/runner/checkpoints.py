"""Trial checkpoints in the store: what lets a paused trial resume after the driver died.

Under a scheduler that pauses trials (``hyperband``) every per-epoch report of a
trial carries a Ray Tune checkpoint (:mod:`nas.runner.trainable`). Tune keeps
it in its own trial folder, which is enough to resume a trial it paused
within one run; those folders belong to one Tune run, though, and a rerun of
``nas search`` after a crash starts a new one. So the driver also copies each
checkpoint into the store's artifacts (kind ``checkpoint``, a file under the
artifacts root recorded with its SHA-256). Checkpoints are taken at the
scheduler's rungs only (the epochs where it may pause a trial): a trial keeps
at most one file per rung, and a trial interrupted between rungs loses the
epochs since its last one.

A rerun re-queues the dead driver's trials as copies (``retry_of``, see
:mod:`nas.runner.recovery`); :func:`resume_from` finds the newest stored
checkpoint of the original, records it on the copy (so a copy that dies in
turn still has it), copies the curve up to the checkpoint's epoch onto the
copy (one row with epochs 1..n, no gap, no duplicate) and hands the worker
the checkpoint's bytes through Ray's object store: the worker may run on any
node, and only the driver reads the artifacts root.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from nas.core import Trial
from nas.core.files import atomic_write
from nas.runner import trainable as T
from nas.store.url import artifact_dir

logger = logging.getLogger(__name__)

#: The artifact kind of a trial's stored checkpoint.
KIND = "checkpoint"


def store_checkpoint(study: Any, root: Path, trial: Trial, checkpoint: Any) -> Path:
    """Copy a Tune checkpoint of ``trial`` into the artifacts and record it (kind ``checkpoint``).

    One file per rung (its epoch in the name), written atomically before it is
    recorded: a crash at any point leaves only recorded checkpoints whose files
    are whole. Tune saves again when it pauses the trial: the same file, no new row.
    """
    with checkpoint.as_directory() as folder:
        step, payload = T.read_checkpoint(Path(folder))
    target = artifact_dir(root, study.name, f"trial-{trial.number:06d}") / f"{KIND}-e{step:05d}.pt"
    digest = hashlib.sha256(payload).hexdigest()
    if any(
        a.kind == KIND and a.uri == target.as_uri() and a.sha256 == digest for a in study.artifacts(trial)
    ):
        return target
    path = atomic_write(target, lambda stream: stream.write(payload))
    study.add_artifact(trial, KIND, path.as_uri(), digest)
    return path


def newest_checkpoint(study: Any, trial: Trial) -> tuple[Path, str, int] | None:
    """The newest recorded checkpoint of ``trial`` whose file still exists: path, SHA-256, epoch."""
    for artifact in reversed(study.artifacts(trial)):
        if artifact.kind != KIND:
            continue
        path = Path(artifact.uri.removeprefix("file://"))
        if path.is_file():
            return path, artifact.sha256, int(path.stem.removeprefix(f"{KIND}-e"))
    return None


def resume_from(study: Any, copy: Trial) -> dict[str, Any] | None:
    """For a re-queued ``copy``: what its worker continues from (config ``resume``), or None.

    The stored file is read here and checked against its recorded SHA-256; its
    bytes go to the worker through Ray's object store (``{"step", "state", "metrics"}``,
    ``state`` an object ref, ``metrics`` the stored ones of that epoch, which the worker
    reports first so the scheduler sees the rung), so the worker may run on any node. A damaged file
    is logged and recorded (``checkpoint_damaged``) and the copy trains from
    scratch. Otherwise the checkpoint is recorded on the copy too and the
    original's curve up to its epoch is copied onto it.
    """
    import ray

    original = copy.system_attrs.get("retry_of")
    if original is None:
        return None
    if copy.system_attrs.get("paused_at") is not None:  # inherited: the copy is not paused
        study.set_system_attr(copy, "paused_at", None)
    source = study.trial(int(original))
    found = newest_checkpoint(study, source)
    if found is None:
        return _from_scratch(study, copy)
    path, sha256, step = found
    payload = path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != sha256:
        logger.warning("trial %d: stored checkpoint %s is damaged; training from scratch", copy.number, path)
        study.set_system_attr(copy, "checkpoint_damaged", str(path))
        return _from_scratch(study, copy)
    points: dict[int, dict[str, float]] = {}
    for name, curve in study.metrics(source).items():
        for at, value in curve:
            if at <= step:
                points.setdefault(at, {})[name] = value
    for at in sorted(points):
        study.report(copy, at, points[at])
    study.add_artifact(copy, KIND, path.as_uri(), sha256)
    study.set_system_attr(copy, "resumed_from", {"trial": source.number, "step": step})
    logger.info(
        "trial %d resumes trial %d from its checkpoint after epoch %d", copy.number, source.number, step
    )
    return {"step": step, "state": ray.put(payload), "metrics": points.get(step, {})}


def _from_scratch(study: Any, copy: Trial) -> None:
    """A copy that trains from epoch 1 has none of its original's pauses."""
    if copy.system_attrs.get("pauses"):
        study.set_system_attr(copy, "pauses", [])


__all__ = ["KIND", "newest_checkpoint", "resume_from", "store_checkpoint"]
