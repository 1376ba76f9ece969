"""The architecture value: immutability, identity, and JSON from untrusted files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nas.core import Architecture, ArchitectureError


def test_value_semantics() -> None:
    a = Architecture("s", {"x": "conv", "y": 2})
    b = Architecture("s", (("x", "conv"), ("y", 2)))
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert {a: 1}[b] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.space = "t"  # type: ignore[misc]


def test_replace_returns_new_value() -> None:
    a = Architecture("s", {"x": "conv", "y": 2})
    b = a.replace(y=3)
    assert a["y"] == 2 and b["y"] == 3 and a.key != b.key
    with pytest.raises(ArchitectureError, match="unknown decision"):
        a.replace(z=1)


def test_key_ignores_order_but_not_values_or_space() -> None:
    a = Architecture("s", {"x": 1, "y": 2})
    assert a.key == Architecture("s", {"y": 2, "x": 1}).key
    assert a.key != Architecture("s", {"x": 1, "y": 3}).key
    assert a.key != Architecture("t", {"x": 1, "y": 2}).key


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "must be an object"),
        ('{"space": "s"}', "exactly the keys"),
        ('{"space": "s", "decisions": [], "extra": 1}', "exactly the keys"),
        ('{"space": "s", "decisions": []}', "must be an object"),
        ('{"space": "", "decisions": {}}', "non-empty"),
        ('{"space": "s", "decisions": {"a": [1]}}', "allowed: str, int"),
        ('{"space": "s", "decisions": {"a": NaN}}', "NaN"),
        ('{"space": "s", "decisions": {"a": null}}', "NoneType"),
        ("{not json", "not valid JSON"),
    ],
)
def test_untrusted_json_rejected(text: str, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_json(text)


def test_huge_json_rejected() -> None:
    text = json.dumps({"space": "s", "decisions": {"a": "x" * 2_000_000}})
    with pytest.raises(ArchitectureError, match="exceeds"):
        Architecture.from_json(text)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Architecture.from_json("[]")
