"""The shipped weights of the curve model: where they are, their checksum, and loading them safely.

The weights are package data, so nothing is downloaded at run time (the
registry's ``lcpfn`` package fetches its weights on import, which an
offline cluster cannot do). They are read with ``torch.load(...,
weights_only=True)``, which unpickles tensors and plain values only, after
their SHA-256 matched the one written here: a truncated copy, a bad merge
or a swapped file is refused with the file's name and the command that
regenerates it, instead of loading as garbage predictions.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from nas.core.errors import NASError

#: The shipped weights (trained by ``python -m nas.curves.train``).
DEFAULT_WEIGHTS = Path(__file__).with_name("lcpfn.pt")
#: SHA-256 of :data:`DEFAULT_WEIGHTS`; printed by the training command when it rewrites the file.
WEIGHTS_SHA256 = "5f519b0cfa22409c80597976597e43f5c8378042b956da3a61d8c6637912a917"
#: Version of the saved dict's layout.
FORMAT = 1

REGENERATE = "python -m nas.curves.train"


class CurveWeightsError(NASError):
    """The curve model's weights file is missing, corrupted or not a weights file of ours."""


def load_state(path: Path | None = None, sha256: str | None = None) -> dict[str, object]:
    """The saved dict of the weights at ``path`` (default: the shipped ones), checksum verified.

    ``sha256``: the expected checksum; by default the one in code for the
    shipped file, else the ``<path>.sha256`` file the training command wrote.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    shipped = path.resolve() == DEFAULT_WEIGHTS.resolve()  # also when named by a relative path
    regenerate = f"`{REGENERATE}`" if shipped else f"`{REGENERATE} --output {path}`"
    if sha256 is None:
        sha256 = WEIGHTS_SHA256 if shipped else _sidecar_checksum(path, regenerate)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CurveWeightsError(
            f"the learning-curve model's weights {str(path)!r} cannot be read ({exc.strerror or exc}); "
            f"regenerate them with {regenerate}"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise CurveWeightsError(
            f"the learning-curve model's weights {str(path)!r} are corrupted: sha256 {digest} does not match "
            f"the expected {sha256}; restore the file (git checkout) or regenerate it with {regenerate}"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the checksum matched, so this is a file written by something else
        raise CurveWeightsError(f"{str(path)!r} is not a weights file of the curve model: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CurveWeightsError(
            f"{str(path)!r} is not a weights file of format {FORMAT}; regenerate it with {regenerate}"
        )
    return state


def _sidecar_checksum(path: Path, regenerate: str) -> str:
    sidecar = path.with_name(path.name + ".sha256")
    try:
        return sidecar.read_text().split()[0]
    except (OSError, IndexError) as exc:
        raise CurveWeightsError(
            f"no checksum for the weights {str(path)!r}: pass sha256= or keep {str(sidecar)!r} next to them "
            f"(written by {regenerate})"
        ) from exc


__all__ = ["DEFAULT_WEIGHTS", "FORMAT", "WEIGHTS_SHA256", "CurveWeightsError", "load_state"]
