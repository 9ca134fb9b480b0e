"""`store_from_url`: pick a checkpoint backend by URL scheme.

| URL                                   | store                                  |
|---------------------------------------|----------------------------------------|
| `memory://`                           | `InMemoryCheckpointStore()`            |
| `sqlite:///relative.db`               | `SQLiteCheckpointStore("relative.db")` |
| `sqlite:////abs/path.db`              | `SQLiteCheckpointStore("/abs/path.db")`|
| `redis://host:6379/0`, `rediss://...` | `RedisCheckpointStore(url)`            |
| `postgresql://...`, `postgres://...`  | `PostgresCheckpointStore(url)`         |

Backends are imported only when their scheme is used. Other packages add schemes with
`register_store_scheme`, or through the `cascadence.stores` entry-point group (an entry point named
after the scheme, pointing at a callable `factory(url, **kwargs)`); set
`CASCADENCE_DISABLE_PLUGINS=1` to ignore entry points.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, cast

from cascadence.checkpoint.base import CheckpointStore
from cascadence.errors import closest

__all__ = ["register_store_scheme", "store_from_url"]

StoreFactory = Callable[..., CheckpointStore]


def _memory(url: str, **kwargs: Any) -> CheckpointStore:
    from cascadence.checkpoint.memory import InMemoryCheckpointStore

    return InMemoryCheckpointStore(**kwargs)


def _sqlite(url: str, **kwargs: Any) -> CheckpointStore:
    from cascadence.checkpoint.sqlite import SQLiteCheckpointStore

    rest = url.split("://", 1)[1]
    # "sqlite:///rel.db" leaves "/rel.db" and "sqlite:////abs.db" leaves "//abs.db":
    # the first slash ends the (empty) host part.
    path = rest[1:] if rest.startswith("/") else rest
    if not path:
        raise ValueError(
            f"SQLite URL {url!r} names no file; expected sqlite:///relative.db or "
            "sqlite:////absolute/path.db"
        )
    return SQLiteCheckpointStore(path, **kwargs)


def _redis(url: str, **kwargs: Any) -> CheckpointStore:
    from cascadence.checkpoint.redis import RedisCheckpointStore

    return RedisCheckpointStore(url, **kwargs)


def _postgres(url: str, **kwargs: Any) -> CheckpointStore:
    from cascadence.checkpoint.postgres import PostgresCheckpointStore

    return PostgresCheckpointStore(url, **kwargs)


_SCHEMES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
    "rediss": _redis,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def register_store_scheme(scheme: str, factory: StoreFactory) -> None:
    """Make `store_from_url` build `factory(url, **kwargs)` for URLs starting `scheme://`."""
    _SCHEMES[scheme.lower()] = factory


def _from_entry_point(scheme: str) -> StoreFactory | None:
    if os.environ.get("CASCADENCE_DISABLE_PLUGINS"):
        return None
    from importlib.metadata import entry_points

    for ep in entry_points(group="cascadence.stores"):
        if ep.name.lower() == scheme:
            try:
                factory = cast(StoreFactory, ep.load())
            except Exception as exc:
                warnings.warn(
                    f"checkpoint store plugin {ep.name!r} ({ep.value}) failed to load: {exc!r}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            _SCHEMES[scheme] = factory
            return factory
    return None


def store_from_url(url: str, **kwargs: Any) -> CheckpointStore:
    """Build the checkpoint store a URL names (see the module docstring for the schemes).

    Args:
        url: `memory://`, `sqlite:///runs.db`, `redis://127.0.0.1:6379/0`, `postgresql://...`.
        **kwargs: Passed to the store's constructor (`clock=`, `prefix=`, `schema=`, ...).

    Raises:
        ValueError: The URL has no scheme, or an unknown one (the message lists the known
            schemes and the closest match).
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    known = ", ".join(sorted(_SCHEMES))
    if not sep or not scheme:
        raise ValueError(
            f"checkpoint store URL {url!r} has no scheme; expected one of {known} "
            "(for example sqlite:///runs.db)"
        )
    factory = _SCHEMES.get(scheme) or _from_entry_point(scheme)
    if factory is None:
        hint = closest(scheme, _SCHEMES)
        raise ValueError(
            f"unknown checkpoint store scheme {scheme!r} in {url!r}; expected one of {known}"
            + (f"; did you mean {hint!r}?" if hint else "")
        )
    return factory(url, **kwargs)
