"""Config data, YAML text and model locations of any depth, walked without recursion.

A condition can be nested deeper than Python's recursion limit (by mistake, by a generator
gone wrong, or through a YAML alias that contains itself). The loader must still report that
as a `ConfigError` naming where, so the walks it makes over raw input live here and use an
explicit stack or loop: copying the data for the cross-reference checks, finding where a YAML
or JSON text nests too deeply for the YAML composer (which recurses), and placing the problem
where a condition passes `MAX_DEPTH` levels, as the condition parser would.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from cascadence.cascade.config import Condition
from cascadence.cascade.validate import Loc, Problem
from cascadence.conditions.structured import MAX_DEPTH, TOO_DEEP, TOO_DEEP_EXPECTED

__all__ = ["DEEPEST", "deep_point", "inner_type", "plain_data", "too_deep"]

DEEPEST = 2 * MAX_DEPTH + 8
"""Collections a valid document nests at most: six down to a rule's condition, then two
(`conditions` and its item) per nested condition."""

# -- data --------------------------------------------------------------------------------------

_LEAVES = (str, int, float, type(None))


def _parts(value: Any) -> tuple[Any, Iterator[tuple[Any, Any]] | None]:
    """An empty copy of a container and its `(key, item)` pairs; a leaf and None otherwise."""
    if isinstance(value, dict):
        return {}, iter(value.items())
    if isinstance(value, (list, tuple)):
        return [], iter(enumerate(value))
    if isinstance(value, BaseModel):
        names = [n for n in type(value).model_fields if n in value.model_fields_set]
        return {}, iter([(n, getattr(value, n)) for n in names])
    if isinstance(value, Mapping):
        return {}, iter(value.items())
    return value, None


def plain_data(value: Any) -> Any:
    """A copy of `value` with models replaced by their set fields, so checks see what a file
    would hold.

    Mappings become dicts and tuples lists. A container met twice (shared, or containing
    itself) is copied once, so the copy is shared or cyclic in the same way.
    """
    root, items = _parts(value)
    if items is None:
        return root
    copies: dict[int, Any] = {id(value): root}
    stack: list[tuple[Any, Iterator[tuple[Any, Any]]]] = [(root, items)]
    while stack:
        target, pending = stack[-1]
        mapping = type(target) is dict
        for key, item in pending:
            children: Iterator[tuple[Any, Any]] | None = None
            if isinstance(item, _LEAVES):
                copy = item
            else:
                copy = copies.get(id(item))
                if copy is None:
                    copy, children = _parts(item)
            if mapping:
                target[key] = copy
            else:
                target.append(copy)
            if children is not None:
                copies[id(item)] = copy
                stack.append((copy, children))
                break
        else:
            stack.pop()
    return root


# -- text --------------------------------------------------------------------------------------


class _Open:
    """A collection the event scan is inside of."""

    __slots__ = ("expect_key", "index", "key", "mapping", "mark", "part")

    def __init__(self, mapping: bool, part: Any, mark: tuple[int, int] | None) -> None:
        self.mapping = mapping
        self.part = part
        self.mark = mark
        self.expect_key = True
        self.key: Any = None
        self.index = 0


def deep_point(
    text: str, loader: type[yaml.SafeLoader], limit: int
) -> list[tuple[Any, tuple[int, int] | None]] | None:
    """Where a YAML (or JSON) text first nests more than `limit` collections deep.

    Reads the event stream, which the YAML parser produces without recursion.

    Returns:
        For each collection from the outermost down to the first one too deep, its key or
        index in its parent (None for the document's root) and its 1-based (line, column), of
        its key for a mapping's value; or None when no collection is that deep or the text is
        not valid YAML.
    """
    stack: list[_Open] = []
    key_mark: tuple[int, int] | None = None
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
            elif isinstance(event, yaml.NodeEvent):
                start = event.start_mark
                mark = (start.line + 1, start.column + 1) if start is not None else None
                parent = stack[-1] if stack else None
                part: Any = None
                if parent is not None and not parent.mapping:
                    part = parent.index
                elif parent is not None and not parent.expect_key:
                    part, mark = parent.key, key_mark  # a value is located at its key's line
                elif parent is not None:
                    parent.key = event.value if isinstance(event, yaml.ScalarEvent) else None
                    key_mark = mark
                if isinstance(event, yaml.CollectionStartEvent):
                    stack.append(_Open(isinstance(event, yaml.MappingStartEvent), part, mark))
                    if len(stack) > limit:
                        return [(item.part, item.mark) for item in stack]
                    continue
            else:
                continue
            # a node is complete: its parent moves on to the next key, value or item
            if stack:
                top = stack[-1]
                if top.mapping:
                    top.expect_key = not top.expect_key
                else:
                    top.index += 1
    except yaml.YAMLError:
        return None
    return None


# -- locations in the models -------------------------------------------------------------------


def inner_type(tp: Any) -> Any:
    """The model, list or dict type inside Annotated and Optional wrappers, else None."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(tp):
            inner = inner_type(arg)
            if inner is not None:
                return inner
        return None
    if origin in (list, dict):
        return tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return None


def _condition_levels(root: type[BaseModel], loc: Loc) -> list[int]:
    """Where each step from a condition into a nested one ends in `loc` (just after
    `conditions[i]` or `condition`), found by following the model types from `root`."""
    ends: list[int] = []
    tp: Any = root
    for index, part in enumerate(loc):
        tp = inner_type(tp)
        if tp is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                break
            if tp is Condition and part in ("conditions", "condition"):
                ends.append(index + (2 if part == "conditions" else 1))
            tp = info.annotation
        else:
            tp = typing.get_args(tp)[-1]
    return ends


def too_deep(loc: Loc, root: type[BaseModel], *, cycle: bool = False) -> Problem:
    """The problem for data nested too deeply to validate (or containing itself) at `loc`.

    Inside a condition it is placed where the condition passes `MAX_DEPTH` levels, with the
    condition parser's own message, so every depth reads the same.
    """
    ends = _condition_levels(root, loc)
    if len(ends) > MAX_DEPTH:
        return Problem(loc[: ends[MAX_DEPTH]], TOO_DEEP, TOO_DEEP_EXPECTED)
    if cycle:
        return Problem(
            loc,
            "this value contains itself (a reference cycle)",
            "nested data without cycles; a YAML alias must not refer to a node around it",
        )
    return Problem(loc, "nested too deeply to read", f"at most {DEEPEST} nested levels")
