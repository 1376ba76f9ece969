"""Specialisation without retraining: per-device sub-networks of a trained elastic supernet.

``nas specialize STUDY --device NAME --max-latency-ms X`` searches the
sub-networks of a BigNAS study's supernet with inherited weights and a
device latency model (:mod:`nas.specialize.run`); ``nas latency profile``
builds this machine's per-block ONNX Runtime table for ``--device local``
(:mod:`nas.specialize.profile`); :mod:`nas.specialize.latency` holds the
latency models. It sits above the runner and export (it uses export's ONNX
writer and timer) and below the command line.
"""

from __future__ import annotations

from nas.specialize.latency import LOCAL, LatencyModel, device_model, known_devices
from nas.specialize.run import SpecializeOutcome, TargetResult, specialize

__all__ = [
    "LOCAL",
    "LatencyModel",
    "SpecializeOutcome",
    "TargetResult",
    "device_model",
    "known_devices",
    "specialize",
]
