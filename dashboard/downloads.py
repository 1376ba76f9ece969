"""What the Export button hands out: the exported model bundle, or the genotype JSON.

The export feature (:func:`nas.export.export_archive`) is optional at run
time: it needs torch and ONNX and may retrain a model, so it is imported
only when the user asks for an export, and when it is not installed the
button offers the trial's genotype JSON instead (enough to rebuild the model
with ``space.build``).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from typing import Any

from nas.core.trial import Trial
from nas.store.records import trial_to_dict


@dataclass(frozen=True)
class Download:
    """Bytes to offer with ``st.download_button``."""

    data: bytes
    file_name: str
    mime: str
    description: str


def genotype_download(trial: Trial, space_options: dict[str, Any] | None = None) -> Download:
    """The trial's architecture (and its record) as JSON: always available, no torch needed."""
    payload = {
        "genotype": trial.arch.to_dict(),
        "space_options": dict(space_options or {}),
        "trial": trial_to_dict(trial),
    }
    return Download(
        data=json.dumps(payload, indent=2, sort_keys=False).encode(),
        file_name=f"genotype-trial{trial.number}.json",
        mime="application/json",
        description="genotype JSON",
    )


def export_available() -> bool:
    """Whether :mod:`nas.export` is installed (checked without importing it: it loads torch and ONNX)."""
    try:
        return importlib.util.find_spec("nas.export") is not None
    except (ImportError, ValueError):
        return False


def model_download(study: str, number: int, storage: str) -> Download:
    """Export the trial's model bundle as a zip (may take a while: it builds and checks every format).

    The store is opened read-only (:func:`~nas.export.export_archive` does so
    for a study name): the dashboard never holds a connection that could write.
    Raises what the export raises (a :class:`~nas.core.errors.NASError` for
    anything the user can act on) and :class:`ImportError` if export is not installed.
    """
    from nas.export import archive_name, export_archive  # heavy: imported on demand only

    data = export_archive(study, number, storage=storage, formats="all")
    return Download(
        data=data,
        file_name=f"{archive_name(study, number)}.zip",
        mime="application/zip",
        description="exported model bundle (zip)",
    )
