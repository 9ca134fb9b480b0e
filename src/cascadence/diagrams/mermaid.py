"""Render a graph as a Mermaid flowchart."""

from __future__ import annotations

from typing import Any

from cascadence.diagrams.graph import Graph, Node, graph_of

__all__ = ["render_mermaid", "to_mermaid"]

_SHAPES = {
    "box": ("[", "]"),
    "round": ("(", ")"),
    "diamond": ("{", "}"),
    "circle": ("((", "))"),
    "fork": ("[[", "]]"),
}


_ENTITIES = str.maketrans({'"': "#quot;", "<": "#lt;", "|": "#124;", "#": "#35;"})


def _text(label: str) -> str:
    """A quoted Mermaid label: quotes, `<`, bars and `#` as entity codes (so a name such as
    `<b>` or `a|b` is shown as written, not read as syntax or HTML), line breaks as `<br/>`."""
    lines = label.replace("\r\n", "\n").replace("\\n", "\n").split("\n")
    return '"' + "<br/>".join(line.translate(_ENTITIES) for line in lines) + '"'


def _node(node: Node) -> str:
    left, right = _SHAPES[node.shape]
    return f"{node.id}{left}{_text(node.label)}{right}"


def render_mermaid(graph: Graph) -> str:
    """Mermaid `flowchart TD` text of `graph`."""
    title = " ".join(graph.title.split())  # a comment ends at the line's end
    lines = ["flowchart TD", f"    %% {title}"]
    clustered = {nid for _, members in graph.clusters.values() for nid in members}
    for node in graph.nodes:
        if node.id not in clustered:
            lines.append(f"    {_node(node)}")
    by_id = {n.id: n for n in graph.nodes}
    for cid, (title, members) in graph.clusters.items():
        lines.append(f"    subgraph {cid}[{_text(title)}]")
        lines.extend(f"        {_node(by_id[m])}" for m in members)
        lines.append("    end")
    arrows = {"solid": "-->", "dashed": "-.->", "dotted": "-.->"}
    for edge in graph.edges:
        arrow = arrows[edge.style]
        label = f"|{_text(edge.label)}|" if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
    dashed = [n.id for n in graph.nodes if n.style == "dashed"]
    if dashed:
        lines.append("    classDef disabled stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(dashed)} disabled")
    return "\n".join(lines) + "\n"


def to_mermaid(target: Any) -> str:
    """A Mermaid flowchart of a `Cadence`, a `CascadeEngine` or a `CascadeConfig`.

    Cascade routing rules are drawn as labelled edges; disabled stages are dashed.
    """
    return render_mermaid(graph_of(target))
