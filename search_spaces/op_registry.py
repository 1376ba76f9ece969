"""Plugin candidate ops: a registry of cell ops a space may add to its built-in ones.

Why a registry and not an edit of a space's op tuple: a space's ops define
which architectures exist, what the tabular benchmark can look up and what
the stored studies mean, so a plugin must never change a space for everybody
by being imported. A registered op is only *available*; a space uses it when
its options name it (``nb201``'s ``extra_ops: [noise]``). That is how the
search-space poisoning test adds a harmful op to ``nb201`` (see
:mod:`nas.audit`), and how a user tries a new op without forking a space.

An op is registered with its capabilities as metadata (timm's habit), so no
module keeps a hard-coded list of, say, parameter-free ops:

.. code-block:: python

    from search_spaces.op_registry import register_op

    @register_op("noise", parameter_free=True, spaces=("nb201",))
    def noise(channels: int) -> torch.nn.Module:
        return Noise()

The factory gets the channel count and returns a module that keeps the shape
of its input (stride 1, same channels): the contract of a cell edge. This
module imports no torch (factories are only called when a model is built).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.core.registry import Registry


@dataclass(frozen=True)
class OpSpec:
    """A registered plugin op: its factory and what the platform needs to know about it."""

    name: str
    #: ``factory(channels) -> nn.Module``, shape-preserving.
    factory: Callable[[int], Any]
    #: True when the op has no weights (skip, pooling, noise): the ops a supernet tends to favour.
    parameter_free: bool
    #: The spaces whose cells can hold it (their edges keep shape: ``nb201``).
    spaces: tuple[str, ...]


#: Plugin ops by name; importing a plugin module registers its ops.
CELL_OPS: Registry[OpSpec] = Registry("cell op")


def register_op(
    name: str, *, parameter_free: bool, spaces: tuple[str, ...] = ("nb201",)
) -> Callable[[Callable[[int], Any]], Callable[[int], Any]]:
    """Decorator registering ``factory(channels) -> nn.Module`` as the cell op ``name``."""

    def decorator(factory: Callable[[int], Any]) -> Callable[[int], Any]:
        CELL_OPS.register(name)(
            OpSpec(name=name, factory=factory, parameter_free=bool(parameter_free), spaces=tuple(spaces))
        )
        return factory

    return decorator


def ops_for(space: str) -> list[str]:
    """Names of the registered plugin ops a space accepts."""
    return [name for name in CELL_OPS.names() if space in CELL_OPS.get(name).spaces]


__all__ = ["CELL_OPS", "OpSpec", "ops_for", "register_op"]
