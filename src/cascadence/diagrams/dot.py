"""Render a graph as Graphviz DOT."""

from __future__ import annotations

from typing import Any

from cascadence.diagrams.graph import Graph, Node, graph_of

__all__ = ["render_dot", "to_dot"]

_SHAPES = {"box": "box", "round": "box", "diamond": "diamond", "circle": "circle", "fork": "box"}


def _quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped; the graph model's `\\n` and real line
    breaks become DOT's centred line break."""
    lines = text.replace("\r\n", "\n").replace("\\n", "\n").split("\n")
    body = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + body + '"'


def _node(node: Node) -> str:
    attrs = [f"label={_quote(node.label)}", f"shape={_SHAPES[node.shape]}"]
    styles = []
    if node.shape == "round":
        styles.append("rounded")
    if node.shape == "fork":
        styles.append("filled")
    if node.style == "dashed":
        styles.append("dashed")
    if styles:
        attrs.append(f'style="{",".join(styles)}"')
    return f"{node.id} [{', '.join(attrs)}];"


def render_dot(graph: Graph) -> str:
    """DOT `digraph` text of `graph`."""
    lines = [f"digraph {_quote(graph.title)} {{", "    rankdir=TB;"]
    clustered = {nid for _, members in graph.clusters.values() for nid in members}
    by_id = {n.id: n for n in graph.nodes}
    for node in graph.nodes:
        if node.id not in clustered:
            lines.append(f"    {_node(node)}")
    for cid, (title, members) in graph.clusters.items():
        lines.append(f"    subgraph cluster_{cid} {{")
        lines.append(f"        label={_quote(title)};")
        lines.extend(f"        {_node(by_id[m])}" for m in members)
        lines.append("    }")
    for edge in graph.edges:
        attrs = []
        if edge.label:
            attrs.append(f"label={_quote(edge.label)}")
        if edge.style != "solid":
            attrs.append(f"style={edge.style}")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(target: Any) -> str:
    """A Graphviz DOT digraph of a `Cadence`, a `CascadeEngine` or a `CascadeConfig`."""
    return render_dot(graph_of(target))
