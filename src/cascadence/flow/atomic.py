"""Thread-safe containers that parallel tasks share instead of copying.

The tasks of a `.sync(...)` group each work on an isolated snapshot of the score, and their
changes are merged afterwards. Values held in `Atomic`, `AtomicList` and `AtomicDict` are the
exception: a snapshot hands every task the *same* container, so updates land immediately and
nothing needs merging. Every operation takes the container's lock, so they are safe both for
asyncio tasks and for plain notes that run in worker threads:

```python
@dataclass
class AggregatorScore(Score):
    results: AtomicList = None
    cache: AtomicDict = None

    def __post_init__(self):
        super().__post_init__()
        self.results = AtomicList()
        self.cache = AtomicDict()

score.results.append(new_result)
score.cache["key"] = value
```

Reads that hand out several values (`to_list()`, `items()`, iteration) return copies taken
under the lock, so they never observe a half-finished update.

Copying: `copy.copy` and `copy.deepcopy` make a new, independent container (with a fresh lock)
except while a score snapshot is being taken, when nested atomic containers stay shared.
Pickling keeps the contents and recreates the lock.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar, overload

__all__ = ["Atomic", "AtomicDict", "AtomicList"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_MISSING: Any = object()

# Set while a score snapshot deep-copies a field, so atomic containers nested inside that field
# stay shared between tasks instead of being cloned.
_SHARE_ON_DEEPCOPY: ContextVar[bool] = ContextVar("cascadence_share_atomics", default=False)


@contextmanager
def _sharing_atomics() -> Iterator[None]:
    """Within this block `copy.deepcopy` returns atomic containers themselves, not clones."""
    token = _SHARE_ON_DEEPCOPY.set(True)
    try:
        yield
    finally:
        _SHARE_ON_DEEPCOPY.reset(token)


class _AtomicBase:
    """Lock handling, copying and pickling shared by the three containers."""

    __slots__ = ("__weakref__", "_lock")

    def __init__(self) -> None:
        # Re-entrant so that a callback given to `update` may read the same container.
        self._lock = threading.RLock()

    def _raw(self) -> Any:
        raise NotImplementedError

    def _from_raw(self, raw: Any) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"value": self._raw()}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._lock = threading.RLock()
        self._from_raw(state["value"])

    def __copy__(self) -> Any:
        clone = object.__new__(type(self))
        with self._lock:
            raw = self._raw()
        clone.__setstate__({"value": copy.copy(raw)})
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        if _SHARE_ON_DEEPCOPY.get():
            return self
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        with self._lock:
            raw = self._raw()
        clone.__setstate__({"value": copy.deepcopy(raw, memo)})
        return clone


class Atomic(_AtomicBase, Generic[T]):
    """One value that parallel tasks read and update atomically.

    Example:
        ```python
        counter = Atomic(0)
        counter.update(lambda n: n + 1)
        counter.compare_and_set(1, 10)  # True
        ```

    Two `Atomic` objects are equal only if they are the same object; compare `get()` values.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        """Create the container holding `value`."""
        super().__init__()
        self._value = value

    def _raw(self) -> Any:
        return self._value

    def _from_raw(self, raw: Any) -> None:
        self._value = raw

    def get(self) -> T:
        """Return the current value."""
        with self._lock:
            return self._value

    def set(self, value: T) -> None:
        """Replace the value."""
        with self._lock:
            self._value = value

    def get_and_set(self, value: T) -> T:
        """Replace the value and return the previous one."""
        with self._lock:
            previous = self._value
            self._value = value
            return previous

    def update(self, fn: Callable[[T], T]) -> T:
        """Replace the value with `fn(value)` in one atomic step and return the new value.

        `fn` runs while the lock is held, so it must be quick and must not wait on other tasks.
        """
        with self._lock:
            self._value = fn(self._value)
            return self._value

    def compare_and_set(self, expected: T, new: T) -> bool:
        """Set the value to `new` if it is (or equals) `expected`; return whether it did."""
        with self._lock:
            current = self._value
            if current is expected or current == expected:
                self._value = new
                return True
            return False

    def __repr__(self) -> str:
        return f"Atomic({self.get()!r})"


class AtomicList(_AtomicBase, Generic[T]):
    """A list whose operations are atomic; shared, never copied, by score snapshots.

    Iteration walks a copy taken under the lock. An `AtomicList` equals another `AtomicList` or a
    plain `list` with the same items.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        """Create the list, optionally filled with `items`."""
        super().__init__()
        self._items: list[T] = list(items)

    def _raw(self) -> Any:
        return self._items

    def _from_raw(self, raw: Any) -> None:
        self._items = list(raw)

    def append(self, item: T) -> None:
        """Add `item` at the end."""
        with self._lock:
            self._items.append(item)

    def extend(self, items: Iterable[T]) -> None:
        """Add every item of `items` at the end, as one step (no other writer interleaves)."""
        values = list(items)
        with self._lock:
            self._items.extend(values)

    def insert(self, index: int, item: T) -> None:
        """Insert `item` before position `index`."""
        with self._lock:
            self._items.insert(index, item)

    def pop(self, index: int = -1) -> T:
        """Remove and return the item at `index` (the last by default)."""
        with self._lock:
            return self._items.pop(index)

    def remove(self, item: T) -> None:
        """Remove the first occurrence of `item`; `ValueError` if it is absent."""
        with self._lock:
            self._items.remove(item)

    def clear(self) -> None:
        """Remove every item."""
        with self._lock:
            self._items.clear()

    def to_list(self) -> list[T]:
        """Return a copy of the items as a plain list."""
        with self._lock:
            return self._items.copy()

    def __iadd__(self, items: Iterable[T]) -> AtomicList[T]:
        self.extend(items)
        return self

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        with self._lock:
            return self._items[index]

    def __setitem__(self, index: int, item: T) -> None:
        with self._lock:
            self._items[index] = item

    def __delitem__(self, index: int | slice) -> None:
        with self._lock:
            del self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self.to_list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AtomicList):
            return self.to_list() == other.to_list()
        if isinstance(other, list):
            return self.to_list() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable like list

    def __repr__(self) -> str:
        return f"AtomicList({self.to_list()!r})"


class AtomicDict(_AtomicBase, Generic[K, V]):
    """A dict whose operations are atomic; shared, never copied, by score snapshots.

    `keys()`, `values()` and `items()` return lists copied under the lock, and iteration walks a
    copy of the keys. An `AtomicDict` equals another `AtomicDict` or a plain `dict` with the
    same items.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = (), **kwargs: V) -> None:
        """Create the dict from a mapping or pairs, like `dict(...)`."""
        super().__init__()
        self._data: dict[Any, V] = dict(data, **kwargs)

    def _raw(self) -> Any:
        return self._data

    def _from_raw(self, raw: Any) -> None:
        self._data = dict(raw)

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: V | T) -> V | T: ...

    def get(self, key: K, default: Any = None) -> Any:
        """Return the value for `key`, or `default` when it is absent."""
        with self._lock:
            return self._data.get(key, default)

    def setdefault(self, key: K, default: V) -> V:
        """Return the value for `key`, first storing `default` when it is absent."""
        with self._lock:
            return self._data.setdefault(key, default)

    def update(self, other: Mapping[K, V] | Iterable[tuple[K, V]] = (), **kwargs: V) -> None:
        """Store every pair of `other` and `kwargs`, as one step."""
        incoming: dict[Any, V] = dict(other, **kwargs)
        with self._lock:
            self._data.update(incoming)

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: V | T) -> V | T: ...

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        """Remove `key` and return its value; `default` (or `KeyError`) when it is absent."""
        with self._lock:
            if default is _MISSING:
                return self._data.pop(key)
            return self._data.pop(key, default)

    def increment(self, key: K, by: float = 1) -> V:
        """Add `by` to the number stored at `key` (0 when absent) and return the new number."""
        with self._lock:
            current: Any = self._data.get(key, 0)
            value: Any = current + by
            self._data[key] = value
            return value  # type: ignore[no-any-return]

    def compute(self, key: K, fn: Callable[[V | None], V]) -> V:
        """Store `fn(current value or None)` at `key` in one atomic step and return it.

        `fn` runs while the lock is held, so it must be quick and must not wait on other tasks.
        """
        with self._lock:
            value = fn(self._data.get(key))
            self._data[key] = value
            return value

    def clear(self) -> None:
        """Remove every item."""
        with self._lock:
            self._data.clear()

    def keys(self) -> list[K]:
        """Return a copy of the keys."""
        with self._lock:
            return list(self._data)

    def values(self) -> list[V]:
        """Return a copy of the values."""
        with self._lock:
            return list(self._data.values())

    def items(self) -> list[tuple[K, V]]:
        """Return a copy of the `(key, value)` pairs."""
        with self._lock:
            return list(self._data.items())

    def to_dict(self) -> dict[K, V]:
        """Return a copy of the contents as a plain dict."""
        with self._lock:
            return dict(self._data)

    def __getitem__(self, key: K) -> V:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key: K) -> None:
        with self._lock:
            del self._data[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AtomicDict):
            return self.to_dict() == other.to_dict()
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable like dict

    def __repr__(self) -> str:
        return f"AtomicDict({self.to_dict()!r})"
