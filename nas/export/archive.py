"""The dashboard's export button: a bundle as the bytes of a zip file.

The dashboard serves downloads from memory, so this builds the bundle in a
temporary directory, zips it under one top-level folder
(``STUDY-trialN/``) and removes the directory again. It raises exactly what
:func:`~nas.export.bundle.export_model` raises, so the dashboard can show
the same one-line error as the CLI.

Given a study name, it opens the store read-only
(:func:`nas.store.readonly.open_readonly`): exporting only reads the store,
and a dashboard must never hold a connection that could write to a store
that searches are writing to.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from nas.export.bundle import export_model
from nas.store.study import Study, load_study


def archive_name(study: str, trial: int) -> str:
    """``STUDY-trialN`` with anything but ``[A-Za-z0-9_.-]`` replaced (a safe folder/file name)."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', study)}-trial{trial}"


def export_archive(
    study_name: str | Study,
    trial_number: int,
    storage: str | None = None,
    formats: str | Iterable[str] = "all",
    *,
    retrain_epochs: int | None = None,
) -> bytes:
    """Export trial ``trial_number`` of a study and return the bundle as zip bytes.

    A study name is opened read-only at ``storage``; a :class:`Study` is used as given.
    """
    if isinstance(study_name, Study):
        return _zip_export(study_name, trial_number, formats, retrain_epochs, storage)
    from nas.store.readonly import open_readonly

    store = open_readonly(storage)
    try:
        return _zip_export(load_study(str(study_name), store), trial_number, formats, retrain_epochs)
    finally:
        store.close()


def _zip_export(
    study: Study,
    trial_number: int,
    formats: str | Iterable[str],
    retrain_epochs: int | None,
    storage: str | None = None,
) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nas-export-") as tmp:
        folder = Path(tmp) / archive_name(study.name, trial_number)
        export_model(
            study,
            trial=trial_number,
            formats=formats,
            out=folder,
            storage=storage,
            retrain_epochs=retrain_epochs,
            progress=False,
            record=False,  # a temporary folder, from a store the dashboard only reads
            workers=1,  # the dashboard starts no Ray: a retraining runs in its own process
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"{folder.name}/{path.name}")
        return buffer.getvalue()


__all__ = ["archive_name", "export_archive"]
