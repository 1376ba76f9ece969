"""The one rule for a seed: an integer in ``[0, 2**63)``.

Seeds travel through the config, the store (a 64-bit integer column), numpy
and torch generators; one bound that all of them accept means a seed that
passes here never fails later. Booleans are refused: ``True`` is not a seed.
"""

from __future__ import annotations

import numbers

from nas.core.errors import ConfigError

#: The largest seed (the store keeps seeds in a signed 64-bit column).
MAX_SEED = 2**63 - 1


def check_seed(seed: object, what: str = "seed") -> int:
    """``seed`` as an ``int`` (numpy integers accepted), or ConfigError naming it and the range."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"{what}={seed!r} is not allowed; expected an integer in [0, 2**63)")
    return int(seed)


__all__ = ["MAX_SEED", "check_seed"]
