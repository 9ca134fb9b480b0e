"""Render a condition tree back to either form.

`parse_condition(to_dict(node)) == node` and `parse_condition(to_expression(node)) == node` for
every tree `parse_condition` produces. A truthiness test (`Truthy`) renders as its bare path in an
expression and as `{"field": ..., "operator": "TRUTHY"}` in the structured form; the shorthands
of `ALL`/`ANY`/`NONE` with `conditions` render as what they mean (a per-item `AND` under
`condition`, or `AND`/`OR`/`NOT`).
"""

from __future__ import annotations

from typing import Any

from cascadence.conditions.expression import KEYWORDS, PLAIN_PATH
from cascadence.conditions.tree import (
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Scalar,
    Statistic,
    Truthy,
)

__all__ = ["render_literal", "render_path", "to_dict", "to_expression"]


def _dict_field(field: str) -> str:
    return field or "."


def to_dict(node: Node) -> dict[str, Any]:
    """Render `node` as the structured form (what a YAML or JSON file would hold).

    Lists of literals become lists, the list item itself becomes `"."`, and `compare` is left
    out when it is the default `==`.
    """
    if isinstance(node, Logical):
        return {"operator": node.op, "conditions": [to_dict(c) for c in node.conditions]}
    if isinstance(node, Compare):
        return {"field": _dict_field(node.field), "operator": node.op, "value": node.value}
    if isinstance(node, Membership):
        value = list(node.value) if isinstance(node.value, tuple) else node.value
        return {"field": _dict_field(node.field), "operator": node.op, "value": value}
    if isinstance(node, Pattern):
        return {"field": _dict_field(node.field), "operator": "MATCHES", "value": node.pattern}
    if isinstance(node, Exists):
        return {"field": _dict_field(node.field), "operator": node.op}
    if isinstance(node, Truthy):
        return {"field": _dict_field(node.field), "operator": "TRUTHY"}
    if isinstance(node, Aggregate):
        out: dict[str, Any] = {"field": _dict_field(node.field), "operator": node.op}
        if node.condition is not None:
            out["condition"] = to_dict(node.condition)
            return out
        if node.compare != "==":
            out["compare"] = node.compare
        out["value"] = node.value
        return out
    if isinstance(node, Statistic):
        out = {"field": _dict_field(node.field), "operator": node.op}
        if node.compare != "==":
            out["compare"] = node.compare
        out["value"] = node.value
        return out
    raise TypeError(f"not a condition node: {node!r}")


def render_path(field: str) -> str:
    """Render a field path for an expression, quoting it with backticks when needed."""
    if not field:
        return "."
    if PLAIN_PATH.fullmatch(field) and field.lower() not in KEYWORDS:
        return field
    return f"`{field}`"


def _render_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif not char.isprintable() or "\ud800" <= char <= "\udfff":
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_literal(value: Scalar) -> str:
    """Render a literal the way the expression tokenizer reads it back."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _render_string(value)
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def _grouped(node: Node) -> str:
    text = to_expression(node)
    if isinstance(node, Logical) and node.op != "NOT":
        return f"({text})"
    return text


def to_expression(node: Node) -> str:
    """Render `node` as an expression string that parses back to an equal tree."""
    if isinstance(node, Logical):
        if node.op == "NOT":
            return "not " + _grouped(node.conditions[0])
        joiner = " and " if node.op == "AND" else " or "
        return joiner.join(_grouped(c) for c in node.conditions)
    if isinstance(node, Compare):
        return f"{render_path(node.field)} {node.op} {render_literal(node.value)}"
    if isinstance(node, Membership):
        path = render_path(node.field)
        if node.op == "CONTAINS":
            if isinstance(node.value, tuple):
                raise TypeError("CONTAINS looks for one value, not a tuple")
            return f"{path} contains {render_literal(node.value)}"
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        items = ", ".join(render_literal(v) for v in values)
        keyword = "in" if node.op == "IN" else "not in"
        return f"{path} {keyword} [{items}]"
    if isinstance(node, Pattern):
        return f"{render_path(node.field)} matches {_render_string(node.pattern)}"
    if isinstance(node, Exists):
        return f"{node.op.lower()}({render_path(node.field)})"
    if isinstance(node, Truthy):
        return render_path(node.field)
    if isinstance(node, Aggregate):
        path = render_path(node.field)
        if node.condition is not None:
            return f"{node.op.lower()}({path}, {to_expression(node.condition)})"
        return f"{node.op.lower()}({path} {node.compare} {render_literal(node.value)})"
    if isinstance(node, Statistic):
        return (
            f"{node.op.lower()}({render_path(node.field)}) {node.compare} "
            f"{render_literal(node.value)}"
        )
    raise TypeError(f"not a condition node: {node!r}")
