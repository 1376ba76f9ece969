"""Torch building blocks of weight-sharing supernets, shared by spaces and one-shot methods.

A support package (below the plugins): the spaces build their supernets from
these pieces (each space package's ``supernet`` module) and the one-shot
methods (:mod:`nas.oneshot`) steer them, so neither side imports the other.
It imports only :mod:`nas.core`, torch and numpy.
"""

from __future__ import annotations

from nas.supernet.base import AlphaGroup, CellPath, CellSupernet, CellSupernetSize, Supernet
from nas.supernet.mixed import DROPPED, MixedOp, channel_shuffle, mix_node, strip_affine

__all__ = [
    "DROPPED",
    "AlphaGroup",
    "CellPath",
    "CellSupernet",
    "CellSupernetSize",
    "MixedOp",
    "Supernet",
    "channel_shuffle",
    "mix_node",
    "strip_affine",
]
