"""Diagrams of flows and cascades, drawn from their compiled plans (Mermaid and DOT)."""

from cascadence.diagrams.dot import render_dot, to_dot
from cascadence.diagrams.graph import Edge, Graph, Node, graph_of
from cascadence.diagrams.mermaid import render_mermaid, to_mermaid

__all__ = [
    "Edge",
    "Graph",
    "Node",
    "graph_of",
    "render_dot",
    "render_mermaid",
    "to_dot",
    "to_mermaid",
]
