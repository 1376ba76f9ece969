"""When two results are comparable: the description of what changes a result, and its key.

A stored result may stand in for a new evaluation (reuse) only if it was
measured under the same conditions: the same space options, the same data
and split, the same evaluator settings, seed and fidelity. The search plan
describes those conditions as a flat mapping, field -> JSON value
(``{"space.channels": 4, "dataset.name": "digits", ...}``); the store keeps
the description with the study and reuses only results of studies with the
same *comparability key*, a hash of it. The description itself is kept so
that a study reopened under other conditions can be refused with each
differing field listed (:func:`differences`), not with two opaque hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: How :func:`differences` shows a field one side does not have.
UNSET = "(unset)"


def comparability_key(description: Mapping[str, Any]) -> str:
    """A stable hash of ``description`` (key order and number spelling do not matter: JSON, sorted)."""
    text = json.dumps(dict(description), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """One line ``field: old -> new`` per field whose value differs, sorted by field.

    ``defaults`` (field -> default value) forgives one kind of difference: a
    field ``old`` lacks whose new value is its default. That is an option
    added to the platform after the old study was described (a new training
    option, say); the rule for adding one is that its default reproduces
    what happened before it existed, so the old results stay comparable. A
    field ``old`` *has* is always compared, so a changed default still shows.
    """
    defaults = defaults or {}
    lines = []
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field, UNSET), new.get(field, UNSET)
        if _canonical(before) == _canonical(after):
            continue
        if before == UNSET and field in defaults and _canonical(after) == _canonical(defaults[field]):
            continue
        lines.append(f"{field}: {_show(before)} -> {_show(after)}")
    return lines


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value: Any) -> str:
    return value if value == UNSET else json.dumps(value, sort_keys=True)


__all__ = ["UNSET", "comparability_key", "differences"]
