"""Combining zero-cost proxies into one score.

Single proxies are noisy in different ways (synflow favours big networks,
NASWOT and jacob_cov favour diverse activations), so an unweighted rank vote
of a few complementary proxies ranks better than any one of them (the
NAS-Bench-Suite-Zero observation). The vote is a population statistic: it
ranks a set of architectures, so it is not a per-architecture proxy. For a
learned combination, fit a predictor on proxy scores instead
(``PREDICTORS.get("gbt")(space, encoding="none", extra_features=scores)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from nas.core import ConfigError, UnknownNameError

#: The vote we use by default: the three proxies Abdelfattah et al. (2021) found
#: strongest on NAS-Bench-201, chosen before looking at our benchmark numbers.
DEFAULT_VOTE: tuple[str, ...] = ("synflow", "jacob_cov", "nwot")


def rank_vote(
    scores: Mapping[str, Sequence[float] | np.ndarray], proxies: Sequence[str] | None = None
) -> np.ndarray:
    """Mean normalised rank (in (0, 1], higher is better) of each item over ``proxies``.

    ``scores`` maps proxy name to one score per architecture (same order).
    NaN or -inf scores (a proxy undefined on that network) rank lowest; +inf
    highest; ties share their average rank.
    """
    names = list(proxies) if proxies is not None else list(scores)
    if not names:
        raise ConfigError("rank_vote needs at least one proxy")
    for name in names:
        if name not in scores:
            raise UnknownNameError("proxy score", name, scores)
    columns = [np.asarray(scores[n], dtype=np.float64).ravel() for n in names]
    sizes = {c.size for c in columns}
    if len(sizes) != 1 or 0 in sizes:
        raise ConfigError(f"every proxy needs one score per architecture; got lengths {sorted(sizes)}")
    total = np.zeros(columns[0].size)
    for column in columns:
        total += rankdata(np.nan_to_num(column, nan=-np.inf)) / column.size
    return total / len(columns)
