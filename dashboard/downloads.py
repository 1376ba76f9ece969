"""What the Export button hands out: the exported model bundle, or the genotype JSON.

The export feature (:func:`nas.export.export_archive`) is optional at run
time: it needs torch and ONNX and may retrain a model, so it is imported
only when the user asks for an export, and when it is not installed the
button offers the trial's genotype JSON instead (enough to rebuild the model
with ``space.build``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.core.trial import Trial
from nas.store.records import trial_to_dict

log = logging.getLogger(__name__)


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


def exporter() -> tuple[Callable[..., bytes], Callable[[str, int], str]] | None:
    """``(export_archive, archive_name)`` of :mod:`nas.export` if it is installed, else ``None``."""
    try:
        from nas.export import archive_name, export_archive
    except ImportError as exc:  # export not installed (or its dependencies are missing)
        log.info("model export unavailable in the dashboard: %s", exc)
        return None
    return export_archive, archive_name


def model_download(study: str, number: int, storage: str) -> Download:
    """Export the trial's model bundle as a zip (may take a while: it builds and checks every format).

    Raises what the export raises (a :class:`~nas.core.errors.NASError` for
    anything the user can act on) and :class:`ImportError` if export is not installed.
    """
    found = exporter()
    if found is None:
        raise ImportError("the export feature (nas.export) is not installed")
    export_archive, archive_name = found
    data = export_archive(study, number, storage=storage, formats="all")
    return Download(
        data=data,
        file_name=f"{archive_name(study, number)}.zip",
        mime="application/zip",
        description="exported model bundle (zip)",
    )
