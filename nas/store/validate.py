"""Validation of everything a caller hands the store, before any row is written.

The store checks its input itself (rather than trusting the Study facade) so
that no caller can leave a half-valid row behind: a bad value is refused
with a :class:`ConfigError` naming it and what is allowed, and the database
is never touched.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Row

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError, shown
from nas.core.trial import Direction, TrialState
from nas.store.errors import TrialFinishedError
from nas.store.records import StudyInfo

#: Longest names the schema holds (see ``nas.store.schema``).
MAX_STUDY_NAME = 255
MAX_METRIC_NAME = 128
MAX_ARTIFACT_KIND = 64
MAX_NODE = 255
#: Largest JSON document stored in one field (a config, space options, a trial's attributes).
MAX_JSON_CHARS = 1_000_000
_SHA256 = re.compile(r"[0-9a-f]{64}")

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def check_name(kind: str, value: object, max_len: int) -> str:
    """A non-empty string of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ConfigError(
            f"{kind} {shown(value)} is not allowed; expected a non-empty string of at most {max_len} characters"
        )
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_study_name(name: object) -> str:
    """A study name that is safe wherever it is used: a row, a log line, a folder under the artifacts.

    The search config allows only ``[A-Za-z0-9][A-Za-z0-9_.-]*``; the Study
    API is more lenient (any text), but never control characters, an
    absolute path or a ``.``/``..`` path component, so a name can never lead
    a path out of the artifacts folder.
    """
    name = check_name("study name", name, MAX_STUDY_NAME)
    parts = re.split(r"[/\\]", name)
    if _CONTROL.search(name) or name[0] in "/\\" or any(part in (".", "..") for part in parts):
        raise ConfigError(
            f"study name {shown(name)} is not allowed; it may not hold control characters, start with a "
            "slash or have a '.' or '..' path component (a config allows [A-Za-z0-9][A-Za-z0-9_.-]*)"
        )
    return name


def dumps(value: object, what: str) -> str:
    """Strict JSON text (no NaN/Infinity, which PostgreSQL's JSON rejects and SQLite would keep)."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{what} {shown(value)} is not JSON-serialisable with finite numbers: {exc}"
        ) from exc
    if len(text) > MAX_JSON_CHARS:
        raise ConfigError(f"{what} is {len(text)} characters of JSON; the limit is {MAX_JSON_CHARS}")
    return text


def check_mapping(value: object, what: str) -> dict[str, Any]:
    """``None`` or a mapping with string keys, as a dict (e.g. user attributes, space options)."""
    if value is None:
        return {}
    if hasattr(value, "model_dump"):  # a pydantic model (config objects)
        value = value.model_dump(mode="json")
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{what} must be a mapping with string keys, got {shown(value)}")
    result = dict(value)
    dumps(result, what)
    return result


def check_budget(budget: object) -> float | None:
    """``None`` (the evaluator's default fidelity) or a finite number >= 0 (epochs, a data fraction, ...)."""
    if budget is None:
        return None
    if (
        isinstance(budget, bool)
        or not isinstance(budget, numbers.Real)
        or not math.isfinite(budget)
        or budget < 0
    ):
        raise ConfigError(f"budget {budget!r} is not allowed; expected None or a finite number >= 0")
    return float(budget)


def check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= int(step) <= 2**31 - 1:
        raise ConfigError(f"step {step!r} is not allowed; expected an integer >= 0")
    return int(step)


def check_finished_state(state: object) -> TrialState:
    try:
        result = TrialState(getattr(state, "value", state))
    except ValueError:
        result = None
    if result not in FINISHED_STATES:
        raise ConfigError(
            f"a trial can be told state {state!r}; allowed: {', '.join(s.value for s in FINISHED_STATES)}"
        )
    return result


def check_states(states: object) -> tuple[TrialState, ...] | None:
    """``None`` (every state), one state or an iterable of states."""
    if states is None:
        return None
    if isinstance(states, str | TrialState):
        states = [states]
    try:
        return tuple(TrialState(getattr(s, "value", s)) for s in states)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"trial states {states!r} are not allowed; allowed: {', '.join(s.value for s in TrialState)}"
        ) from exc


def _real(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def objective_values(values: object, objectives: Mapping[str, Direction], study: str) -> dict[str, float]:
    """Normalise told values to ``{objective: finite float}`` in objective order.

    Accepts a mapping with exactly the objective names, a sequence in
    objective order, or a bare number when there is one objective.
    """
    names = list(objectives)
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        extra = [k for k in values if k not in objectives]
        if missing or extra:
            raise ConfigError(
                f"values {dict(values)!r} do not match the objectives {names} of study {study!r} "
                f"(missing {missing}, unexpected {extra}); keep other metrics in user_attrs"
            )
        pairs = [(n, values[n]) for n in names]
    elif _real(values) is not None:
        if len(names) != 1:
            raise ConfigError(
                f"one value {values!r} told to study {study!r} with {len(names)} objectives {names}"
            )
        pairs = [(names[0], values)]
    elif isinstance(values, Sequence) and not isinstance(values, str | bytes):
        if len(values) != len(names):
            raise ConfigError(
                f"{len(values)} values {list(values)!r} told to study {study!r} with "
                f"{len(names)} objectives {names}"
            )
        pairs = list(zip(names, values, strict=True))
    else:
        raise ConfigError(
            f"values {values!r} are not allowed; expected a mapping {{objective: number}}, "
            f"a sequence in the order {names}, or one number"
        )
    result: dict[str, float] = {}
    for name, value in pairs:
        number = _real(value)
        if number is None or not math.isfinite(number):
            raise ConfigError(
                f"objective {name!r} of study {study!r} got {value!r}; expected a finite number "
                "(tell a failed evaluation with state=FAIL instead)"
            )
        result[name] = number
    return result


def metric_values(metrics: object) -> dict[str, float | None]:
    """Reported metrics as ``{name: float or None}``; ``None`` stands for NaN (a diverged loss)."""
    if not isinstance(metrics, Mapping):
        raise ConfigError(f"metrics must be a mapping {{name: number}}, got {metrics!r}")
    result: dict[str, float | None] = {}
    for name, value in metrics.items():
        check_name("metric name", name, MAX_METRIC_NAME)
        number = _real(value)
        if number is None:
            raise ConfigError(f"metric {name!r} has value {value!r}; expected a number")
        result[name] = None if math.isnan(number) else number
    return result


def check_sha256(sha256: object) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise ConfigError(f"sha256 {sha256!r} is not allowed; expected 64 hexadecimal digits or None")
    return sha256.lower()


def check_space(arch: object, info: StudyInfo) -> Architecture:
    """An :class:`Architecture` of the study's space (a study never mixes spaces)."""
    if not isinstance(arch, Architecture) or arch.space != info.space:
        raise ArchitectureError(f"study {info.name!r} searches space {info.space!r}; got {arch!r}")
    return arch


def finished_error(row: Row[Any], info: StudyInfo, action: str) -> TrialFinishedError:
    """The refusal to change a finished trial (it is immutable)."""
    return TrialFinishedError(
        f"cannot {action} trial {row.number} of study {info.name!r}: it is {row.state} and a finished trial is immutable"
    )


def require_running(row: Row[Any], info: StudyInfo, action: str) -> None:
    """Refuse ``action`` unless the trial's row is RUNNING."""
    state = TrialState(row.state)
    if state.finished:
        raise finished_error(row, info, action)
    if state is not TrialState.RUNNING:
        raise ConfigError(
            f"cannot {action} trial {row.number} of study {info.name!r}: it is {state.value}; ask() starts it first"
        )
