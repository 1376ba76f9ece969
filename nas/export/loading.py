"""``load_exported``: a bundle back into a PyTorch model, after checking every file's sha256.

The model is rebuilt from ``genotype.json`` through its search space and
``model.pt`` is loaded with ``weights_only=True``, so loading a bundle never
unpickles code. The checksums in ``card.json`` catch files modified or
corrupted since export (a bundle's card can be rewritten along with the
files, so they are an integrity check, not a signature).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.space import SPACES, SearchSpace
from nas.export.card import CARD_FILE, GENOTYPE_FILE, README_FILE
from nas.export.errors import ChecksumError, ExportError
from nas.export.files import sha256_file
from nas.export.formats import FILES, load_torchscript, onnx_session
from nas.export.weights import build_model, read_state_dict

#: The only file names a card may list (a card naming ``../x`` is refused, never followed).
BUNDLE_FILES = frozenset({GENOTYPE_FILE, README_FILE, *FILES.values()})
_MAX_JSON_BYTES = 10_000_000


@dataclass(frozen=True)
class ExportedModel:
    """A verified bundle: the rebuilt PyTorch ``model`` (eval mode) plus its genotype and card."""

    directory: Path
    model: nn.Module
    arch: Architecture
    space: SearchSpace
    genotype: Mapping[str, Any] = field(repr=False)
    card: Mapping[str, Any] = field(repr=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.genotype["input_shape"]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return int(self.genotype["num_classes"])

    @property
    def preprocessing(self) -> Mapping[str, Any] | None:
        return self.card.get("preprocessing")

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self.card.get("formats", {}))

    def path(self, fmt: str) -> Path:
        """The file of one format; :class:`ExportError` if the bundle was exported without it."""
        if fmt not in FILES:
            raise ConfigError(f"unknown format {fmt!r}; allowed: {', '.join(FILES)}")
        if fmt not in self.formats:
            raise ExportError(
                f"bundle {self.directory} has no {fmt} model (formats: {', '.join(self.formats)})"
            )
        return self.directory / FILES[fmt]

    def torchscript(self) -> torch.jit.ScriptModule:
        """The bundle's TorchScript module (checked at load like every file)."""
        return load_torchscript(self.path("torchscript"))

    def onnx_session(self, threads: int | None = None) -> Any:
        """An ONNX Runtime CPU session on the bundle's ONNX model."""
        return onnx_session(self.path("onnx"), threads=threads)


def verify_bundle(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``card.json`` and check the sha256 of every file it lists; return the card."""
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"exported bundle {folder} does not exist or is not a directory")
    card = _read_json(folder / CARD_FILE, "card")
    files = card.get("files")
    if not isinstance(files, Mapping) or not files:
        raise ExportError(f"{folder / CARD_FILE} lists no file checksums; it is not an export bundle")
    for name in (GENOTYPE_FILE, FILES["pytorch"]):
        if name not in files:
            raise ExportError(f"{folder / CARD_FILE} does not list {name}, which every bundle has")
    for name, expected in files.items():
        if name not in BUNDLE_FILES:
            raise ExportError(
                f"{folder / CARD_FILE} lists unexpected file {name!r}; allowed: {sorted(BUNDLE_FILES)}"
            )
        path = folder / name
        if not path.is_file():
            raise ChecksumError(str(path), str(expected), None, f"bundle file {path} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(
                str(path),
                str(expected),
                actual,
                f"bundle file {path} does not match its sha256 in {CARD_FILE} (expected {str(expected)[:16]}..., "
                f"found {actual[:16]}...): it was modified or corrupted",
            )
    return card


def load_exported(directory: str | os.PathLike[str]) -> ExportedModel:
    """Verify a bundle and rebuild its PyTorch model from ``genotype.json`` and ``model.pt``."""
    folder = Path(directory).expanduser()
    card = verify_bundle(folder)
    genotype = _read_json(folder / GENOTYPE_FILE, "genotype")
    try:
        arch = Architecture.from_dict(
            {"space": genotype.get("space"), "decisions": genotype.get("decisions")}
        )
        cls = SPACES.get(arch.space)
        options = genotype.get("space_options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(f"space_options must be an object, got {type(options).__name__}")
        try:
            space = cls(**options)
        except TypeError as exc:
            raise ConfigError(f"space {arch.space!r} does not accept options {dict(options)}: {exc}") from exc
        space.validate(arch)
    except ConfigError as exc:
        raise ExportError(
            f"{folder / GENOTYPE_FILE} does not describe a model this platform can build: {exc}"
        ) from exc
    if space.canonical_key(arch) != genotype.get("canonical_key"):
        raise ExportError(
            f"{folder / GENOTYPE_FILE}: the {arch.space} space of this platform version gives the architecture "
            f"another canonical key than at export ({genotype.get('canonical_key')!r}); the space has changed"
        )
    try:
        shape = tuple(int(d) for d in genotype["input_shape"])
        num_classes = int(genotype["num_classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{folder / GENOTYPE_FILE} lacks a valid input_shape or num_classes") from exc
    if len(shape) != 3:
        raise ExportError(f"{folder / GENOTYPE_FILE}: input_shape {list(shape)} is not (C, H, W)")
    state = read_state_dict(folder / FILES["pytorch"], what="the bundle's weights")
    model = build_model(space, arch, num_classes, shape, state)  # type: ignore[arg-type]
    return ExportedModel(folder, model, arch, space, genotype, card)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"{path} is missing: {path.parent} is not an export bundle")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ExportError(f"{path} is larger than {_MAX_JSON_BYTES} bytes; not a {what} file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ExportError(f"{path} holds {type(data).__name__}, not a {what} object")
    return data


__all__ = ["BUNDLE_FILES", "ExportedModel", "load_exported", "verify_bundle"]
