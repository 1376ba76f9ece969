"""Reading a search config: a YAML file, a mapping, or an existing config, validated once.

Every problem raises one :class:`~nas.core.ConfigError` listing them all
(``field.path: message (got VALUE)``). Loading checks the schema only; the
plugins the config names are built, and their options checked, by
:func:`nas.runner.plan.build_plan`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nas.core.errors import ConfigError
from nas.settings.errors import format_validation_error
from nas.settings.limits import MAX_CONFIG_BYTES, BoundedLoader, check_size
from nas.settings.search import UNION_TAGS, SearchConfig


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | SearchConfig) -> SearchConfig:
    """Load and validate a search config from a YAML file, a mapping, or an existing config.

    A file's ``name`` defaults to its stem; a relative ``dataset.path`` is
    resolved against the file's directory (against the working directory for
    a mapping) so that trials running elsewhere, e.g. in a Ray worker's
    directory, find the data. Every problem raises :class:`ConfigError`.
    """
    if isinstance(source, SearchConfig):
        return source
    if isinstance(source, Mapping):
        check_size(source, "config")
        raw, base, label = copy.deepcopy(dict(source)), Path.cwd(), "config"
    elif isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        raw, base, label = _read_yaml(path), path.resolve().parent, str(path)
        check_size(raw, label)
        raw.setdefault("name", path.stem)
    else:
        raise ConfigError(
            f"a config must be a YAML file path, a mapping or a SearchConfig, got {type(source).__name__}"
        )
    _resolve_paths(raw, base)
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as exc:
        message = format_validation_error(exc, SearchConfig, UNION_TAGS)
        raise ConfigError(f"invalid {label}:\n" + message) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            blob = stream.read(MAX_CONFIG_BYTES + 1)
        text = blob.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    if len(blob) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes; a config is a few fields"
        )
    try:
        data = yaml.load(text, Loader=BoundedLoader)  # noqa: S506  (a SafeLoader with alias limits)
    except RecursionError as exc:
        raise ConfigError(f"config file {path} is nested too deeply to read") from exc
    except ConfigError as exc:  # the loader's limits
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of fields (name, space, ...), got {type(data).__name__}"
        )
    return data


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    dataset = raw.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
        path = Path(dataset["path"]).expanduser()
        dataset["path"] = str(path if path.is_absolute() else (base / path).resolve())


__all__ = ["load_config"]
