"""The architecture genotype: the one value the whole platform passes around.

An :class:`Architecture` is a space name plus an ordered tuple of named
decisions (each a str, int, float or bool). It is immutable, hashable and
JSON-serialisable; the networkx graph and the ``nn.Module`` are derived from it
on demand by its search space, and nothing mutates it in place (NASLib's
genotype-inside-a-module design is what we avoid).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.errors import ArchitectureError

Scalar = str | int | float | bool

#: Upper bounds for JSON read from untrusted files: a genotype is small, so a
#: huge document is an attack or a mistake, never an architecture.
MAX_JSON_CHARS = 1_000_000
MAX_DECISIONS = 10_000
#: Deepest nesting of arrays and objects in architecture JSON (a genotype nests two levels);
#: checked before parsing, so a hostile document cannot exhaust the parser's recursion.
MAX_JSON_DEPTH = 16


def _check_scalar(name: str, value: object) -> Scalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ArchitectureError(
        f"decision {name!r} has value {value!r} of type {type(value).__name__}; "
        "allowed: str, int, finite float or bool"
    )


@dataclass(frozen=True, slots=True)
class Architecture:
    """A point of a search space: ``space`` name and its ``decisions`` in space order."""

    space: str
    decisions: tuple[tuple[str, Scalar], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.space, str) or not self.space:
            raise ArchitectureError(f"space name must be a non-empty string, got {self.space!r}")
        raw = self.decisions
        items = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
        checked: list[tuple[str, Scalar]] = []
        seen: set[str] = set()
        for item in items:
            if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
                raise ArchitectureError(f"a decision must be a (name, value) pair, got {item!r}")
            name, value = item
            if name in seen:
                raise ArchitectureError(f"decision {name!r} appears twice")
            seen.add(name)
            checked.append((name, _check_scalar(name, value)))
        object.__setattr__(self, "decisions", tuple(checked))

    # -- mapping-like access -------------------------------------------------
    def __getitem__(self, name: str) -> Scalar:
        for key, value in self.decisions:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def as_dict(self) -> dict[str, Scalar]:
        """The decisions as an ordered dict (a copy: the architecture stays frozen)."""
        return dict(self.decisions)

    def replace(self, **changes: Scalar) -> Architecture:
        """A new architecture with some decisions changed (names must exist)."""
        current = self.as_dict()
        unknown = set(changes) - set(current)
        if unknown:
            raise ArchitectureError(f"unknown decision(s) {sorted(unknown)}; allowed: {list(current)}")
        current.update(changes)
        return Architecture(self.space, tuple(current.items()))

    # -- identity ---------------------------------------------------------------
    @property
    def key(self) -> str:
        """Exact key: equal iff space and decisions are equal (order-independent)."""
        payload = json.dumps([self.space, sorted(self.decisions)], separators=(",", ":"))
        return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()

    # -- JSON -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "decisions": self.as_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> Architecture:
        """Build from a dict as produced by :meth:`to_dict`, validating every field."""
        if not isinstance(data, Mapping):
            raise ArchitectureError(
                f"architecture JSON must be an object with 'space' and 'decisions', got {type(data).__name__}"
            )
        extra = set(data) - {"space", "decisions"}
        if extra or "space" not in data or "decisions" not in data:
            raise ArchitectureError(
                f"architecture JSON must have exactly the keys 'space' and 'decisions', got {sorted(map(str, data))}"
            )
        decisions = data["decisions"]
        if not isinstance(decisions, Mapping):
            raise ArchitectureError(
                f"'decisions' must be an object of name -> value, got {type(decisions).__name__}"
            )
        if len(decisions) > MAX_DECISIONS:
            raise ArchitectureError(f"{len(decisions)} decisions is more than the limit {MAX_DECISIONS}")
        return cls(data["space"], tuple(decisions.items()))

    @classmethod
    def from_json(cls, text: str | bytes) -> Architecture:
        """Parse JSON from an untrusted source: size-bounded, strict types, clear errors."""
        if len(text) > MAX_JSON_CHARS:
            raise ArchitectureError(f"architecture JSON of {len(text)} characters exceeds {MAX_JSON_CHARS}")
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise ArchitectureError(
                f"architecture JSON is nested {depth} levels deep; the limit is {MAX_JSON_DEPTH}"
            )
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArchitectureError(f"architecture JSON is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.decisions)
        return f"Architecture({self.space!r}, {inner})"


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text (outside strings), without parsing it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> float:
    raise ArchitectureError(f"architecture JSON may not contain {name}")
