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


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text)


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
    for st in plan.stages:
        label = f"{st.name}\\ncost {st.cost:g}"
        g.nodes.append(Node(_ident(st.name), label, "box", "solid" if st.enabled else "dashed"))
        if st.group is not None:
            g.clusters.setdefault(_ident(st.group), (f"parallel: {st.group}", []))[1].append(
                _ident(st.name)
            )
    if plan.stages:
        g.edges.append(Edge("begin", _ident(plan.stages[0].name)))
    for prev, nxt in zip(plan.stages, plan.stages[1:]):
        g.edges.append(Edge(_ident(prev.name), _ident(nxt.name), "next", "dotted"))
    if plan.stages:
        g.edges.append(Edge(_ident(plan.stages[-1].name), "finish", "", "dotted"))
    for st in plan.stages:
        for rule in st.pre_rules + st.post_rules:
            label = f"{rule.name}: {rule.describe()}"
            src = _ident(st.name)
            if rule.action == "terminate":
                g.edges.append(Edge(src, "finish", label))
            elif rule.action == "skip_to" and rule.target:
                g.edges.append(Edge(src, _ident(rule.target), label))
            elif rule.action == "enable_stages":
                for target in rule.stages:
                    g.edges.append(Edge(src, _ident(target), f"{rule.name}: enable"))
            elif rule.action == "disable_stages":
                for target in rule.stages:
                    g.edges.append(Edge(src, _ident(target), f"{rule.name}: disable", "dashed"))
    for rule in plan.termination:
        g.edges.append(Edge("begin", "finish", f"{rule.name}: terminate", "dashed"))
    return g


class _FlowBuilder:
    def __init__(self, plan: FlowPlan) -> None:
        self.g = Graph(plan.name)
        self.counter = 0

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{_ident(base)}_{self.counter}"

    def nodes(
        self, nodes: tuple[FlowNode, ...], entry: list[str], cluster: str | None
    ) -> list[str]:
        tails = entry
        for node in nodes:
            tails = self.node(node, tails, cluster)
        return tails

    def link(self, tails: list[str], target: str, label: str = "") -> None:
        for tail in tails:
            self.g.edges.append(Edge(tail, target, label))

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
            self.add(Node(did, f"{node.name}?", "diamond"), cluster)
            self.link(tails, did)
            out: list[str] = []
            for label, branch in (("true", node.if_true), ("false", node.if_false)):
                if not branch:
                    out.append(did)
                    continue
                first = len(self.g.edges)
                out.extend(self.nodes(branch, [did], cluster))
                for i in range(first, len(self.g.edges)):
                    e = self.g.edges[i]
                    if e.source == did and not e.label:
                        self.g.edges[i] = Edge(e.source, e.target, label, e.style)
                        break
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
