"""The one check that the parts of an image set (splits, shards) describe the same images.

An image set read in parts -- an image folder's ``train/`` and ``test/``,
a shard directory's shard files -- labels each part by its own class list
and prepares it at its own size and mode. A part from another source (a
folder with one class fewer, a shard written at another size) would
silently shift labels or misshape a split, so every reader calls
:func:`check_consistent` on each part against the first before any trial
starts, and the message has one form whichever reader found it: the
classes the part lacks or has extra, and any other field that differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.errors import ConfigError


def check_consistent(
    where: str, part: str, found: Mapping[str, Any], reference: str, expected: Mapping[str, Any]
) -> None:
    """Raise ConfigError if ``found`` (what ``part`` holds) differs from ``expected`` on any of its keys.

    ``where`` names the image set, ``reference`` the part ``expected`` was read
    from; classes are compared in order, since a class's index is its label.
    """
    differences: list[str] = []
    for key, want in expected.items():
        have = found.get(key)
        if have == want:
            continue
        if key == "classes":
            missing = sorted(set(want) - set(have or ()))
            extra = sorted(set(have or ()) - set(want))
            order = "" if missing or extra else " (same classes, other order)"
            differences.append(f"{part} lacks {missing}, has extra {extra}{order}")
        else:
            differences.append(f"{key} {have!r}, not {want!r}")
    if differences:
        raise ConfigError(
            f"{where}: {part} differs from {reference} ({'; '.join(differences)}); every part must hold "
            f"the same {', '.join(expected)}: {dict(expected)}"
        )


__all__ = ["check_consistent"]
