"""Result cache: reuse a step's result for the same input within a time-to-live.

The key is built from the whole input or from named fields of it (`key_fields`); values live in
a `CacheStore` (an in-process LRU by default). Expiry reads an injected `Clock`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "MISS",
    "NO_KEY",
    "CacheStore",
    "LRUCacheStore",
    "ResultCache",
    "cache_key",
    "key_or_none",
]


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Any = _Miss()
"""Returned by a cache lookup that found nothing fresh."""


class CacheStore(Protocol):
    """Storage behind a `ResultCache`."""

    def get(self, key: Hashable, now: float) -> Any:
        """Return the value for `key`, or `MISS` if absent or expired at `now`."""
        ...

    def set(self, key: Hashable, value: Any, expires_at: float) -> None:
        """Store `value` until `expires_at`."""
        ...

    def clear(self) -> None:
        """Drop every entry."""
        ...


def _private(value: Any) -> Any:
    """A deep copy, so that what one execution does to a result never reaches the cache or
    another execution; a value that cannot be copied (it holds a lock, say) is shared."""
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


class LRUCacheStore:
    """A bounded, in-process store that evicts the least recently used entry."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable, now: float) -> Any:
        """See `CacheStore.get`.

        Each lookup also drops up to two expired entries from the least recently used end, so
        entries that are never asked for again do not stay until the size bound pushes them
        out: under steady traffic, expired results are freed faster than new ones arrive.
        """
        data = self._data
        for _ in range(2):
            if not data:
                break
            oldest = next(iter(data))
            if data[oldest][0] > now:
                break
            del data[oldest]
        item = data.get(key)
        if item is None:
            return MISS
        if item[0] <= now:
            del self._data[key]
            return MISS
        self._data.move_to_end(key)
        return item[1]

    def set(self, key: Hashable, value: Any, expires_at: float) -> None:
        """See `CacheStore.set`."""
        data = self._data
        data[key] = (expires_at, value)
        data.move_to_end(key)
        if len(data) > self.maxsize:
            data.popitem(last=False)

    def clear(self) -> None:
        """See `CacheStore.clear`."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


NO_KEY: Hashable = object()
"""The key of an input that cannot be cached (see `ResultCache.key_for`)."""


class _Key(bytes):
    """A cache key that stands for objects by identity, and keeps them alive for as long as
    the key is kept: while a cache entry holds it, no other object can take their address."""

    refs: tuple[Any, ...]


def _plain(value: Any, refs: list[Any]) -> Any:
    """A JSON form of a value `json` does not write, that stands for its content. A value
    whose content cannot be told (a plain object, whose `repr` is its address) stands for
    itself: it is kept in `refs`, so the key holding it keeps it alive and its address is
    not reused by a later object while the key is in use."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__qualname__, dataclasses.asdict(value)]
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda item: _stable(item, refs))
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return [type(value).__name__, str(value)]
    if isinstance(value, (decimal.Decimal, uuid.UUID, enum.Enum)):
        return [type(value).__name__, str(value)]
    kind = type(value)
    if hasattr(kind, "model_dump") and hasattr(kind, "model_fields"):  # a pydantic model
        return [kind.__qualname__, value.model_dump(mode="json")]
    refs.append(value)
    return ["@object", kind.__qualname__, id(value)]


def _stable(value: Any, refs: list[Any]) -> str:
    return json.dumps(
        value, sort_keys=True, default=lambda v: _plain(v, refs), separators=(",", ":")
    )


def cache_key(data: Any, key_fields: Sequence[str] | None) -> Hashable:
    """Build a cache key from `data` (a mapping) or from its `key_fields` (dot paths).

    Values key by content; an object whose content cannot be told keys by identity (see
    `_plain`).

    Raises:
        ValueError: The data contains itself (a cycle).
    """
    refs: list[Any] = []
    if key_fields:
        values = []
        for path in key_fields:
            value: Any = data
            for part in path.split("."):
                if isinstance(value, dict):
                    value = value.get(part)
                elif isinstance(value, (list, tuple)) and part.lstrip("-").isdigit():
                    index = int(part)
                    value = value[index] if -len(value) <= index < len(value) else None
                else:
                    value = getattr(value, part, None)
            values.append(value)
        raw = _stable(values, refs)
    else:
        raw = _stable(data, refs)
    digest = hashlib.blake2b(raw.encode(), digest_size=16).digest()
    if not refs:
        return digest
    key = _Key(digest)
    key.refs = tuple(refs)
    return key


def key_or_none(data: Any, key_fields: Sequence[str] | None = None) -> Hashable:
    """`cache_key`, or `NO_KEY` for data that cannot make one (it contains itself)."""
    try:
        return cache_key(data, key_fields)
    except (TypeError, ValueError, RecursionError):
        return NO_KEY


class ResultCache:
    """Cache results for `ttl` seconds.

    Args:
        ttl: Seconds a result stays fresh.
        key_fields: Dot paths of the input that make the key (None: the whole input).
        store: Where entries live (default: an `LRUCacheStore` of `maxsize` entries).
        clock: Time source for expiry.
        key: A custom key function of the input, instead of `key_fields`.
    """

    def __init__(
        self,
        ttl: float = 3600.0,
        key_fields: Sequence[str] | None = None,
        *,
        store: CacheStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        maxsize: int = 10_000,
        key: Callable[[Any], Hashable] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"cache ttl must be > 0 seconds, got {ttl!r}")
        self.ttl = float(ttl)
        self.key_fields = tuple(key_fields) if key_fields else None
        self.store: CacheStore = store if store is not None else LRUCacheStore(maxsize)
        self.clock = clock
        self._key = key
        self.hits = 0
        self.misses = 0

    def key_for(self, data: Any) -> Hashable:
        """The cache key of an input; `NO_KEY` for an input that cannot make one (it contains
        itself): such a call is neither served from the cache nor stored."""
        if self._key is not None:
            return self._key(data)
        return key_or_none(data, self.key_fields)

    def get(self, key: Hashable) -> Any:
        """A copy of the fresh value for `key` (callers may change it freely), or `MISS`."""
        value = self.store.get(key, self.clock.now())
        if value is MISS:
            self.misses += 1
            return value
        self.hits += 1
        return _private(value)

    def set(self, key: Hashable, value: Any) -> None:
        """Remember a copy of `value` for `ttl` seconds."""
        self.store.set(key, _private(value), self.clock.now() + self.ttl)

    def clear(self) -> None:
        """Forget everything."""
        self.store.clear()
