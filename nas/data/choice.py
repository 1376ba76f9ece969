"""In memory or streamed: the one rule every source that can stream applies.

An explicit ``streaming`` in the config wins; unset, a source streams when
its decoded float32 training images would exceed
:data:`~nas.settings.dataset.STREAMING_THRESHOLD_BYTES` (small sets are
faster held in memory, large ones would not fit in every trial process).
"""

from __future__ import annotations

import logging

from nas.settings import dataset as dataset_settings
from nas.settings.dataset import DatasetConfig

logger = logging.getLogger(__name__)


def wants_streaming(config: DatasetConfig, decoded_bytes: int, where: str) -> bool:
    """``config.streaming`` if set, else ``True`` for ``reader: ray``, else whether ``decoded_bytes`` is over the threshold (logged)."""
    if config.streaming is not None:
        return config.streaming
    if config.reader == "ray":  # Ray Data reads a streamed split: asking for it asks for streaming
        return True
    threshold = dataset_settings.STREAMING_THRESHOLD_BYTES
    if decoded_bytes <= threshold:
        return False
    logger.info(
        "%s: %.1f GiB decoded is over the %d MiB threshold: streaming",
        where,
        decoded_bytes / (1 << 30),
        threshold >> 20,
    )
    return True


__all__ = ["wants_streaming"]
