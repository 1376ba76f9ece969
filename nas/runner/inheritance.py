"""Weight inheritance across trials: the driver ships a parent's stored weights to its child's worker.

A strategy that proposes a morphism of an earlier trial (``morphism``) names
the parent and the edit in the proposal (``Strategy.last_attrs``); the driver
stores them in the child's ``system_attrs`` (``parent``, ``morphism``). When
the evaluator inherits under its options (``Evaluator.inherited_budget``, the
``train`` evaluator's ``inherit: parent``) and the parent has a ``weights``
artifact, the child is marked ``inherits: true`` and gets the shorter budget;
its worker receives the parent's weights through Ray's object store (only the
driver reads the artifacts root) and its evaluator starts from them. A parent
without weights (a result reused from another study, a file gone) leaves the
child to train from scratch at the full budget, with ``inherits: false``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from nas.core import Trial

logger = logging.getLogger(__name__)

#: The artifact kind holding a trial's trained weights.
WEIGHTS = "weights"


def parent_weights(study: Any, number: int) -> bytes | None:
    """The stored weights of trial ``number`` if their file exists and matches its SHA-256, else None."""
    for artifact in reversed(study.artifacts(number)):
        if artifact.kind != WEIGHTS:
            continue
        path = Path(artifact.uri.removeprefix("file://"))
        if not path.is_file():
            continue
        payload = path.read_bytes()
        if artifact.sha256 and hashlib.sha256(payload).hexdigest() != artifact.sha256:
            logger.warning(
                "trial %d: stored weights %s do not match their SHA-256; not inherited", number, path
            )
            continue
        return payload
    return None


def proposal_attrs(study: Any, proposal: dict[str, Any], inheriting: bool) -> dict[str, Any]:
    """A proposal's ``system_attrs``, with ``inherits`` when it names a parent: whether it will
    start from the parent's weights (the evaluator inherits and the parent has weights)."""
    if "parent" not in proposal:
        return dict(proposal)
    inherits = inheriting and parent_weights(study, int(proposal["parent"])) is not None
    return {**proposal, "inherits": inherits}


def shipped_parent(study: Any, trial: Trial) -> dict[str, Any] | None:
    """What the worker of an inheriting ``trial`` needs (config ``inherit``), or None.

    ``weights`` is an object ref: the bytes travel through Ray's object store.
    """
    if not trial.system_attrs.get("inherits"):
        return None
    number = int(trial.system_attrs["parent"])
    payload = parent_weights(study, number)
    if payload is None:  # gone since the child was proposed: its worker trains it from scratch
        logger.warning(
            "trial %d: the weights of its parent trial %d are gone; trained from scratch",
            trial.number,
            number,
        )
        return None
    import ray

    return {
        "arch": study.trial(number).arch.to_dict(),
        "trial": number,
        "morphism": dict(trial.system_attrs.get("morphism") or {}),
        "weights": ray.put(payload),
    }


__all__ = ["WEIGHTS", "parent_weights", "proposal_attrs", "shipped_parent"]
