"""Architectures drawn as Graphviz DOT, from the graph view every search space provides.

``space.to_graph(arch)`` is the one drawing contract: cell spaces (nb201,
darts) put the op on each edge, chain spaces (fbnet, hybrid) on each node.
This module turns such a networkx graph into DOT text, which
``st.graphviz_chart`` renders in the browser (no Graphviz install needed),
so a new space plugin is drawn without dashboard changes:

* op names label the edges or nodes, coloured by op *family* (convolution,
  pooling, skip, none, attention, ...), so the structure reads at a glance;
* nodes with a ``cell`` attribute are grouped into one box per cell (DARTS'
  normal and reduction cells), chain nodes with a ``stage`` are laid out one
  row per stage, so a 22-layer FBNet chain stays readable;
* :func:`graph_differences` names the edges and nodes where two
  architectures differ, which :func:`to_dot` draws highlighted (Compare).

Pure Python (networkx only): testable without Streamlit or a browser.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable
from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class OpFamily:
    """A group of ops drawn in one colour; ``name`` appears in the legend."""

    name: str
    pattern: re.Pattern[str]
    colour: str  # hex colour used in the drawing
    streamlit_colour: str  # the matching Streamlit markdown colour, for the legend
    dashed: bool = False


#: Checked in order; the first match wins. Unmatched ops use :data:`OTHER`.
FAMILIES: tuple[OpFamily, ...] = (
    OpFamily("none", re.compile(r"^(none|zero|zeroize|null)$", re.I), "#9e9e9e", "gray", dashed=True),
    OpFamily("skip", re.compile(r"skip|identity|^id$", re.I), "#616161", "gray"),
    OpFamily("pooling", re.compile(r"pool", re.I), "#2e7d32", "green"),
    OpFamily("attention", re.compile(r"attn|attention|transformer|mhsa|vit", re.I), "#e65100", "orange"),
    OpFamily("convolution", re.compile(r"conv|^k\d+_e\d+|mbconv|^c\d*$", re.I), "#1565c0", "blue"),
    OpFamily(
        "input/output", re.compile(r"^(input|output|stem|head|concat|add|sum)$", re.I), "#424242", "gray"
    ),
)
OTHER = OpFamily("other", re.compile(r".*"), "#6a1b9a", "violet")

#: Colour of highlighted (differing) elements.
HIGHLIGHT = "#d32f2f"

#: Node attributes compared by :func:`graph_differences` besides the op: those that follow
#: from a decision of the node itself. Derived ones such as ``channels`` are left out, since
#: one width change upstream alters them in every later node.
COMPARED_NODE_ATTRS = ("op", "width", "stride", "kernel", "expansion")

#: Attributes that are structure, never printed as node details.
_STRUCTURAL = frozenset({"op", "kind", "cell", "stage", "slot"})

Element = Hashable  # a node, or an (u, v) edge tuple


def op_family(op: object) -> OpFamily:
    """The family an op name belongs to (by name pattern)."""
    text = str(op)
    for family in FAMILIES:
        if family.pattern.search(text):
            return family
    return OTHER


def has_edge_ops(graph: nx.DiGraph) -> bool:
    """True if ops sit on edges (cells), False if on nodes (chains)."""
    return any("op" in data for _, _, data in graph.edges(data=True))


def graph_differences(graph: nx.DiGraph, other: nx.DiGraph) -> set[Element]:
    """Nodes and ``(u, v)`` edges of ``graph`` whose op (or own decision) differs from ``other``, or that ``other`` lacks."""
    changed: set[Element] = set()
    for u, v, data in graph.edges(data=True):
        if not other.has_edge(u, v) or other.edges[u, v].get("op") != data.get("op"):
            changed.add((u, v))
    for node, data in graph.nodes(data=True):
        if node not in other:
            changed.add(node)
            continue
        theirs = other.nodes[node]
        if any(data.get(key) != theirs.get(key) for key in COMPARED_NODE_ATTRS):
            changed.add(node)
    return changed


def families_used(graph: nx.DiGraph) -> list[OpFamily]:
    """The op families appearing in ``graph``, in legend order (for a legend next to the drawing)."""
    ops = [d["op"] for _, _, d in graph.edges(data=True) if "op" in d]
    ops += [d["op"] for _, d in graph.nodes(data=True) if "op" in d]
    used = {op_family(op).name for op in ops}
    return [f for f in (*FAMILIES, OTHER) if f.name in used]


def to_dot(graph: nx.DiGraph, highlight: Collection[Element] = (), *, title: str | None = None) -> str:
    """DOT text drawing ``graph``; elements in ``highlight`` are drawn thick and red."""
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    marked = set(highlight)
    edge_ops = has_edge_ops(graph)
    lines = [
        "digraph G {",
        f"  rankdir={'LR' if edge_ops else 'TB'};",
        '  bgcolor="transparent"; nodesep=0.25; ranksep=0.45;',
        '  node [fontname="Helvetica", fontsize=11, style="filled", fillcolor="white", color="#424242"];',
        '  edge [fontname="Helvetica", fontsize=10, color="#616161", arrowsize=0.6];',
    ]
    if title:
        lines.append(f'  label={_quote(title)}; labelloc="t"; fontname="Helvetica"; fontsize=13;')

    node_lines = {
        node: _node_line(ids[node], node, data, edge_ops, node in marked)
        for node, data in graph.nodes(data=True)
    }
    cells: dict[str, list[Hashable]] = {}
    for node, data in graph.nodes(data=True):
        if "cell" in data:
            cells.setdefault(str(data["cell"]), []).append(node)
    for index, (cell, members) in enumerate(cells.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(
            f'    label={_quote(cell + " cell")}; style="rounded,dashed"; color="#9e9e9e"; fontsize=12;'
        )
        lines += [f"  {node_lines.pop(node)}" for node in members]
        lines.append("  }")
    lines += node_lines.values()

    rows = [] if edge_ops else stage_rows(graph)
    row_of = {node: i for i, row in enumerate(rows) for node in row}
    for i, row in enumerate(rows):
        # One row per stage, rows left-aligned under each other (a typewriter layout): a long
        # chain stays readable instead of shrinking to a thin line. Invisible heavy edges
        # between row starts set the row order; the real edges between rows do not pull.
        if len(row) > 1:
            lines.append("  { rank=same; " + " ".join(ids[n] for n in row) + " }")
        if i + 1 < len(rows):
            lines.append(f"  {ids[row[0]]} -> {ids[rows[i + 1][0]]} [style=invis, weight=100];")
    for u, v, data in graph.edges(data=True):
        across = bool(rows) and row_of.get(u) != row_of.get(v)
        lines.append(_edge_line(ids[u], ids[v], data, (u, v) in marked, constraint=not across))
    lines.append("}")
    return "\n".join(lines)


def _node_line(node_id: str, node: Hashable, data: dict, edge_ops: bool, marked: bool) -> str:
    attrs: dict[str, str] = {}
    if "op" in data and not edge_ops:
        family = op_family(data["op"])
        details = node_details(data)
        attrs["label"] = "\n".join([str(data["op"]), *([details] if details else [])])
        attrs["shape"] = "box"
        attrs["style"] = "rounded,filled"
        attrs["fillcolor"] = _tint(family.colour)
        attrs["color"] = family.colour
        attrs["tooltip"] = str(node)
    else:
        label = str(node)
        if "cell" in data and label.startswith(f"{data['cell']}/"):
            label = label[len(str(data["cell"])) + 1 :]
        attrs["label"] = label
        kind = data.get("kind")
        attrs["shape"] = "box" if kind in ("input", "output") else "circle" if edge_ops else "box"
        if kind in ("input", "output"):
            attrs["fillcolor"] = "#eeeeee"
            attrs["style"] = "rounded,filled"
    if marked:
        attrs["color"] = HIGHLIGHT
        attrs["penwidth"] = "3"
        attrs["fontcolor"] = HIGHLIGHT
    return f"  {node_id} [{_attrs(attrs)}];"


def _edge_line(u: str, v: str, data: dict, marked: bool, *, constraint: bool = True) -> str:
    attrs: dict[str, str] = {} if constraint else {"constraint": "false"}
    if "op" in data:
        family = op_family(data["op"])
        attrs["label"] = str(data["op"])
        attrs["color"] = family.colour
        attrs["fontcolor"] = family.colour
        attrs["penwidth"] = "1.6"
        if family.dashed:
            attrs["style"] = "dashed"
    if marked:
        attrs["color"] = HIGHLIGHT
        attrs["fontcolor"] = HIGHLIGHT
        attrs["penwidth"] = "3.5"
    return f"  {u} -> {v} [{_attrs(attrs)}];" if attrs else f"  {u} -> {v};"


def stage_rows(graph: nx.DiGraph) -> list[list[Hashable]]:
    """Chain nodes in order, grouped into rows of consecutive nodes of the same ``stage``.

    Nodes without a stage (input, stem, head) are rows of their own; a
    graph that is not a DAG keeps its node order.
    """
    try:
        order = list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        order = list(graph.nodes)
    rows: list[list[Hashable]] = []
    previous: object = object()
    for node in order:
        stage = graph.nodes[node].get("stage", object())
        if rows and stage == previous:
            rows[-1].append(node)
        else:
            rows.append([node])
        previous = stage
    return rows


#: How known node attributes are shown under the op name (others: ``name=value``).
_DETAILS = {
    "channels": lambda v: f"{v} ch",
    "stride": lambda v: f"stride {v}" if v != 1 else "",
    "heads": lambda v: f"{v} heads" if v else "",
    "width": lambda v: f"width ×{v}",
}


def node_details(data: dict) -> str:
    """A short second label line from a chain node's attributes (``"128 ch · stride 2"``)."""
    parts = []
    for key, value in data.items():
        if key in _STRUCTURAL or not _scalar(value):
            continue
        shown = _DETAILS[key](value) if key in _DETAILS else f"{key}={value}"
        if shown:
            parts.append(shown)
    return " · ".join(parts)


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _tint(colour: str, amount: float = 0.82) -> str:
    """A light version of ``#rrggbb`` (mixed with white) for node fills."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _quote(text: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines as line breaks)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
