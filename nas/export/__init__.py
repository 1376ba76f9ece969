"""``nas export``: a searched model leaves the platform ready to deploy.

:func:`export_model` turns one trial of a study into a bundle directory:

* ``genotype.json`` -- space, options, decisions, canonical key, string form;
* ``model.pt`` -- the state dict (``torch.load(..., weights_only=True)``);
* ``model.ts`` -- TorchScript; ``model.onnx`` -- ONNX opset 17, dynamic batch;
* ``card.json`` and ``README.md`` -- the model card: metrics, test accuracy
  measured at export, parameters, FLOPs, measured latency, input shape and
  preprocessing, versions, and the sha256 of every file.

Every format is read back and checked against PyTorch on random inputs
before the bundle appears (max abs difference <= 1e-4). :func:`load_exported`
verifies the checksums and rebuilds the PyTorch model;
:func:`export_archive` returns a bundle as zip bytes for the dashboard.
"""

from __future__ import annotations

from nas.export.archive import archive_name, export_archive
from nas.export.bundle import ExportResult, export_model
from nas.export.errors import ChecksumError, ConversionError, ExportError, ParityError
from nas.export.formats import FILES, FORMATS, ONNX_OPSET, parse_formats
from nas.export.loading import ExportedModel, load_exported, verify_bundle
from nas.export.parity import TOLERANCE
from nas.export.selection import AmbiguousBestError

__all__ = [
    "FILES",
    "FORMATS",
    "ONNX_OPSET",
    "TOLERANCE",
    "AmbiguousBestError",
    "ChecksumError",
    "ConversionError",
    "ExportError",
    "ExportResult",
    "ExportedModel",
    "ParityError",
    "archive_name",
    "export_archive",
    "export_model",
    "load_exported",
    "parse_formats",
    "verify_bundle",
]
