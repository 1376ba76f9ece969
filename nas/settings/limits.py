"""Bounds on what a config may hold, checked before anything expands, validates or is stored.

A config is a few kilobytes written by a person. Anything far larger is a
mistake or an attack: YAML anchors and aliases can turn a 475-byte file
into gigabytes once expanded ("billion laughs"), and a deep or huge value
then costs minutes of validation and megabytes in the store and in error
messages. These limits refuse such input up front with a clear
:class:`~nas.core.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from nas.core.errors import ConfigError

#: Largest config file read (bytes).
MAX_CONFIG_BYTES = 1_000_000
#: Most YAML nodes that aliases may add to a document once expanded (an anchor used a few times is fine).
MAX_ALIAS_NODES = 10_000
#: Most values (mappings, lists and scalars together) in a config.
MAX_CONFIG_NODES = 100_000
#: Deepest nesting of mappings and lists in a config.
MAX_CONFIG_DEPTH = 32
#: Longest string (a key or a value) in a config.
MAX_STRING_CHARS = 100_000


class BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts the nodes aliases add and refuses a document that expands too far.

    The count is taken while composing, before any Python object is built:
    each alias adds the expanded size of the node it refers to (memoised per
    node, so measuring stays cheap even for a hostile document).
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            self._alias_nodes += self._size(node)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise ConfigError(
                    f"line {mark.line + 1}: YAML aliases expand to more than {MAX_ALIAS_NODES} values; "
                    "write the values out or use fewer anchors"
                )
            return node
        return super().compose_node(parent, index)

    def _size(self, node: yaml.Node) -> int:
        """The number of nodes in ``node`` with every alias expanded (iterative: no recursion limit)."""
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        while stack:
            current, ready = stack.pop()
            if id(current) in self._sizes:
                continue
            children = _children(current)
            if ready or not children:
                self._sizes[id(current)] = 1 + sum(self._sizes[id(c)] for c in children)
                continue
            stack.append((current, True))
            stack.extend((c, False) for c in children if id(c) not in self._sizes)
        return self._sizes[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_size(data: Any, label: str) -> None:
    """Refuse a config that is too deep, has too many values, or too long a string."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_NODES:
            raise ConfigError(f"{label} holds more than {MAX_CONFIG_NODES} values; a config is a few fields")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{label} is nested more than {MAX_CONFIG_DEPTH} levels deep")
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise ConfigError(
                f"{label} holds a string of {len(value)} characters; the limit is {MAX_STRING_CHARS}"
            )
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "MAX_CONFIG_NODES",
    "MAX_STRING_CHARS",
    "BoundedLoader",
    "check_size",
]
