"""DARTS' genotype: the cell vocabulary and the printed ``Genotype(...)`` form, read safely.

Torch-free: the space (:mod:`search_spaces.darts.space`), the network
(:mod:`search_spaces.darts.model`) and the supernet share these names. The
printed form is read with :func:`ast.parse` and :func:`ast.literal_eval` on
the pieces: nothing is ever evaluated.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

from nas.core import ArchitectureError, UnknownOpError

#: DARTS' ``PRIMITIVES``, in its order.
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: The ops without weights.
PARAMETER_FREE: frozenset[str] = frozenset({"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"})
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
#: Intermediate nodes; 0 and 1 are the cell inputs c_{k-2} and c_{k-1}.
NODES: tuple[int, ...] = (2, 3, 4, 5)
#: The only concat list of the space: every intermediate node.
CONCAT: tuple[int, ...] = NODES
#: Ops NASLib's "compact" form and the path encoding index (DARTS' list without ``none``).
COMPACT_OPS: tuple[str, ...] = OPS[1:]
#: A printed genotype is under a kilobyte; longer text is refused before parsing.
MAX_TEXT_CHARS = 10_000

#: The four fields of DARTS' ``Genotype``, in order.
GENOTYPE_FIELDS: tuple[str, ...] = ("normal", "normal_concat", "reduce", "reduce_concat")


def decision_name(cell: str, node: int, field: str, slot: int) -> str:
    """Name of one decision, e.g. ``decision_name("normal", 2, "op", 0) == "normal.n2.op0"``."""
    return f"{cell}.n{node}.{field}{slot}"


class Genotype(NamedTuple):
    """DARTS' genotype; its ``repr`` is the printed form used by the DARTS code and papers."""

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


def _literal(node: ast.expr, what: str) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ArchitectureError(f"DARTS genotype field {what} is not a literal: {exc}") from exc


def _concat_value(node: ast.expr, what: str) -> list[int]:
    """A concat list: a literal list/tuple of ints or ``range(a[, b[, c]])`` with int literals."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = [_literal(arg, what) for arg in node.args]
        if node.keywords or not 1 <= len(args) <= 3 or not all(type(a) is int for a in args):
            raise ArchitectureError(
                f"DARTS genotype field {what} = {ast.unparse(node)} is not range() of 1 to 3 integers"
            )
        span = range(*args)  # type: ignore[arg-type]
        if span != range(CONCAT[0], CONCAT[-1] + 1):
            raise ArchitectureError(
                f"DARTS genotype field {what} = {ast.unparse(node)}; this space only allows "
                f"{list(CONCAT)} (every intermediate node)"
            )
        return list(span)
    value = _literal(node, what)
    if not isinstance(value, list | tuple) or [type(v) for v in value] != [int] * len(value):
        raise ArchitectureError(f"DARTS genotype field {what} = {value!r} is not a list of integers")
    if list(value) != list(CONCAT):
        raise ArchitectureError(
            f"DARTS genotype field {what} = {list(value)}; this space only allows {list(CONCAT)} "
            "(every intermediate node)"
        )
    return list(value)


def parse_genotype(text: object) -> Genotype:
    """Read DARTS' printed ``Genotype(...)`` into a :class:`Genotype` without evaluating anything."""
    example = "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])"
    if not isinstance(text, str):
        raise ArchitectureError(f"DARTS genotype text must be a str, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ArchitectureError(
            f"DARTS genotype text has {len(text)} characters, more than the limit {MAX_TEXT_CHARS}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ArchitectureError(
            f"DARTS genotype {text[:80]!r} is malformed ({exc}); expected {example}"
        ) from exc
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise ArchitectureError(
            f"DARTS genotype {text[:80]!r} is not a Genotype(...) call; expected {example}"
        )
    if len(call.args) > len(GENOTYPE_FIELDS):
        raise ArchitectureError(
            f"DARTS genotype has {len(call.args)} positional fields; expected at most {len(GENOTYPE_FIELDS)}"
        )
    fields: dict[str, ast.expr] = dict(zip(GENOTYPE_FIELDS, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg not in GENOTYPE_FIELDS:
            raise ArchitectureError(
                f"DARTS genotype has field {keyword.arg!r}; allowed: {', '.join(GENOTYPE_FIELDS)}"
            )
        if keyword.arg in fields:
            raise ArchitectureError(f"DARTS genotype gives field {keyword.arg!r} twice")
        fields[keyword.arg] = keyword.value
    missing = [name for name in GENOTYPE_FIELDS if name not in fields]
    if missing:
        raise ArchitectureError(f"DARTS genotype lacks field(s) {missing}; expected {example}")
    return Genotype(
        normal=_literal(fields["normal"], "normal"),  # type: ignore[arg-type]
        normal_concat=_concat_value(fields["normal_concat"], "normal_concat"),
        reduce=_literal(fields["reduce"], "reduce"),  # type: ignore[arg-type]
        reduce_concat=_concat_value(fields["reduce_concat"], "reduce_concat"),
    )


def check_pairs(cell: str, pairs: object) -> list[tuple[str, int]]:
    """Validate one cell's eight (op, input) pairs, naming the node of any bad one."""
    expected = 2 * len(NODES)
    if not isinstance(pairs, list | tuple) or len(pairs) != expected:
        count = len(pairs) if isinstance(pairs, list | tuple) else type(pairs).__name__
        raise ArchitectureError(
            f"DARTS {cell} cell has {count} (op, input) pairs; expected {expected} (two per node 2..5)"
        )
    checked = []
    for position, pair in enumerate(pairs):
        node = NODES[position // 2]
        where = f"DARTS {cell} cell node {node} (pair {position})"
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ArchitectureError(
                f"{where} is {pair!r}; expected an (op, input) pair such as ('sep_conv_3x3', 0)"
            )
        op, index = pair
        if not isinstance(op, str) or op not in OPS:
            raise UnknownOpError(f"op in {where}", op, OPS)
        if type(index) is not int or not 0 <= index < node:
            raise ArchitectureError(
                f"{where} takes input {index!r}; node {node} may only take inputs 0..{node - 1} "
                "(0 = c_{k-2}, 1 = c_{k-1}, 2.. = earlier nodes): a later node would make a cycle"
            )
        checked.append((op, index))
    return checked


__all__ = [
    "CELL_TYPES",
    "COMPACT_OPS",
    "CONCAT",
    "GENOTYPE_FIELDS",
    "MAX_TEXT_CHARS",
    "NODES",
    "OPS",
    "PARAMETER_FREE",
    "Genotype",
    "check_pairs",
    "decision_name",
    "parse_genotype",
]
