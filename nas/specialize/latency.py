"""Latency models of a device: what a sub-network will cost there, predicted before it is ever built.

Two kinds, one interface (:class:`LatencyModel`):

* a **device of the latency table** (the 27 columns of HELP's FBNet table:
  GPUs at several batch sizes, server CPUs, phones, ``raspi4``, ``eyeriss``,
  ``fpga``): FBNet's additive lookup table fitted by least squares on that
  column (:class:`predictors.latency.LatencyLUT`). Additive means the fastest
  sub-network is known exactly (the cheapest block per layer), so a budget
  nothing meets is refused before any work, naming the fastest achievable;
* **``local``**: this machine, from the per-block ONNX Runtime table built by
  ``nas latency profile`` (:mod:`nas.specialize.profile`): additive where the
  space's blocks cost the same whatever precedes them (fbnet), per block
  *context* where they do not (hybrid: a block is priced by its input width
  and resolution too, and a network by the entries along its path). A space
  without a device table (hybrid) has only ``local``; naming another device
  says why.

A sub-network is predicted in its canonical form, the network the elastic
supernet runs and extracts (FBNet moves a stage's depth-skips to its end).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, UnknownNameError
from nas.core.oneshot import oneshot_view
from nas.core.space import SearchSpace
from nas.specialize.model import LOCAL, LatencyModel

logger = logging.getLogger(__name__)


def table_devices(space: SearchSpace) -> list[str]:
    """The devices of ``space``'s latency table (its numeric columns), ``[]`` without one."""
    path = _table_path(space)
    if path is None:
        return []
    from nas.data import latency_lut
    from nas.data.tables import Table

    return latency_lut.devices(Table.load(path, space))


def known_devices(space: SearchSpace) -> list[str]:
    """Every device a sub-network of ``space`` can be specialised for: the table's and ``local``."""
    return [*table_devices(space), LOCAL]


def device_model(
    space: SearchSpace, device: str, *, input_shape: tuple[int, int, int], num_classes: int
) -> LatencyModel:
    """The latency model of ``device`` for ``space``; unknown devices raise, listing the known ones.

    ``local`` reads the cached ONNX Runtime profile of this machine for this
    space and input (:func:`nas.specialize.profile.load_profile`), which
    ``nas latency profile`` builds; without one it raises with that command.
    """
    if not isinstance(device, str) or not device:
        raise ConfigError(
            f"device must be a non-empty name, got {device!r}; known: {', '.join(known_devices(space))}"
        )
    if device == LOCAL:
        from nas.specialize.profile import load_profile

        return load_profile(space, input_shape=input_shape, num_classes=num_classes)
    devices = table_devices(space)
    if not devices:
        raise ConfigError(_local_only(space, device))
    if device not in devices:
        raise UnknownNameError(f"device for the {space.name} space", device, [*devices, LOCAL])
    return _fitted(space, device)


def _local_only(space: SearchSpace, device: str) -> str:
    """Why only ``local`` prices ``space``: device tables measure other spaces' networks, not this one's."""
    from nas.core.space import SPACES

    owners = {
        name: view.latency_table
        for name in SPACES.names()
        if name != space.name
        and (view := oneshot_view(SPACES.get(name))) is not None
        and view.latency_table is not None
        and device in table_devices(SPACES.get(name)())
    }
    where = "".join(
        f"{device!r} is a column of the {name} space's latency table ({table}), measured on {name} networks; "
        for name, table in owners.items()
    )
    view = oneshot_view(space)
    context = view is not None and view.latency_keys is not None
    why = (
        f"a device table prices a network block by block, and a {space.name} block costs what its input width "
        "and resolution (set by the blocks before it) make it cost, so no other space's table carries over; "
        if context
        else ""
    )
    return (
        f"device {device!r} is not available for the {space.name} space: {where}{why}no device table of "
        f"{space.name} networks exists; the only device is {LOCAL!r}, this machine's ONNX Runtime table"
        f"{' per block context' if context else ''} (build it with: nas latency profile STUDY)"
    )


def _table_path(space: SearchSpace) -> Path | None:
    view = oneshot_view(space)
    if view is None or view.latency_table is None:
        return None
    from nas.data.paths import data_path

    return data_path(view.latency_table)


#: Fitted tables per (table file, its version, space, space options): fitting costs a second or two.
_FITTED: dict[tuple[Any, ...], dict[str, LatencyModel]] = {}


def _fitted(space: SearchSpace, device: str) -> LatencyModel:
    """The device's additive table, fitted (with every other device of the file) on first use."""
    path = _table_path(space)
    assert path is not None  # device_model checked the device is a column of the table
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, space.name, json.dumps(space.options, sort_keys=True))
    if key not in _FITTED:
        _FITTED[key] = _fit_all(space, path)
    return _FITTED[key][device]


def _fit_all(space: SearchSpace, path: Path) -> dict[str, LatencyModel]:
    """FBNet's additive lookup table of every device column (:func:`nas.data.latency_lut.fit_additive`)."""
    from nas.data.latency_lut import fit_additive
    from nas.data.tables import Table

    table = Table.load(path, space)
    models = {}
    for device, fit in fit_additive(space, table).items():
        entries: dict[str, dict[Any, float]] = {}
        for (name, value), ms in fit.costs.items():
            entries.setdefault(name, {})[value] = ms
        models[device] = LatencyModel(device=device, table=entries, constant=fit.constant, source=str(path))
    logger.info(
        "latency tables of %d devices fitted on %d architectures of %s",
        len(models),
        len(table.archs),
        path.name,
    )
    return models


__all__ = ["LOCAL", "LatencyModel", "device_model", "known_devices", "table_devices"]
