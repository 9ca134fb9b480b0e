"""The YAML 1.2 core schema on PyYAML: reading with the place of every node, and writing.

`CoreLoader` reads plain scalars as JSON reads them: only `true`/`false` are booleans (`NO`,
`on`, `yes` stay text, and their places are kept so the loader can warn about them), `010` is
ten, `1e3` a number; a plain mapping key is the text it is written as (a stage `123:` is named
"123"). Aliases may repeat at most `ALIAS_LIMIT` values in all, so a few hundred bytes of nested
aliases ("billion laughs") cannot take minutes and gigabytes to load.

`check_duplicates` and `collect_marks` walk a composed document for keys written twice and for
the line and column of every key and item. `dump_yaml` writes data that `CoreLoader` reads back
as equal, quoting every string YAML 1.1 or 1.2 would read as something else.

Loaders and dumpers here are classes of their own: PyYAML's shared `SafeLoader` and
`SafeDumper` are never changed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from cascadence.cascade.validate import Loc, Marks, Problem

__all__ = [
    "ALIAS_LIMIT",
    "AliasLimitError",
    "CoreLoader",
    "MarkedLoader",
    "check_duplicates",
    "collect_marks",
    "dump_yaml",
    "keep_version_text",
]


class MarkedLoader(yaml.SafeLoader):
    """A SafeLoader of its own, so the shared SafeLoader class is never changed."""


ALIAS_LIMIT = 100_000
"""Values that the aliases of one YAML document may repeat in all (each alias counts every
value under the node it refers to, aliases inside included)."""

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"

_CORE_SCHEMA: list[tuple[str, re.Pattern[str], str]] = [
    # (tag, pattern, first characters; "" for the empty value): the YAML 1.2 core schema,
    # with the merge key `<<` of YAML 1.1 kept for `<<: *defaults`
    (_NULL, re.compile(r"(?:~|null|Null|NULL|)\Z"), "~nN"),
    (_BOOL, re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z"), "tTfF"),
    (_INT, re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z"), "-+0123456789"),
    (
        _FLOAT,
        re.compile(
            r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
        ),
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:merge", re.compile(r"<<\Z"), "<"),
]

_YAML11_BOOLS = re.compile(r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)\Z")
"""Plain values YAML 1.1 (and PyYAML's SafeLoader) reads as booleans, text in YAML 1.2."""


class AliasLimitError(Exception):
    """The aliases of a document repeat more than `ALIAS_LIMIT` values."""

    def __init__(self, loc: Loc, anchor: str, size: int, total: int, mark: Any) -> None:
        super().__init__(anchor)
        self.loc = loc
        self.anchor = anchor
        self.size = size
        self.total = total
        self.mark = mark


class CoreLoader(MarkedLoader):
    """Reads plain scalars by the YAML 1.2 core schema, takes a plain mapping key as the text it
    is written as, and counts what aliases repeat while composing (see `ALIAS_LIMIT`)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class table

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.sizes: dict[int, int] = {}
        """Values under each composed collection, through aliases, by the node's id."""
        self.repeated = 0
        """Values the aliases composed so far repeat."""
        self.path: list[str | int] = []
        """Where the node being composed is."""
        self.words: list[tuple[Loc, str]] = []
        """Locations of plain values that YAML 1.1 reads as booleans."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        key = isinstance(parent, yaml.MappingNode) and index is None
        part: str | int | None = None
        if isinstance(index, int):
            part = index
        elif isinstance(index, yaml.Node):  # a mapping's value: located by its key
            part = index.value if isinstance(index, yaml.ScalarNode) else "?"
        if part is not None:
            self.path.append(part)
        try:
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            if isinstance(event, yaml.AliasEvent):
                self._count_alias(event, node)
            elif isinstance(node, yaml.ScalarNode):
                node = self._plain_scalar(event, node, key)
            elif isinstance(node, yaml.SequenceNode):
                self.sizes[id(node)] = 1 + sum(self.sizes.get(id(n), 1) for n in node.value)
            elif isinstance(node, yaml.MappingNode):
                self.sizes[id(node)] = 1 + sum(
                    self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value
                )
        finally:
            if part is not None:
                self.path.pop()
        return node

    def _count_alias(self, event: yaml.AliasEvent, node: yaml.Node | None) -> None:
        # A node still being composed (an alias inside its own anchor) counts as one: the
        # cycle is reported where the data is validated.
        size = self.sizes.get(id(node), 1)
        self.repeated += size
        if self.repeated > ALIAS_LIMIT:
            raise AliasLimitError(
                tuple(self.path), str(event.anchor), size, self.repeated, event.start_mark
            )

    def _plain_scalar(self, event: Any, node: yaml.ScalarNode, key: bool) -> yaml.ScalarNode:
        if not isinstance(event, yaml.ScalarEvent) or event.tag is not None or event.style:
            return node  # quoted, or tagged by hand
        if key and node.tag in (_INT, _FLOAT, _BOOL, _NULL):
            # a key is a name: `123:` names "123", `NO:` (already text) "NO"
            return yaml.ScalarNode(_STR, node.value, node.start_mark, node.end_mark)
        if not key and node.tag == _STR and _YAML11_BOOLS.match(node.value):
            self.words.append((tuple(self.path), node.value))
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, AttributeError, OverflowError):
            # a value its tag cannot read (`!!float abc`, an int of 5,000 digits)
            self.recursive_objects.pop(node, None)
            text = str(node.value)
            shown = text if len(text) <= 40 else text[:37] + "..."
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown!r} as {kind}", node.start_mark
            ) from None
        except yaml.YAMLError:
            # no longer being constructed: a key read again reports this error, not recursion
            self.recursive_objects.pop(node, None)
            raise


for _tag, _pattern, _first in _CORE_SCHEMA:
    CoreLoader.add_implicit_resolver(_tag, _pattern, [*_first, ""] if _tag == _NULL else _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # `010` is ten, not eight


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    lower = text.lower()
    if lower in (".inf", "+.inf", "-.inf"):
        return -math.inf if lower.startswith("-") else math.inf
    if lower == ".nan":
        return math.nan
    return float(text)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    return {"true": True, "false": False}[text.lower()]


CoreLoader.add_constructor(_INT, _construct_int)
CoreLoader.add_constructor(_FLOAT, _construct_float)
CoreLoader.add_constructor(_BOOL, _construct_bool)


# -- marks and duplicates of a composed document -----------------------------------------------


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        try:
            key = loader.construct_object(node)
            hash(key)
            return key
        except (yaml.YAMLError, TypeError):
            return node.value
    return None


def _is_merge(node: yaml.Node) -> bool:
    return node.tag == "tag:yaml.org,2002:merge"


def check_duplicates(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    loc: Loc,
    problems: list[Problem],
    active: set[int] | None = None,
) -> None:
    """Append a problem to `problems` for each key written again in its mapping, at its line
    (a merge key `<<` may repeat)."""
    active = set() if active is None else active
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                continue
            key = _key(loader, key_node)
            if key in seen:
                problems.append(
                    Problem(
                        (*loc, key),
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        "each key once in a mapping",
                        line=key_node.start_mark.line + 1,
                        column=None,
                    )
                )
            elif key is not None:
                seen[key] = key_node.start_mark.line + 1
            check_duplicates(loader, value_node, (*loc, key), problems, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            check_duplicates(loader, item, (*loc, index), problems, active)
    active.discard(id(node))


def collect_marks(
    loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, marks: Marks, active: set[int]
) -> None:
    """Record in `marks` the (line, column) of `node` and of every key and item under it."""
    if id(node) in active:  # a recursive alias
        return
    marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key(loader, key_node)
            if key is None:
                continue
            # A key's own line, not its value's: a block value starts on the next line.
            child: Loc = (*loc, key)
            marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            collect_marks(loader, value_node, child, marks, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            collect_marks(loader, item, (*loc, index), marks, active)
    active.discard(id(node))


def keep_version_text(node: yaml.Node, data: Any) -> None:
    """`version: 1.10` means the string "1.10", not the float 1.1."""
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        return
    for key_node, value_node in node.value:
        if (
            isinstance(key_node, yaml.ScalarNode)
            and key_node.value == "version"
            and isinstance(value_node, yaml.ScalarNode)
            and value_node.style is None
            and isinstance(data.get("version"), (int, float))
            and not isinstance(data.get("version"), bool)
        ):
            data["version"] = value_node.value


# -- writing -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """A SafeDumper of its own that double-quotes strings YAML would otherwise fold, and quotes
    every string that YAML 1.1 or 1.2 would read as something else (`yes`, `010`, `1e3`)."""


for _tag, _pattern, _first in _CORE_SCHEMA:
    _Dumper.add_implicit_resolver(_tag, _pattern, [*_first, ""] if _tag == _NULL else _first)
_Dumper.add_implicit_resolver(_BOOL, _YAML11_BOOLS, "yYnNoO")  # `y` and `n` too


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Line separators such as U+0085 and unprintable characters read back differently unless
    # escaped, and only double quotes escape.
    style = '"' if not value.isprintable() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML text that `CoreLoader` reads back as equal data, in the given key order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
