"""A small graph model built from a compiled plan; the renderers only read this."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from cascadence.runtime.plan import (
    BranchNode,
    CascadePlan,
    ChildNode,
    FlowNode,
    FlowPlan,
    ParallelNode,
    StepNode,
)

__all__ = ["Edge", "Graph", "Node", "graph_of", "plan_of"]

Shape = Literal["box", "round", "diamond", "circle", "fork"]
Style = Literal["solid", "dashed", "dotted"]


@dataclass(frozen=True, slots=True)
class Node:
    """A drawable node."""

    id: str
    label: str
    shape: Shape = "box"
    style: Style = "solid"


@dataclass(frozen=True, slots=True)
class Edge:
    """A drawable edge."""

    source: str
    target: str
    label: str = ""
    style: Style = "solid"


@dataclass
class Graph:
    """Nodes, edges and named clusters (parallel groups, child flows)."""

    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


# words Mermaid or Graphviz read as syntax, and the ids of the start and end nodes
_RESERVED = frozenset(
    {"begin", "finish", "end", "graph", "subgraph", "digraph", "strict", "node", "edge"}
    | {"flowchart", "direction", "style", "class", "classdef", "click", "linkstyle", "default"}
    | {"call", "href", "interpolate", "_self", "_blank", "_parent", "_top"}
)


class _Ids:
    """Hands out node and cluster ids that both renderers accept unquoted: ASCII letters,
    digits and underscores, not starting with a digit, not a keyword of either language, and
    distinct even when two names differ only in characters that were replaced."""

    def __init__(self) -> None:
        self.taken: set[str] = {"begin", "finish"}

    def __call__(self, text: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", text) or "n"
        if base[0].isdigit():
            base = "n_" + base
        if base.lower() in _RESERVED:
            base += "_"
        ident, n = base, 1
        while ident.lower() in self.taken:
            n += 1
            ident = f"{base}_{n}"
        self.taken.add(ident.lower())
        return ident


def plan_of(target: Any) -> CascadePlan | FlowPlan:
    """The plan behind a flow, an engine, a config or a plan."""
    if isinstance(target, (CascadePlan, FlowPlan)):
        return target
    plan = getattr(target, "plan", None)
    if isinstance(plan, (CascadePlan, FlowPlan)):
        return plan
    from cascadence.cascade.config import CascadeConfig

    if isinstance(target, CascadeConfig):
        from cascadence.cascade.optimizer import ExecutionOptimizer

        return ExecutionOptimizer().plan(target)
    raise TypeError(
        "can draw a Cadence, a CascadeEngine, a CascadeConfig or a plan, "
        f"not {type(target).__name__}"
    )


def _cascade(plan: CascadePlan) -> Graph:
    g = Graph(plan.name)
    g.nodes.append(Node("begin", "start", "circle"))
    g.nodes.append(Node("finish", "end", "circle"))
    new_id = _Ids()
    ids = {st.name: new_id(st.name) for st in plan.stages}
    groups: dict[str, str] = {}
    for st in plan.stages:
        label = f"{st.name}\\ncost {st.cost:g}"
        g.nodes.append(Node(ids[st.name], label, "box", "solid" if st.enabled else "dashed"))
        if st.group is not None:
            if st.group not in groups:
                groups[st.group] = new_id(st.group)
                g.clusters[groups[st.group]] = (f"parallel: {st.group}", [])
            g.clusters[groups[st.group]][1].append(ids[st.name])

    def ident(name: str) -> str:  # a rule may name a stage the plan does not hold
        return ids.get(name) or ids.setdefault(name, new_id(name))

    if plan.stages:
        g.edges.append(Edge("begin", ident(plan.stages[0].name)))
    for prev, nxt in zip(plan.stages, plan.stages[1:]):
        g.edges.append(Edge(ident(prev.name), ident(nxt.name), "next", "dotted"))
    if plan.stages:
        g.edges.append(Edge(ident(plan.stages[-1].name), "finish", "", "dotted"))
    for st in plan.stages:
        for rule in st.pre_rules + st.post_rules:
            label = f"{rule.name}: {rule.describe()}"
            src = ident(st.name)
            if rule.action == "terminate":
                g.edges.append(Edge(src, "finish", label))
            elif rule.action == "skip_to" and rule.target:
                g.edges.append(Edge(src, ident(rule.target), label))
            elif rule.action == "enable_stages":
                for target in rule.stages:
                    g.edges.append(Edge(src, ident(target), f"{rule.name}: enable"))
            elif rule.action == "disable_stages":
                for target in rule.stages:
                    g.edges.append(Edge(src, ident(target), f"{rule.name}: disable", "dashed"))
    for rule in plan.termination:
        g.edges.append(Edge("begin", "finish", f"{rule.name}: terminate", "dashed"))
    return g


class _FlowBuilder:
    def __init__(self, plan: FlowPlan) -> None:
        self.g = Graph(plan.name)
        self.ids = _Ids()
        # labels of a branch's empty sides, for the edges that leave its decision next
        self.pending: dict[str, list[str]] = {}

    def fresh(self, base: str) -> str:
        """The node's name as its id (`validate --> charge`), numbered from its second use."""
        return self.ids(base)

    def nodes(
        self, nodes: tuple[FlowNode, ...], entry: list[str], cluster: str | None
    ) -> list[str]:
        tails = entry
        for node in nodes:
            tails = self.node(node, tails, cluster)
        return tails

    def link(self, tails: list[str], target: str, label: str = "") -> None:
        for tail in tails:
            waiting = self.pending.get(tail)
            shown = waiting.pop(0) if waiting and not label else label
            self.g.edges.append(Edge(tail, target, shown))

    def add(self, node: Node, cluster: str | None) -> None:
        self.g.nodes.append(node)
        if cluster is not None:
            self.g.clusters[cluster][1].append(node.id)

    def node(self, node: FlowNode, tails: list[str], cluster: str | None) -> list[str]:
        if isinstance(node, StepNode):
            nid = self.fresh(node.name)
            self.add(Node(nid, node.name, "round" if node.is_cascade else "box"), cluster)
            self.link(tails, nid)
            return [nid]
        if isinstance(node, ParallelNode):
            fork, join = self.fresh(node.name + "_fork"), self.fresh(node.name + "_join")
            self.add(Node(fork, f"sync {node.name}", "fork"), cluster)
            self.add(Node(join, f"merge ({node.merge_label})", "fork"), cluster)
            self.link(tails, fork)
            for task in node.tasks:
                tid = self.fresh(task.name)
                self.add(Node(tid, task.name), cluster)
                self.g.edges.append(Edge(fork, tid))
                self.g.edges.append(Edge(tid, join))
            return [join]
        if isinstance(node, BranchNode):
            if node.label == "sequence":  # its notes, boxed under the sequence's name
                sid = self.fresh(node.name + "_cluster")
                self.g.clusters[sid] = (f"sequence: {node.name}", [])
                return self.nodes(node.if_true, tails, sid)
            did = self.fresh(node.name)
            shown = f"{node.name}?"
            if node.label and node.label not in (node.name, "condition", "<lambda>"):
                shown += f"\\n{node.label}"  # the condition: its text, or its function's name
            self.add(Node(did, shown, "diamond"), cluster)
            self.link(tails, did)
            out: list[str] = []
            passing: list[str] = []
            for label, branch in (("true", node.if_true), ("false", node.if_false)):
                if not branch:  # the edge to whatever comes next carries the label
                    out.append(did)
                    passing.append(label)
                    continue
                first = len(self.g.edges)
                out.extend(self.nodes(branch, [did], cluster))
                for i in range(first, len(self.g.edges)):
                    e = self.g.edges[i]
                    if e.source == did and not e.label:
                        self.g.edges[i] = Edge(e.source, e.target, label, e.style)
                        break
            if passing:
                self.pending[did] = passing
            return out
        assert isinstance(node, ChildNode)
        cid = self.fresh(node.name + "_cluster")
        self.g.clusters[cid] = (f"child: {node.name} ({node.plan.name})", [])
        return self.nodes(node.plan.nodes, tails, cid)


def graph_of(target: Any) -> Graph:
    """Build the drawable graph of a flow, an engine, a config or a plan."""
    plan = plan_of(target)
    if isinstance(plan, CascadePlan):
        return _cascade(plan)
    builder = _FlowBuilder(plan)
    builder.g.nodes.append(Node("begin", "start", "circle"))
    tails = builder.nodes(plan.nodes, ["begin"], None)
    builder.g.nodes.append(Node("finish", "end", "circle"))
    builder.link(tails, "finish")
    return builder.g
