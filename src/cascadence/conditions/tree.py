"""The frozen condition tree that both the structured form and the expression form parse into.

Every node is an immutable, slotted dataclass, so trees can be hashed, compared and shared between
threads. Trees built by `parse_condition` are canonical: operator names are upper case (`AND`,
`IN`), lists of literals are tuples, the list item itself is the empty path `""`, and an `AND` or
`OR` with a single child is replaced by that child. Two conditions that mean the same thing written
in either form therefore parse to equal trees.

```
Node
├── Compare      field  ==  !=  >  >=  <  <=  value
├── Membership   field  IN | NOT_IN  (v1, v2, ...)   /   field  CONTAINS  value
├── Pattern      field  MATCHES  "regex"
├── Exists       EXISTS field  /  IS_NULL field
├── Truthy       field  (present, not null and truthy: a bare path in an expression)
├── Aggregate    ALL | ANY | NONE  over a list: items `compare` value, or a per-item condition
├── Statistic    SUM | AVG | MIN | MAX | COUNT of a list, `compare` value
└── Logical      AND | OR (two or more children)  /  NOT (exactly one child)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

__all__ = [
    "Aggregate",
    "Compare",
    "LEAF_TYPES",
    "Leaf",
    "Exists",
    "Logical",
    "Membership",
    "Node",
    "Pattern",
    "Scalar",
    "Statistic",
    "Truthy",
    "Value",
]

Scalar: TypeAlias = "str | int | float | bool | None"
"""A literal a condition compares against."""

Value: TypeAlias = "Scalar | tuple[Scalar, ...]"
"""A scalar, or the tuple of scalars that `IN` and `NOT_IN` test against."""


class Node:
    """Base of every condition tree node. Nodes are frozen; build them with `parse_condition`."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """`field op value` with `op` one of `==`, `!=`, `>`, `>=`, `<`, `<=`.

    Attributes:
        field: Dot path of the value read from the input (`user.age`, `stages.FAST.confidence`).
        op: The comparison operator.
        value: The literal compared against. Ordering operators take a number or a string.
    """

    field: str
    op: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class Membership(Node):
    """`field IN values`, `field NOT_IN values` or `field CONTAINS value`.

    Attributes:
        field: Dot path of the value read from the input.
        op: `IN`, `NOT_IN` or `CONTAINS`.
        value: A tuple of scalars for `IN` and `NOT_IN`; the scalar looked for for `CONTAINS`.
    """

    field: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Pattern(Node):
    """`field MATCHES pattern`: `re.search` semantics; the pattern is checked when parsed.

    Attributes:
        field: Dot path of the string read from the input.
        pattern: The regular expression.
    """

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """`EXISTS field` (present and not null) or `IS_NULL field` (missing or null).

    Attributes:
        field: Dot path of the value read from the input.
        op: `EXISTS` or `IS_NULL`.
    """

    field: str
    op: str


@dataclass(frozen=True, slots=True)
class Truthy(Node):
    """`field` alone: the value is present, not null and truthy as Python sees it.

    `False`, `0`, `0.0`, `""` and empty lists and mappings are false; so are a missing field and
    null. Written as a bare path in an expression (`is_premium and amount > 100`) or as
    `{"field": ..., "operator": "TRUTHY"}`.

    Attributes:
        field: Dot path of the value read from the input (`""` is the list item itself).
        op: Always `TRUTHY` (a class attribute, so the node reads like the other leaves).
    """

    field: str
    op: ClassVar[str] = "TRUTHY"


@dataclass(frozen=True, slots=True)
class Aggregate(Node):
    """`ALL`, `ANY` or `NONE` of the items of a list field satisfy a test.

    The test is either `item compare value` (when `condition` is None) or a condition whose
    paths are relative to the item (`""` is the item itself).

    Attributes:
        field: Dot path of the list read from the input.
        op: `ALL`, `ANY` or `NONE`.
        compare: The comparison applied to each item, `==` by default.
        value: The literal each item is compared with (None when `condition` is used).
        condition: A per-item condition, or None.
    """

    field: str
    op: str
    compare: str = "=="
    value: Scalar = None
    condition: Node | None = None


@dataclass(frozen=True, slots=True)
class Statistic(Node):
    """`SUM`, `AVG`, `MIN`, `MAX` or `COUNT` of a list field, compared with a number.

    Attributes:
        field: Dot path of the list read from the input.
        op: `SUM`, `AVG`, `MIN`, `MAX` or `COUNT`.
        compare: How the statistic is compared with `value`, `==` by default.
        value: The number the statistic is compared with.
    """

    field: str
    op: str
    compare: str = "=="
    value: int | float = 0


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """`AND` / `OR` of two or more conditions, or `NOT` of exactly one.

    Attributes:
        op: `AND`, `OR` or `NOT`.
        conditions: The children, in order (evaluation short-circuits left to right).
    """

    op: str
    conditions: tuple[Node, ...]


Leaf: TypeAlias = "Compare | Membership | Pattern | Exists | Truthy | Aggregate | Statistic"
"""Every node that reads a field (all but `Logical`)."""

LEAF_TYPES = (Compare, Membership, Pattern, Exists, Truthy, Aggregate, Statistic)
"""The leaf node classes, for `isinstance`."""
