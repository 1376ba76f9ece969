"""Pydantic validation errors as users read them: one line per problem, with its path and value.

``field.path: message (got VALUE)``; an unknown field gets a "did you mean"
hint from the fields of the section it was found in. Used for the search
config and for every plugin that validates its options with pydantic.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError


def format_validation_error(
    exc: ValidationError,
    root: type[BaseModel] | None = None,
    union_tags: typing.Mapping[str, tuple[str, ...]] | None = None,
) -> str:
    """One line per problem: ``field.path: message (got VALUE)``.

    ``root`` is the validated model (for hints on unknown fields), ``union_tags``
    the tags pydantic inserts below a tagged-union field (dropped from paths).
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"], union_tags or {})
        where = "".join(f"{part}: " if i == len(loc) - 1 else f"{part}." for i, part in enumerate(loc))
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            allowed = _fields_at(loc[:-1], root) if root is not None else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            message = f"unknown field.{hint} Allowed: {', '.join(allowed)}"
        if error["type"] == "missing" or isinstance(value, dict):
            lines.append(f"  {where}{message}")
        else:
            shown = repr(value)
            lines.append(f"  {where}{message} (got {shown[:80] + '...' if len(shown) > 80 else shown})")
    return "\n".join(lines)


def _clean_loc(
    loc: tuple[int | str, ...], union_tags: typing.Mapping[str, tuple[str, ...]]
) -> tuple[int | str, ...]:
    """Drop the union tags pydantic inserts (``evaluator.settings.epochs`` -> ``evaluator.epochs``)."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in union_tags and parts[1] in union_tags[str(parts[0])]:
        del parts[1]
    return tuple(parts)


def _fields_at(loc: tuple[int | str, ...], model: type[BaseModel]) -> list[str]:
    """The field names of the section at ``loc`` below ``model`` (for 'did you mean' hints)."""
    for part in loc:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        found = _model_in(annotation)
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The first strict section model inside a (possibly Optional/Annotated/Union) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


__all__ = ["format_validation_error"]
