"""Merging the snapshots of parallel tasks back into the score.

After a `.sync(...)` group finishes, each task's snapshot is compared with the base score and
the changes are folded in, in task index order (the order the tasks were listed, never the
order they finished in), so a run always merges the same way.

A task *changed* a field when the snapshot's value differs (`!=`) from the base's value.
Reading a field, or writing back an equal value, is not a change. Objects whose class does not
define `__eq__` are compared attribute by attribute, since the snapshot holds a copy.

Strategies (`MergeStrategy`):

* `LAST_WRITE_WINS`: for each field, the highest-index task that changed it wins.
* `FAIL_ON_CONFLICT`: two tasks that change one field to different values raise
  `MergeConflict` (before anything is written); tasks that agree are fine.
* `SMART` (the default) is a three-way merge per value type:
    * lists: merged by position, three-way. Each task's list is compared with the base list:
      items changed in place (same position), items inserted or appended, items removed.
      Edits of different tasks to different stretches are all kept; items several tasks
      changed in place merge by these same rules (so tasks that set different fields of the
      same dicts or dataclass items both count); insertions at one point (appends, most
      often) are all kept, task by task; the same edit made by several tasks is made once.
      Where tasks' edits overlap any other way (one replaced a stretch another removed
      items from), that stretch merges as a multiset: base items a task removed go, every
      task's new items are added. So `score.context = [...]` in one task and
      `score.context += [...]` in another keep both tasks' items, and with a base of `[]`
      the result is `a + b`. A `None` base counts as empty.
    * dicts: merged key by key, recursively; a key's value merges by these same rules, so
      conflicting scalar leaves go to the last writer. A key is deleted when the last task
      that touched it deleted it.
    * sets: the base minus every task's removals, plus every task's additions (a union when
      tasks only add).
    * mutable dataclasses of the base's own type: merged field by field, recursively.
    * anything else, or values of mixed types: last write wins.

A custom merge is any callable `merge(base, snapshots)`; it may update `base` in place and
return None, or return the merged score.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from cascadence._enums import NamedEnum
from cascadence.errors import MergeConflict
from cascadence.flow.score import _PARENTS, _is_frozen, _state_names, is_snapshot

__all__ = [
    "MergeFunction",
    "MergeStrategy",
    "apply_fields",
    "changed_fields",
    "merge_snapshots",
    "strategy_merge",
]

S = TypeVar("S")

MergeFunction = Callable[[Any, list[Any]], Any]
"""A custom merge: `merge(base, snapshots)` updates `base` (returning None) or returns a score."""

_DELETED: Any = object()


class MergeStrategy(NamedEnum):
    """How the changes of parallel tasks to one field are combined."""

    LAST_WRITE_WINS = "last_write_wins"
    """The highest-index task that changed the field wins."""
    FAIL_ON_CONFLICT = "fail_on_conflict"
    """Different values from two tasks raise `MergeConflict`."""
    SMART = "smart"
    """Lists merge by position (keeping every task's additions), dicts by key, sets by
    membership."""
    SMART_MERGE = "smart"
    """Another name for `SMART`."""

    @classmethod
    def _what(cls) -> str:
        return "merge strategy"


def _equal(a: Any, b: Any, _seen: set[tuple[int, int]] | None = None) -> bool:
    """`a == b`, robust to odd `__eq__`, with attribute comparison for identity-only classes."""
    if a is b:
        return True
    try:
        if bool(a == b):
            return True
    except Exception:
        return False
    cls = type(a)
    eq: object = cls.__eq__
    if cls is not type(b) or eq is not object.__eq__:
        return False
    seen = _seen if _seen is not None else set()
    key = (id(a), id(b))
    if key in seen:
        return True
    seen.add(key)
    names_a, names_b = _state_names(a), _state_names(b)
    if not names_a or sorted(names_a) != sorted(names_b):
        return False
    missing = object()
    return all(
        _equal(getattr(a, name, missing), getattr(b, name, missing), seen) for name in names_a
    )


def changed_fields(base: Any, snap: Any) -> dict[str, Any]:
    """The fields whose value in `snap` differs from `base`, with `snap`'s values.

    For a copy-on-write snapshot only the fields it holds itself are compared; for anything
    else (a full copy, a new immutable score) every field is.
    """
    if snap is base:
        return {}
    if is_snapshot(snap):
        items = list(snap.__dict__.items())
    else:
        items = [(name, getattr(snap, name)) for name in _state_names(snap) if hasattr(snap, name)]
    missing = object()
    changed: dict[str, Any] = {}
    for name, value in items:
        original = getattr(base, name, missing)
        if value is original:
            continue
        if type(value) in _PLAIN and type(original) is type(value):
            if value != original:
                changed[name] = value
        elif original is missing or not _equal(value, original):
            changed[name] = value
    return changed


_PLAIN = frozenset({int, float, str, bool, bytes})


def merge_snapshots(
    base: S,
    snapshots: Sequence[S],
    strategy: MergeStrategy | str | MergeFunction = MergeStrategy.SMART,
) -> S:
    """Fold the changes of `snapshots`, taken in task index order, into `base`.

    Args:
        base: The score the snapshots were taken from.
        snapshots: One snapshot (or returned score) per task, in task index order.
        strategy: A `MergeStrategy`, its name, or a custom `merge(base, snapshots)` callable.

    Returns:
        `base` itself, updated in place; or, when `base` is frozen, a new score with the
        changes (or whatever a custom merge returned).

    Raises:
        MergeConflict: Under `FAIL_ON_CONFLICT`, two tasks wrote different values to one
            field. Nothing has been written when it is raised.
        ValueError: `strategy` names no strategy.
    """
    if callable(strategy) and not isinstance(strategy, (str, MergeStrategy)):
        result = strategy(base, list(snapshots))
        return base if result is None else result
    mode = strategy if type(strategy) is MergeStrategy else MergeStrategy(strategy)
    if _merge_single_writers(base, snapshots):
        return base
    return _merge_general(base, snapshots, mode)


def strategy_merge(strategy: MergeStrategy) -> MergeFunction:
    """`merge_snapshots` with `strategy` fixed, as a `.sync` group calls it after every run."""

    def merge(base: Any, snapshots: list[Any]) -> Any:
        if _merge_single_writers(base, snapshots):
            return base
        return _merge_general(base, snapshots, strategy)

    return merge


def _merge_general(base: S, snapshots: Sequence[S], mode: MergeStrategy) -> S:
    writes: dict[str, list[Any]] = {}
    for snap in snapshots:
        for name, value in changed_fields(base, snap).items():
            writes.setdefault(name, []).append(value)
    if not writes:
        return base
    order = _field_order(type(base))
    names = sorted(writes, key=lambda name: order.get(name, len(order)))
    resolved: dict[str, Any] = {}
    missing = object()
    for name in names:
        values = writes[name]
        if mode is MergeStrategy.LAST_WRITE_WINS:
            resolved[name] = values[-1]
        elif mode is MergeStrategy.FAIL_ON_CONFLICT:
            first = values[0]
            if any(not _equal(first, other) for other in values[1:]):
                raise MergeConflict(name, values)
            resolved[name] = first
        else:
            original = getattr(base, name, missing)
            resolved[name] = _smart(None if original is missing else original, values)
    return apply_fields(base, resolved)


def _merge_single_writers(base: Any, snapshots: Sequence[Any]) -> bool:
    """The common case, merged without sorting or per-strategy work.

    When every snapshot is a copy-on-write snapshot of `base` and every changed field has
    exactly one writer, all three strategies agree: each field takes its one writer's value.
    Returns False, having written nothing, when the general path must decide.
    """
    try:
        plain = _PLAIN_BASES[type(base)]
    except KeyError:
        plain = _plain_base(type(base))
    if not plain:
        return False
    current = base.__dict__
    writes: dict[str, Any] = {}
    missing = _DELETED
    for snap in snapshots:
        if type(snap) not in _PARENTS or snap._cascadence_base_ is not base:
            return False
        for name, value in snap.__dict__.items():
            original = current.get(name, missing)
            if value is original:
                continue
            kind = type(value)
            if kind is type(original) and kind in _BUILTIN:
                try:
                    if value == original:
                        continue
                except Exception:
                    return False  # an item with an odd __eq__: let the general path compare
            elif original is missing:
                return False  # not an instance field of the base: let the general path look
            elif _equal(value, original):
                continue
            if name in writes:
                return False
            writes[name] = value
    for name, value in writes.items():
        setattr(base, name, value)
    return True


_PLAIN_BASES: dict[type, bool] = {}
_object_setattr: object = object.__setattr__


def _plain_base(cls: type) -> bool:
    """Whether instances of `cls` keep their fields in `__dict__` and assign them plainly."""
    setter: object = cls.__setattr__
    plain = (
        setter is _object_setattr
        and cls not in _PARENTS
        and bool(cls.__dictoffset__)
        and not _is_frozen(cls)
    )
    _PLAIN_BASES[cls] = plain
    return plain


_BUILTIN = _PLAIN | {list, dict, set, tuple, frozenset}
"""Types whose `==` is exact for merging: compared directly, without `_equal`."""


_FIELD_ORDER: dict[type, dict[str, int]] = {}


def _field_order(cls: type) -> dict[str, int]:
    """Declaration order of a dataclass's fields (cached), so conflicts are reported in it."""
    try:
        return _FIELD_ORDER[cls]
    except KeyError:
        order: dict[str, int] = {}
        if dataclasses.is_dataclass(cls):
            order = {f.name: index for index, f in enumerate(dataclasses.fields(cls))}
        _FIELD_ORDER[cls] = order
        return order


def apply_fields(base: S, resolved: dict[str, Any]) -> S:
    """`base` with the fields in `resolved` set: in place, or, for a frozen dataclass, on a copy
    (fields outside `__init__` set on the copy directly), which is returned."""
    if _is_frozen(type(base)):
        init = {f.name for f in dataclasses.fields(base) if f.init}  # type: ignore[arg-type]
        new = dataclasses.replace(  # type: ignore[type-var]
            base, **{k: v for k, v in resolved.items() if k in init}
        )
        for name, value in resolved.items():
            if name not in init:
                object.__setattr__(new, name, value)
        return new
    for name, value in resolved.items():
        setattr(base, name, value)
    return base


def _smart(original: Any, values: list[Any]) -> Any:
    """Merge values that tasks wrote (each different from `original`), in task order."""
    last = values[-1]
    if len(values) == 1:
        return last  # one writer: merging its value against the original gives that value
    if all(isinstance(v, list) for v in values) and (
        original is None or isinstance(original, list)
    ):
        return _merge_lists(original or [], values)
    if all(isinstance(v, dict) for v in values) and (
        original is None or isinstance(original, dict)
    ):
        return _merge_dicts(original or {}, values)
    if all(isinstance(v, (set, frozenset)) for v in values) and (
        original is None or isinstance(original, (set, frozenset))
    ):
        return _merge_sets(original, values)
    cls = type(original)
    if (
        dataclasses.is_dataclass(original)
        and not isinstance(original, type)
        and not _is_frozen(cls)
        and all(type(v) is cls for v in values)
    ):
        return _merge_dataclasses(original, values)
    return last


def _merge_lists(original: list[Any], values: list[list[Any]]) -> list[Any]:
    """Three-way merge of lists: each task's edits against `original`, combined by position.

    Edits that touch different stretches of the base list are all applied. Where the edits
    of several tasks meet, see `_merge_stretch`.
    """
    hunks: list[tuple[int, int, list[Any], int]] = []
    for task, value in enumerate(values):
        hunks.extend((start, end, new, task) for start, end, new in _hunks(original, value))
    hunks.sort(key=lambda hunk: (hunk[0], hunk[1], hunk[3]))
    result: list[Any] = []
    done = 0  # base items up to here are placed
    cluster: list[tuple[int, int, list[Any], int]] = []
    low = high = 0
    for hunk in hunks:
        start, end = hunk[0], hunk[1]
        if cluster and (start < high or (start == end == low == high)):
            cluster.append(hunk)  # overlaps the stretch, or inserts at the same point
            high = max(high, end)
            continue
        if cluster:
            result.extend(original[done:low])
            result.extend(_merge_stretch(original, low, high, cluster))
            done = high
        cluster, low, high = [hunk], start, end
    if cluster:
        result.extend(original[done:low])
        result.extend(_merge_stretch(original, low, high, cluster))
        done = high
    result.extend(original[done:])
    return result


def _hunks(original: list[Any], value: list[Any]) -> list[tuple[int, int, list[Any]]]:
    """The edits that turn `original` into `value`: `(start, end, new items)`, meaning
    `original[start:end]` became the new items.

    Two readings are weighed, and the one that keeps more base items in their place wins
    (position by position on a tie): position by position (an item changed in place is a
    one-for-one replacement; a longer or shorter list has items appended or cut at the end),
    or a diff of the middle after the common ends, which finds items inserted or removed
    anywhere (so "drop the oldest, add a newest" is a removal and an append, not every item
    changed). The diff is linear when one side only removed or only inserted items; other
    edits are diffed in full only while the middle is small (`_DIFF_LIMIT`), else taken as
    one replacement of the middle.
    """
    size, length = len(original), len(value)
    same = _equal
    shortest = min(size, length)
    prefix = 0
    while prefix < shortest and same(value[prefix], original[prefix]):
        prefix += 1
    if prefix == size == length:
        return []
    suffix = 0
    while suffix < shortest - prefix and same(value[-1 - suffix], original[-1 - suffix]):
        suffix += 1
    old, new = original[prefix : size - suffix], value[prefix : length - suffix]
    if not old or not new:  # only inserted or only removed items: nothing to weigh
        return [(prefix, size - suffix, new)]
    diff: list[tuple[int, int, list[Any]]] | None = None
    if len(new) < len(old):
        diff = _removals(old, new, prefix)
    elif len(old) < len(new):
        diff = _insertions(old, new, prefix)
    if diff is not None:
        kept = size - len(old) + min(len(old), len(new))
    elif len(old) * len(new) <= _DIFF_LIMIT:
        keys = _Keys()
        matcher = difflib.SequenceMatcher(
            None, [keys.of(item) for item in old], [keys.of(item) for item in new], autojunk=False
        )
        diff = [
            (prefix + i1, prefix + i2, new[j1:j2])
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            if tag != "equal"
        ]
        kept = size - len(old) + sum(block.size for block in matcher.get_matching_blocks())
    else:
        diff = [(prefix, size - suffix, new)]
        kept = size - len(old)
    in_place = prefix + sum(
        1 for index in range(prefix, shortest) if same(value[index], original[index])
    )
    if in_place < kept:
        return diff
    hunks = _positional(original, value, prefix, shortest)
    if length > size:
        hunks.append((size, size, value[size:]))
    elif length < size:
        hunks.append((length, size, []))
    return hunks


_DIFF_LIMIT = 100_000
"""Largest `len(old) * len(new)` of a middle diffed in full (difflib is quadratic there)."""


def _removals(
    old: list[Any], new: list[Any], offset: int
) -> list[tuple[int, int, list[Any]]] | None:
    """The removals that turn `old` into `new`, when `new` is `old` with items removed (a
    subsequence of it); else None."""
    hunks: list[tuple[int, int, list[Any]]] = []
    wanted = len(new)
    matched = 0
    run: int | None = None
    for index, item in enumerate(old):
        if matched < wanted and _equal(item, new[matched]):
            matched += 1
            if run is not None:
                hunks.append((offset + run, offset + index, []))
                run = None
        elif run is None:
            run = index
    if matched < wanted:
        return None
    if run is not None:
        hunks.append((offset + run, offset + len(old), []))
    return hunks


def _insertions(
    old: list[Any], new: list[Any], offset: int
) -> list[tuple[int, int, list[Any]]] | None:
    """The insertions that turn `old` into `new`, when `new` is `old` with items inserted
    (`old` is a subsequence of it); else None."""
    hunks: list[tuple[int, int, list[Any]]] = []
    matched = 0
    pending: list[Any] = []
    for item in new:
        if matched < len(old) and _equal(item, old[matched]):
            if pending:
                hunks.append((offset + matched, offset + matched, pending))
                pending = []
            matched += 1
        else:
            pending.append(item)
    if matched < len(old):
        return None
    if pending:
        hunks.append((offset + len(old), offset + len(old), pending))
    return hunks


def _positional(
    original: list[Any], value: list[Any], start: int, stop: int
) -> list[tuple[int, int, list[Any]]]:
    """Runs of positions in `[start, stop)` where `value` and `original` differ."""
    same = _equal
    hunks: list[tuple[int, int, list[Any]]] = []
    index = start
    while index < stop:
        if same(value[index], original[index]):
            index += 1
            continue
        end = index + 1
        while end < stop and not same(value[end], original[end]):
            end += 1
        hunks.append((index, end, value[index:end]))
        index = end
    return hunks


def _merge_stretch(
    original: list[Any], low: int, high: int, hunks: list[tuple[int, int, list[Any], int]]
) -> list[Any]:
    """The merged items for `original[low:high]`, which the edits `hunks` of one or more
    tasks (in task order where they start together) overlap.

    * One task: its edit.
    * Only one-for-one replacements (items changed in place): item by item, each changed item
      merged by the rules of `_smart` (dicts by key, dataclasses by field, last writer for
      anything else).
    * Only insertions at one point (appends, most often): every task's items, in task order.
    * Otherwise: when every task made the same edit, that edit; else the stretch is merged as
      a multiset: base items any task removed go, every task's new items are added.
    """
    if all(hunk[3] == hunks[0][3] for hunk in hunks):
        return _apply_hunks(original, low, high, hunks)
    if all(len(new) == end - start for start, end, new, _task in hunks):
        written: dict[int, list[Any]] = {}  # per base position, what tasks wrote, task order
        for start, _end, new, _task in sorted(hunks, key=lambda hunk: hunk[3]):
            for offset, item in enumerate(new):
                if not _equal(item, original[start + offset]):
                    written.setdefault(start + offset, []).append(item)
        merged = original[low:high]
        for position, items in written.items():
            merged[position - low] = _smart(original[position], items)
        return merged
    tasks: dict[int, list[tuple[int, int, list[Any], int]]] = {}
    for hunk in hunks:
        tasks.setdefault(hunk[3], []).append(hunk)
    versions = [_apply_hunks(original, low, high, edits) for edits in tasks.values()]
    inserts_only = low == high
    if not inserts_only and all(_equal(version, versions[0]) for version in versions[1:]):
        return versions[0]
    return _merge_multiset(original[low:high], versions)


def _apply_hunks(
    original: list[Any], low: int, high: int, hunks: list[tuple[int, int, list[Any], int]]
) -> list[Any]:
    """`original[low:high]` with one task's edits (sorted, not overlapping) applied."""
    out: list[Any] = []
    at = low
    for start, end, new, _task in hunks:
        out.extend(original[at:start])
        out.extend(new)
        at = end
    out.extend(original[at:high])
    return out


def _merge_multiset(original: list[Any], values: list[list[Any]]) -> list[Any]:
    """Merge versions of a list as multisets: items any version lacks are removed (once per
    missing copy), items the base lacks are added, version by version."""
    removed = _Bag()
    additions: list[Any] = []
    for value in values:
        gone, added = _list_delta(original, value)
        if gone:
            for item, count in _Bag(gone).counts():
                if count > removed.count(item):
                    removed.add(item, count - removed.count(item))
        additions.extend(added)
    result = [item for item in original if not removed.take(item)] if removed else list(original)
    result.extend(additions)
    return result


def _list_delta(original: list[Any], value: list[Any]) -> tuple[list[Any], list[Any]]:
    """(items of `original` that `value` lacks, items of `value` that `original` lacks)."""
    size = len(original)
    if len(value) >= size:
        try:
            if value[:size] == original:
                return [], value[size:]
        except Exception:  # an odd __eq__: fall through to the item-wise diff
            pass
    available = _Bag(original)
    added = [item for item in value if not available.take(item)]
    gone = [item for item in original if available.take(item)]
    return gone, added


def _merge_dicts(original: dict[Any, Any], values: list[dict[Any, Any]]) -> dict[Any, Any]:
    changes: dict[Any, list[Any]] = {}
    for value in values:
        for key, item in value.items():
            if key not in original or not _equal(item, original[key]):
                changes.setdefault(key, []).append(item)
        for key in original:
            if key not in value:
                changes.setdefault(key, []).append(_DELETED)
    result = dict(original)
    for key, key_values in changes.items():
        if key_values[-1] is _DELETED:
            result.pop(key, None)
            continue
        kept = [v for v in key_values if v is not _DELETED]
        result[key] = _smart(original.get(key), kept)
    return result


def _merge_sets(original: Any, values: list[Any]) -> Any:
    base: Any = original if original is not None else set()
    removed: set[Any] = set()
    added: set[Any] = set()
    for value in values:
        removed |= base - value
        added |= value - base
    kind = type(original) if original is not None else type(values[-1])
    return kind((set(base) - removed) | added)


def _merge_dataclasses(original: Any, values: list[Any]) -> Any:
    result = copy.copy(original)
    for field in dataclasses.fields(original):
        name = field.name
        base_value = getattr(original, name)
        field_values = [
            getattr(v, name) for v in values if not _equal(getattr(v, name), base_value)
        ]
        if field_values:
            setattr(result, name, _smart(base_value, field_values))
    return result


class _Keys:
    """Numbers items by equality (hashed when possible, scanned otherwise), so lists of any
    items can be diffed as lists of ints."""

    __slots__ = ("_hashed", "_scanned")

    def __init__(self) -> None:
        self._hashed: dict[Any, int] = {}
        self._scanned: list[tuple[Any, int]] = []

    def of(self, item: Any) -> int:
        try:
            return self._hashed.setdefault(item, len(self._hashed) + len(self._scanned))
        except Exception:  # unhashable, or an odd __eq__: compare one by one
            pass
        for seen, key in self._scanned:
            if _equal(seen, item):
                return key
        key = len(self._hashed) + len(self._scanned)
        self._scanned.append((item, key))
        return key


class _Bag:
    """A multiset that counts items by equality (numbered by `_Keys`)."""

    __slots__ = ("_counts", "_items", "_keys")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._keys = _Keys()
        self._counts: dict[int, int] = {}
        self._items: dict[int, Any] = {}
        for item in items:
            self.add(item)

    def __bool__(self) -> bool:
        return any(self._counts.values())

    def add(self, item: Any, count: int = 1) -> None:
        key = self._keys.of(item)
        self._items.setdefault(key, item)
        self._counts[key] = self._counts.get(key, 0) + count

    def count(self, item: Any) -> int:
        return self._counts.get(self._keys.of(item), 0)

    def take(self, item: Any) -> bool:
        """Remove one `item` if present; return whether one was."""
        key = self._keys.of(item)
        have = self._counts.get(key, 0)
        if have:
            self._counts[key] = have - 1
        return bool(have)

    def counts(self) -> list[tuple[Any, int]]:
        return [(self._items[key], count) for key, count in self._counts.items() if count]
