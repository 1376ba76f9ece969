"""Network morphisms: function-preserving edits of an architecture, as a space capability.

A morphism (EAS, Cai et al. 2018; path-level network transformation, Cai et
al. 2018; Net2Net before them) turns a parent architecture into a child whose
network, initialised from the parent's trained weights, computes exactly the
parent's function: a wider layer whose new units replicate old ones, a deeper
network whose new layer starts as the identity. The child then only has to
fine-tune, so it reaches a from-scratch accuracy in a fraction of the epochs.

Here a morphism is a single-decision edit of the genotype (the child is an
ordinary member of the same space, stored and deduplicated like any other),
described by a :class:`Morphism` record that the store keeps with the child.
A space offers morphisms by carrying a :class:`MorphismView` as its class
attribute ``morphism_view``: which edits are function-preserving for a given
parent (torch-free, so strategies can enumerate them) and a lazily imported
``transfer`` that maps the parent's weights onto the child's network (torch,
used only by the evaluator that trains the child). A space without a view has
no morphisms, and asking for them is a :class:`~nas.core.errors.ConfigError`
naming the spaces that have some.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.core.architecture import Architecture, Scalar
from nas.core.errors import ArchitectureError, ConfigError, shown
from nas.core.registry import LazyEntry
from nas.core.space import SearchSpace

#: ``edits(space, parent) -> [(kind, decision, new value), ...]``: the function-preserving edits.
Edits = Callable[[Any, Architecture], list[tuple[str, str, Scalar]]]


@dataclass(frozen=True)
class Morphism:
    """One function-preserving edit: ``decision`` of ``parent`` set to ``child``'s value.

    ``kind`` says what the edit does to the network (``widen``, ``deepen``,
    ``kernel``, ``ungroup``, or several joined by ``+``).
    """

    kind: str
    decision: str
    parent: Architecture
    child: Architecture

    def to_dict(self) -> dict[str, Any]:
        """The JSON record the store keeps with the child (``system_attrs["morphism"]``)."""
        return {
            "kind": self.kind,
            "decision": self.decision,
            "from": self.parent[self.decision],
            "to": self.child[self.decision],
        }


@dataclass(frozen=True)
class MorphismView:
    """How a space offers morphisms: the edits for a parent, and where the weight transfer lives.

    ``transfer`` is a ``"module:function"`` reference, imported only when
    weights are mapped (it needs torch); the function is called as
    ``transfer(space, morphism, parent_model, child_model, generator)`` and fills
    the child's parameters and buffers in place.
    """

    kinds: tuple[str, ...]
    edits: Edits
    transfer: str

    def __post_init__(self) -> None:
        LazyEntry(self.transfer)  # refuses a reference that is not "module:attr"

    def transfer_function(self) -> Callable[..., None]:
        return LazyEntry(self.transfer).resolve()  # type: ignore[return-value]


def spaces_with_morphisms() -> list[str]:
    """Registered spaces that carry a :class:`MorphismView` (for messages naming them)."""
    from nas.core.space import SPACES

    return [
        n for n in SPACES.names() if isinstance(getattr(SPACES.get(n), "morphism_view", None), MorphismView)
    ]


def morphism_view(space: SearchSpace | type[SearchSpace]) -> MorphismView:
    """The morphism view of ``space``; a space without one is a ConfigError naming those with one."""
    view = getattr(space, "morphism_view", None)
    if isinstance(view, MorphismView):
        return view
    name = getattr(space, "name", type(space).__name__)
    raise ConfigError(
        f"space {name!r} has no morphisms; spaces with them: {', '.join(spaces_with_morphisms()) or '(none)'}"
    )


def morphisms(space: SearchSpace, parent: Architecture) -> list[Morphism]:
    """Every function-preserving single-decision edit of ``parent`` (in the space's order)."""
    view = morphism_view(space)
    space.validate(parent)
    return [
        Morphism(kind, decision, parent, space.validate(parent.replace(**{decision: value})))
        for kind, decision, value in view.edits(space, parent)
    ]


def find_morphism(space: SearchSpace, parent: Architecture, child: Architecture) -> Morphism:
    """The morphism that turns ``parent`` into ``child``; ArchitectureError if there is none."""
    for morphism in morphisms(space, parent):
        if morphism.child == space.validate(child):
            return morphism
    raise ArchitectureError(
        f"{space.name} architecture {shown(space.format(child))} is not a morphism of "
        f"{shown(space.format(parent))}; its morphisms change: "
        f"{', '.join(sorted({m.decision for m in morphisms(space, parent)})) or '(nothing)'}"
    )


__all__ = [
    "Edits",
    "Morphism",
    "MorphismView",
    "find_morphism",
    "morphism_view",
    "morphisms",
    "spaces_with_morphisms",
]
