"""Scores: the state a flow carries from note to note, and its isolation for parallel tasks.

A score is a user dataclass that derives from `Score`:

```python
@dataclass
class OrderScore(Score):
    order_id: str
    items: list = None
    total: float = 0.0
```

Parallel tasks (`.sync(...)`) each receive a `snapshot` of the score. A snapshot is lazy and
copy-on-write, so a group costs nothing for the fields its tasks leave alone:

* It is an instance of a generated subclass of the score's class (one per class, cached), so
  `isinstance(snap, OrderScore)` holds, methods and properties work, `snap.__class__` reports
  `OrderScore` (dataclass `==`, `repr`, `asdict` and `replace` behave as on the original), and
  `copy`, `deepcopy` and `pickle` produce a plain `OrderScore`. Only `type(snap)` differs.
* Its instance `__dict__` starts empty. The first read of a field fetches it from the base
  score: immutable values (None, numbers, strings, bytes, `Decimal`, dates and times, enums,
  tuples and frozensets of immutables, frozen `ImmutableScore` instances) are returned as they
  are; anything else is deep-copied once and kept in the snapshot's own `__dict__`. Writes go
  to the snapshot's own `__dict__` too, so `touched_fields(snap)` is exactly the set of fields
  the task wrote or read a mutable value of.
* `Atomic`, `AtomicList` and `AtomicDict` values are shared by every snapshot and never
  copied, also when nested inside a copied value. So are values that cannot be deep-copied
  (locks, clients, open files): a task that mutates those mutates them for everyone.
* Slotted dataclasses (`slots=True`) get the same treatment. If a class cannot be subclassed
  at all, the snapshot falls back to a shallow copy whose mutable fields are deep-copied.
* A frozen score (an `ImmutableScore` or any `@dataclass(frozen=True)`) is its own snapshot:
  nothing can write to it.

`merge_snapshots` (in `cascadence.flow.merge`) folds the snapshots back into the base.

A field named `snapshot` or `merge` hides the method of the same name; the module functions
`snapshot(score)` and `merge_snapshots(base, snapshots)` always work.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import threading
import types
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

from cascadence.errors import CascadenceError, closest
from cascadence.flow.atomic import _AtomicBase, _sharing_atomics

if TYPE_CHECKING:
    from cascadence.flow.merge import MergeFunction, MergeStrategy, changed_fields, merge_snapshots

__all__ = [
    "ImmutableScore",
    "MergeFunction",
    "MergeStrategy",
    "Score",
    "UnknownFieldError",
    "changed_fields",
    "is_snapshot",
    "materialize",
    "merge_snapshots",
    "score_fields",
    "snapshot",
    "snapshot_base",
    "snapshots",
    "touched_fields",
]

# Served from cascadence.flow.merge on first access: merge imports this module, so importing
# it here eagerly would be circular.
_FROM_MERGE = frozenset({"MergeFunction", "MergeStrategy", "changed_fields", "merge_snapshots"})


def __getattr__(name: str) -> Any:
    if name in _FROM_MERGE:
        from cascadence.flow import merge

        value = getattr(merge, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


S = TypeVar("S")

_BASE_ATTR = "_cascadence_base_"

# Exact types that are never copied. Checked with a set lookup before any isinstance call.
_IMMUTABLE_TYPES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        Decimal,
        Fraction,
        _dt.datetime,
        _dt.date,
        _dt.time,
        _dt.timedelta,
        _dt.timezone,
        uuid.UUID,
        range,
        type(Ellipsis),
    }
)
_IMMUTABLE_BASES: tuple[type, ...] = (
    int,
    float,
    complex,
    str,
    bytes,
    Decimal,
    Fraction,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    _dt.tzinfo,
    uuid.UUID,
    Enum,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
)


class UnknownFieldError(CascadenceError, AttributeError):
    """A field name given to `ImmutableScore.with_field` or `.replace` does not exist.

    Attributes:
        score_type: The score class.
        field_name: The unknown name.
        suggestion: The closest existing field name, if any is close.
    """

    def __init__(self, score_type: type, field_name: str, valid: Sequence[str]) -> None:
        self.score_type = score_type
        self.field_name = field_name
        self.suggestion = closest(field_name, valid)
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        expected = ", ".join(repr(name) for name in valid) or "none"
        super().__init__(
            f"{score_type.__qualname__} has no field {field_name!r}{hint} (fields: {expected})"
        )


class Score:
    """Base class for flow scores; derive a `@dataclass` from it.

    `Score` has no fields of its own. Its `__post_init__` does nothing, so a subclass may call
    `super().__post_init__()` from its own, as the examples do:

    ```python
    @dataclass
    class AggregatorScore(Score):
        results: AtomicList = None

        def __post_init__(self):
            super().__post_init__()
            self.results = AtomicList()
    ```
    """

    __slots__ = ()

    def __post_init__(self, *_initvars: object) -> None:
        """Do nothing; present so that subclasses can always call `super().__post_init__()`."""

    def snapshot(self: S) -> S:
        """Return an isolated, copy-on-write view of this score for one parallel task.

        See `cascadence.flow.score.snapshot`.
        """
        return snapshot(self)

    def merge(
        self: S,
        snapshots: Iterable[S] | S,
        strategy: MergeStrategy | str | MergeFunction = "smart",
    ) -> S:
        """Fold the changes of `snapshots` (in task order; or of one snapshot) into this score
        and return it.

        See `cascadence.flow.merge.merge_snapshots`. A mutable score is updated in place and
        returned; a frozen score is left alone and a new score with the changes is returned.
        """
        from cascadence.flow.merge import merge_snapshots as merge  # merge imports this module

        if isinstance(snapshots, Score) or (
            dataclasses.is_dataclass(snapshots) and not isinstance(snapshots, type)
        ):
            snapshots = [snapshots]
        return merge(self, list(snapshots), strategy)  # type: ignore[arg-type]


class ImmutableScore(Score):
    """Base class for frozen scores used in a functional style.

    ```python
    @dataclass(frozen=True)
    class Config(ImmutableScore):
        api_key: str
        timeout: int = 30

    new_config = config.with_field("timeout", 60)
    ```

    An immutable score is never copied for parallel tasks (its snapshot is itself). Notes
    cannot assign to it; a note that works on an immutable score returns the new score
    (`return score.with_field(...)`), and that returned score becomes the flow's score.
    Derive with `@dataclass(frozen=True)`; a flow refuses a subclass that is not frozen.
    """

    __slots__ = ()

    def with_field(self: S, name: str, value: Any) -> S:
        """Return a copy of this score with field `name` set to `value`.

        Raises:
            UnknownFieldError: `name` is not a field of this score.
        """
        return _replace(self, {name: value})

    def replace(self: S, **changes: Any) -> S:
        """Return a copy of this score with the given fields changed.

        Raises:
            UnknownFieldError: A name is not a field of this score.
        """
        return _replace(self, changes)


def _replace(score: S, changes: dict[str, Any]) -> S:
    cls = type(score)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(
            f"{cls.__qualname__} must be a dataclass to be replaced field by field; "
            "decorate it with @dataclass(frozen=True)"
        )
    names = [f.name for f in dataclasses.fields(cls)]
    for name in changes:
        if name not in names:
            raise UnknownFieldError(cls, name, names)
    return dataclasses.replace(score, **changes)  # type: ignore[type-var]


def _is_frozen(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return bool(params is not None and params.frozen)


def _needs_copy(value: object) -> bool:
    """Whether a value read by a task must be copied to keep the task isolated."""
    cls = type(value)
    if cls in _IMMUTABLE_TYPES:
        return False
    if cls is tuple or cls is frozenset:
        return any(_needs_copy(item) for item in value)  # type: ignore[attr-defined]
    if isinstance(value, _AtomicBase):
        return False
    if isinstance(value, ImmutableScore):
        return not _is_frozen(cls)
    if isinstance(value, _IMMUTABLE_BASES):
        return False
    if isinstance(value, (tuple, frozenset)):
        return any(_needs_copy(item) for item in value)
    return True


def _isolate(value: Any) -> Any:
    """A deep copy of `value` that keeps atomic containers shared.

    A value that cannot be deep-copied (a lock, a client, an open file) is returned itself.
    """
    with _sharing_atomics():
        try:
            return copy.deepcopy(value)
        except (TypeError, copy.Error):
            return value


class _ReadThrough:
    """Non-data descriptor that pulls a field from the base score on a snapshot's first read.

    Being non-data, it is consulted only while the snapshot's own `__dict__` lacks the name;
    once a value is stored there, reads and writes are plain attribute accesses.
    """

    __slots__ = ("name", "owner")

    def __init__(self, name: str, owner: type) -> None:
        self.name = name
        self.owner = owner

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        name = self.name
        if obj is None:
            return getattr(self.owner, name)
        try:
            base = getattr(obj, _BASE_ATTR)
        except AttributeError:
            raise AttributeError(name) from None
        value = getattr(base, name)
        if not _needs_copy(value):
            return value
        value = _isolate(value)
        obj.__dict__[name] = value
        return value


def _snapshot_getattr(self: Any, name: str) -> Any:
    """Read-through for instance attributes that are neither fields nor class attributes."""
    if name == _BASE_ATTR or (name.startswith("__") and name.endswith("__")):
        raise AttributeError(name)
    try:
        base = getattr(self, _BASE_ATTR)
    except AttributeError:
        raise AttributeError(name) from None
    value = getattr(base, name)
    if not _needs_copy(value):
        return value
    value = _isolate(value)
    self.__dict__[name] = value
    return value


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


def _state_names(obj: object) -> list[str]:
    """Names of the attributes that make up an object's state (fields, slots, instance dict)."""
    cls = type(obj)
    names: list[str] = []
    if dataclasses.is_dataclass(cls):
        names.extend(f.name for f in dataclasses.fields(cls))
    for name in _slot_names(cls):
        if name not in names and name != _BASE_ATTR:
            names.append(name)
    own = getattr(obj, "__dict__", None)
    if own is not None:
        names.extend(name for name in own if name not in names)
    return names


class _SnapshotClass:
    """What is known about one generated snapshot class."""

    __slots__ = ("checked", "cls", "dict_fields", "parent")

    def __init__(self, cls: type, parent: type, dict_fields: int) -> None:
        self.cls = cls
        self.parent = parent
        self.dict_fields = dict_fields
        self.checked: set[str] = set()


_SNAPSHOT_CLASSES: dict[type, _SnapshotClass | None] = {}
_PARENTS: dict[type, type] = {}
_CLASS_LOCK = threading.Lock()


def _build_snapshot_class(parent: type) -> _SnapshotClass | None:
    names: list[str] = []
    if dataclasses.is_dataclass(parent):
        names.extend(f.name for f in dataclasses.fields(parent))
    names.extend(name for name in _slot_names(parent) if name not in names)
    namespace: dict[str, Any] = {name: _ReadThrough(name, parent) for name in names}
    slots: tuple[str, ...] = (_BASE_ATTR,)
    if not parent.__dictoffset__:
        slots += ("__dict__",)
    namespace.update(
        __slots__=slots,
        __module__=parent.__module__,
        __qualname__=parent.__qualname__,
        __doc__=parent.__doc__,
        __class__=property(lambda self: parent, doc="The score class this snapshot stands for."),
        __getattr__=_snapshot_getattr,
        __repr__=lambda self: repr(materialize(self)),
        __copy__=lambda self: materialize(self),
        __deepcopy__=lambda self, memo: copy.deepcopy(materialize(self), memo),
        __reduce_ex__=lambda self, protocol: materialize(self).__reduce_ex__(protocol),
    )
    try:
        cls: type = type(parent)(parent.__name__, (parent,), namespace)
    except TypeError:
        return None
    dict_fields = sum(1 for name in names if name not in _slot_names(parent))
    return _SnapshotClass(cls, parent, dict_fields)


def _snapshot_class(parent: type) -> _SnapshotClass | None:
    try:
        return _SNAPSHOT_CLASSES[parent]
    except KeyError:
        pass
    with _CLASS_LOCK:
        if parent not in _SNAPSHOT_CLASSES:
            info = _build_snapshot_class(parent)
            _SNAPSHOT_CLASSES[parent] = info
            if info is not None:
                _PARENTS[info.cls] = parent
        return _SNAPSHOT_CLASSES[parent]


def _cover_extra_names(info: _SnapshotClass, base: object) -> None:
    """Shadow class attributes that an instance attribute of `base` overrides.

    Normally every instance attribute is a field, and this is skipped after one length check.
    """
    own = getattr(base, "__dict__", None)
    if own is None or len(own) <= info.dict_fields:
        return
    cls = info.cls
    for name in list(own):
        if name in info.checked or name in cls.__dict__:
            continue
        with _CLASS_LOCK:
            info.checked.add(name)
            for klass in info.parent.__mro__:
                if name in klass.__dict__:
                    attr = klass.__dict__[name]
                    kind = type(attr)
                    if not (hasattr(kind, "__set__") or hasattr(kind, "__delete__")):
                        setattr(cls, name, _ReadThrough(name, info.parent))
                    break


def _full_copy(score: S) -> S:
    clone = copy.copy(score)
    for name in _state_names(clone):
        try:
            value = getattr(clone, name)
        except AttributeError:
            continue
        if _needs_copy(value):
            object.__setattr__(clone, name, _isolate(value))
    return clone


def snapshot(score: S) -> S:
    """Return an isolated, lazy copy-on-write view of `score` for one parallel task.

    Writes to the snapshot never reach `score` or other snapshots until they are merged with
    `merge_snapshots`. The cost does not depend on how many fields the task leaves alone: a
    field is copied on its first read, and only if it is mutable. A frozen score is returned
    as it is. See the module documentation for the exact rules.

    Args:
        score: Any score (or any object with attributes; usually a `Score` dataclass). A
            snapshot may itself be snapshotted, for nested parallel groups.

    Returns:
        The snapshot: an instance of a generated subclass of `type(score)`.
    """
    try:
        fast = _FAST_SNAPSHOT[type(score)]
    except KeyError:
        fast = _fast_snapshot_entry(type(score))
    if fast is not None and len(score.__dict__) <= fast[1]:
        snap: Any = _new_object(fast[0])
        fast[2](snap, score)
        return snap  # type: ignore[no-any-return]
    return _snapshot(score)


def score_fields(score: Any) -> Any:
    """A dataclass score as a dict of its fields (what a cascade takes as input); anything
    else as it is."""
    if dataclasses.is_dataclass(score) and not isinstance(score, type):
        return {f.name: getattr(score, f.name) for f in dataclasses.fields(score)}
    return score


def snapshots(score: S, count: int) -> list[S]:
    """`count` independent snapshots of `score`, as `snapshot` makes them (one per task)."""
    fast = _FAST_SNAPSHOT.get(type(score))
    if fast is not None and len(score.__dict__) <= fast[1]:
        cls, _, set_base = fast
        made: list[Any] = []
        for _ in range(count):  # a plain loop: a comprehension is one more frame per group
            snap: Any = _new_object(cls)
            set_base(snap, score)
            made.append(snap)
        return made
    return [snapshot(score) for _ in range(count)]


def _snapshot(score: S) -> S:
    cls = type(score)
    if _is_frozen(cls):
        return score
    if isinstance(score, (dict, list, set, bytearray)):
        raise TypeError(
            f"parallel tasks each get a snapshot of the score's attributes, so the score must be "
            f"an object with attributes (a Score dataclass), got {cls.__name__}"
        )
    parent = _PARENTS.get(cls, cls)
    info = _snapshot_class(parent)
    if info is None:
        return _full_copy(score)
    _cover_extra_names(info, score)
    snap: Any = object.__new__(info.cls)
    object.__setattr__(snap, _BASE_ATTR, score)
    return snap  # type: ignore[no-any-return]


_new_object = object.__new__

_FAST_SNAPSHOT: dict[type, tuple[type, int, Callable[[Any, Any], None]] | None] = {}
"""Per score class: (snapshot class, number of instance-dict fields, base slot setter), or None
when the class needs the general path (frozen, slotted, itself a snapshot, not subclassable)."""


def _fast_snapshot_entry(cls: type) -> tuple[type, int, Callable[[Any, Any], None]] | None:
    entry: tuple[type, int, Callable[[Any, Any], None]] | None = None
    if not _is_frozen(cls) and cls not in _PARENTS and cls.__dictoffset__ and not _slot_names(cls):
        info = _snapshot_class(cls)
        if info is not None:
            entry = (info.cls, info.dict_fields, info.cls.__dict__[_BASE_ATTR].__set__)
    _FAST_SNAPSHOT[cls] = entry
    return entry


def is_snapshot(obj: object) -> bool:
    """Whether `obj` is a copy-on-write snapshot made by `snapshot`."""
    return type(obj) in _PARENTS


def snapshot_base(obj: S) -> S | None:
    """The score a snapshot reads through to, or None when `obj` is not a snapshot."""
    if type(obj) not in _PARENTS:
        return None
    base: S | None = getattr(obj, _BASE_ATTR, None)
    return base


def touched_fields(obj: object) -> tuple[str, ...]:
    """Names a snapshot holds its own value for: every field written or read-and-copied.

    For anything that is not a snapshot, every state name is returned.
    """
    if type(obj) in _PARENTS:
        return tuple(obj.__dict__)
    return tuple(_state_names(obj))


def _snapshot_items(snap: object) -> Iterator[tuple[str, Any]]:
    """Every (name, value) of a snapshot's view without copying anything."""
    own = snap.__dict__
    base = getattr(snap, _BASE_ATTR, None)
    seen: set[str] = set()
    if base is not None:
        if type(base) in _PARENTS:
            base_items: Iterator[tuple[str, Any]] = _snapshot_items(base)
        else:
            base_items = _plain_items(base)
        for name, value in base_items:
            seen.add(name)
            yield name, own.get(name, value)
    for name, value in own.items():
        if name not in seen:
            yield name, value


def _plain_items(obj: object) -> Iterator[tuple[str, Any]]:
    for name in _state_names(obj):
        try:
            yield name, getattr(obj, name)
        except AttributeError:
            continue


def materialize(obj: S) -> S:
    """Return a plain instance of the score class with a snapshot's current values.

    Untouched values are shared with the base score, not copied. Anything that is not a
    snapshot is returned as it is.
    """
    parent = _PARENTS.get(type(obj))
    if parent is None:
        return obj
    plain: Any = object.__new__(parent)
    for name, value in _snapshot_items(obj):
        try:
            object.__setattr__(plain, name, value)
        except AttributeError:
            continue  # a slotted class cannot hold a name it does not declare
    return plain  # type: ignore[no-any-return]
