"""Torch building blocks of weight-sharing supernets, shared by spaces and one-shot methods.

A support package (below the plugins): the spaces build their supernets from
these pieces (each space package's ``supernet`` module) and the one-shot
methods (:mod:`nas.oneshot`) steer them, so neither side imports the other.
It imports only :mod:`nas.core`, torch and numpy.
"""

from __future__ import annotations

from nas.supernet.base import AlphaGroup, CellPath, CellSupernet, CellSupernetSize, Supernet
from nas.supernet.cell import MixedCell, NodeMixer
from nas.supernet.elastic import ElasticSupernet
from nas.supernet.mixed import (
    DROPPED,
    MixedOp,
    SharedOutputs,
    channel_shuffle,
    mix_node,
    mix_ops,
    strip_affine,
)
from nas.supernet.recalibrate import recalibrate_bn
from nas.supernet.recompute import Checkpointable, recompute, set_checkpointing

__all__ = [
    "DROPPED",
    "AlphaGroup",
    "Checkpointable",
    "CellPath",
    "CellSupernet",
    "CellSupernetSize",
    "ElasticSupernet",
    "MixedCell",
    "MixedOp",
    "NodeMixer",
    "SharedOutputs",
    "Supernet",
    "channel_shuffle",
    "mix_node",
    "mix_ops",
    "recalibrate_bn",
    "recompute",
    "set_checkpointing",
    "strip_affine",
]
