"""Field paths: `"user.profile.name"`, `"items.0.price"`, `"stages.FAST.confidence"`.

A path is split and checked once, when the condition is parsed, and turned into a getter closure
when it is compiled. A getter never raises for an absent key, a short list or an attribute that is
not there: it returns `MISSING`. One segment is resolved like this:

- a mapping: key lookup (`dict.get`, so a `defaultdict` is never written to);
- a list or tuple, when the segment is an integer (negative counts from the end): indexing;
- any other object except strings, numbers and sets: `getattr`, unless the segment starts with
  `_` (private and dunder attributes are never read).

Paths starting with `stages.` read the stage-results mapping given at evaluation instead of the
input document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

__all__ = [
    "PLAIN_DICTS",
    "Access",
    "Getter",
    "MISSING",
    "STAGES",
    "make_access",
    "make_getter",
    "resolve",
    "split_path",
    "stage_name",
]

STAGES: Final = "stages"
"""First segment of a path that reads a stage result."""

Getter = Callable[[Any, Any], Any]
"""`getter(data, stages) -> value or MISSING`."""

_INDEX = re.compile(r"-?[0-9]+")
_OPAQUE_TYPES = (str, bytes, bytearray, int, float, complex, bool, set, frozenset, type(None))


class _Missing:
    """Type of the `MISSING` sentinel: falsy, equal only to itself, never orderable."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Sentinel for a field that is absent from the input (distinct from a present `None`)."""

PLAIN_DICTS: Final[set[type]] = {dict}
"""Dict classes whose items `dict.get` reads as their own `get` would: `dict` and subclasses
that do not override item access (the runtime adds its `StageResult`). Compiled conditions
read them by calling `dict.get` directly, which is faster than the method on a subclass
(one with `__getattr__` loses CPython's fast attribute path); any other dict subclass is read
through its own methods."""


def register_plain_dict(cls: type) -> None:
    """Declare `cls` a dict subclass that `dict.get` reads correctly (see `PLAIN_DICTS`)."""
    if not issubclass(cls, dict):
        raise TypeError(f"{cls.__name__} is not a dict subclass")
    PLAIN_DICTS.add(cls)


def split_path(path: str, *, allow_item: bool = False) -> tuple[str, ...]:
    """Split a dot path into its segments, checking it.

    Args:
        path: The path as written.
        allow_item: Whether `""` / `"."` (the list item itself) is allowed, which is the case
            only inside a per-item condition of `ALL`, `ANY` or `NONE`.

    Returns:
        The segments; `()` for the item itself.

    Raises:
        ValueError: With a message saying what is wrong with the path.
    """
    if path in ("", "."):
        if allow_item:
            return ()
        raise ValueError(
            "a field path is required ('.' for the item itself works only inside ALL/ANY/NONE)"
        )
    if "`" in path:
        raise ValueError(f"field path {path!r} contains a backtick, which paths cannot contain")
    segments = tuple(path.split("."))
    if "" in segments:
        raise ValueError(f"field path {path!r} has an empty segment (two dots, or a dot at an end)")
    return segments


def stage_name(segments: tuple[str, ...]) -> str | None:
    """Return the stage a path reads (`stages.NAME...` -> `NAME`), or None."""
    if len(segments) >= 2 and segments[0] == STAGES:
        return segments[1]
    return None


def _index(segment: str) -> int | None:
    return int(segment) if _INDEX.fullmatch(segment) else None


_MAPPING, _SEQUENCE, _OPAQUE, _OBJECT = 0, 1, 2, 3
_kinds: dict[type, int] = {
    dict: _MAPPING,
    list: _SEQUENCE,
    tuple: _SEQUENCE,
    _Missing: _OPAQUE,
    **dict.fromkeys(_OPAQUE_TYPES, _OPAQUE),
}


def _classify(cls: type) -> int:
    """Classify a type once (isinstance against ABCs is slow; classes are few)."""
    if issubclass(cls, Mapping):
        kind = _MAPPING
    elif issubclass(cls, (list, tuple)):
        kind = _SEQUENCE
    elif issubclass(cls, _OPAQUE_TYPES):
        kind = _OPAQUE
    else:
        kind = _OBJECT
    if len(_kinds) < 4096:
        _kinds[cls] = kind
    return kind


def _step(obj: Any, key: str, index: int | None) -> Any:
    """Resolve one segment on any object (the general path; getters inline the dict case)."""
    cls = obj.__class__
    kind = _kinds.get(cls)
    if kind is None:
        kind = _classify(cls)
    if kind == _MAPPING:
        return obj.get(key, MISSING)
    if kind == _OBJECT:
        return MISSING if key.startswith("_") else getattr(obj, key, MISSING)
    if kind == _SEQUENCE and index is not None:
        try:
            return obj[index]
        except IndexError:
            return MISSING
    return MISSING


def resolve(root: Any, segments: tuple[str, ...]) -> Any:
    """Resolve `segments` from `root` without compiling a getter (used by `explain`)."""
    obj = root
    for key in segments:
        obj = _step(obj, key, _index(key))
        if obj is MISSING:
            return MISSING
    return obj


def make_getter(segments: tuple[str, ...]) -> Getter:
    """Compile `segments` into `getter(data, stages) -> value or MISSING`.

    A path whose first segment is `stages` reads from the stage-results mapping (the second
    argument); any other path reads from the input document (the first). Paths of one and two
    segments (after `stages.`) get unrolled getters with the dict lookup and the attribute read
    inline, since nearly every real path is that short.
    """
    on_stages = bool(segments) and segments[0] == STAGES
    if on_stages:
        segments = segments[1:]
    step = _step
    missing = MISSING
    kind_of = _kinds.get
    mapping = _MAPPING
    if not segments:

        def get0(data: Any, stages: Any) -> Any:
            return stages if on_stages else data

        return get0
    # The kind for which a segment is read with getattr: never matches for `_private` names.
    if len(segments) == 1:
        (k1,) = segments
        i1 = _index(k1)
        a1 = -1 if k1.startswith("_") else _OBJECT

        def get1(data: Any, stages: Any) -> Any:
            obj = stages if on_stages else data
            cls = obj.__class__
            if cls is dict:
                return obj.get(k1, missing)
            if kind_of(cls) == a1:
                return getattr(obj, k1, missing)
            return step(obj, k1, i1)

        return get1
    if len(segments) == 2:
        k1, k2 = segments
        i1, i2 = _index(k1), _index(k2)
        a1 = -1 if k1.startswith("_") else _OBJECT
        a2 = -1 if k2.startswith("_") else _OBJECT

        def get2(data: Any, stages: Any) -> Any:
            obj = stages if on_stages else data
            cls = obj.__class__
            if cls is dict:
                obj = obj.get(k1, missing)
            elif kind_of(cls) == a1:
                obj = getattr(obj, k1, missing)
            else:
                obj = step(obj, k1, i1)
            cls = obj.__class__
            if cls is dict:
                return obj.get(k2, missing)
            kind = kind_of(cls)
            if kind == a2:
                return getattr(obj, k2, missing)
            if kind == mapping:  # dict subclasses such as stage results
                return obj.get(k2, missing)
            if obj is missing:
                return missing
            return step(obj, k2, i2)

        return get2
    keys = tuple((k, _index(k)) for k in segments)

    def get_n(data: Any, stages: Any) -> Any:
        obj = stages if on_stages else data
        for key, index in keys:
            obj = obj.get(key, missing) if obj.__class__ is dict else step(obj, key, index)
            if obj is missing:
                return missing
        return obj

    return get_n


class Access(NamedTuple):
    """How a compiled leaf reads its field.

    Leaves inline the common case, a one- or two-segment path into nested dicts, and call
    `get` for everything else (objects, lists, stage results, longer paths), which saves a
    function call per leaf on the hot path.

    Attributes:
        get: The full getter, correct for any input.
        fast: Whether `k1` / `k2` describe a short path a leaf may read inline from dicts
            (of the input, or of the stage results when `staged`).
        k1: The first segment (when `fast`).
        k2: The second segment, or None for a one-segment path (when `fast`).
        staged: Whether `k1` / `k2` describe a `stages.NAME[.FIELD]` path a leaf may read
            inline from the stage-results dict (`k1` is the stage name).
    """

    get: Getter
    fast: bool
    k1: str
    k2: str | None
    staged: bool = False


def make_access(segments: tuple[str, ...]) -> Access:
    """Build the `Access` for a split path."""
    get = make_getter(segments)
    if segments and segments[0] != STAGES and len(segments) <= 2:
        return Access(get, True, segments[0], segments[1] if len(segments) == 2 else None)
    if len(segments) in (2, 3) and segments[0] == STAGES:
        return Access(get, True, segments[1], segments[2] if len(segments) == 3 else None, True)
    return Access(get, False, "", None)
