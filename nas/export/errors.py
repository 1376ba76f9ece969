"""Errors of ``nas export``: one family under :class:`~nas.core.errors.NASError`.

Bad user input (an unknown study, a FAIL trial, an existing output directory)
is a :class:`~nas.core.errors.ConfigError` like everywhere else; the classes
here are for what goes wrong with the model or the bundle itself, so a caller
(the CLI, the dashboard's export button) can tell "you asked for something
impossible" from "this model or these files are not what they should be".
"""

from __future__ import annotations

from nas.core.errors import NASError


class ExportError(NASError):
    """A model could not be exported, or an exported bundle cannot be trusted."""


class ConversionError(ExportError):
    """An export format cannot express the model (e.g. an op ONNX opset 17 lacks)."""

    def __init__(self, fmt: str, message: str) -> None:
        super().__init__(message)
        self.format = fmt


class ParityError(ExportError):
    """An exported format computes different outputs than the PyTorch model it came from."""

    def __init__(self, fmt: str, max_abs_diff: float, tolerance: float, message: str) -> None:
        super().__init__(message)
        self.format = fmt
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance


class ChecksumError(ExportError):
    """A file does not match the sha256 recorded for it (tampered with or corrupted)."""

    def __init__(self, path: str, expected: str, actual: str | None, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


__all__ = ["ChecksumError", "ConversionError", "ExportError", "ParityError"]
